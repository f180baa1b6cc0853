import type { AlwaysRoleFactory, LedRole, LedRoleFactory } from './role.js';

/**
 * The role that runs on the leader of each election. An election without a role of its own
 * still elects (and shows) a leader; its role is plugged in here when the service exists.
 */
export const LED_ROLES: Record<string, LedRoleFactory> = {};

export const ALWAYS_ROLES: Record<string, AlwaysRoleFactory> = {};

/** Leadership with nothing to run: the leader is recorded and shown, which is all such an election is for. */
export function leadershipOnly(): LedRole {
  return {
    lead: () => Promise.resolve(),
    stepDown: () => Promise.resolve(),
    checks: () => [],
    services: () => [],
  };
}
