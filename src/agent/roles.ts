import { createGatewayVipRole } from '../gateway-vip/role.js';
import { createCoreServicesRole } from '../provision/core-services-role.js';
import { createDhcpRole } from '../provision/dhcp-role.js';
import { createStorageRole } from './storage-wiring.js';
import type { AlwaysRoleFactory, LedRole, LedRoleFactory } from './role.js';

/**
 * The role that runs on the leader of each election. An election without a role of its own
 * still elects (and shows) a leader; its role is plugged in here when the service exists.
 */
export const LED_ROLES: Record<string, LedRoleFactory> = {
  dhcp: createDhcpRole,
  storage: createStorageRole,
};

export const ALWAYS_ROLES: Record<string, AlwaysRoleFactory> = {
  'core-services': createCoreServicesRole,
  'gateway-vip': createGatewayVipRole,
};

/** Leadership with nothing to run: the leader is recorded and shown, which is all such an election is for. */
export function leadershipOnly(): LedRole {
  return {
    lead: () => Promise.resolve(),
    stepDown: () => Promise.resolve(),
    checks: () => [],
    services: () => [],
  };
}
