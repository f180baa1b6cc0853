import type { Logger } from '../lib/log.js';
import type { ServiceStatus } from '../lib/supervisor.js';
import type { StateClient } from '../state/client.js';
import type { Check, NodeRecord } from '../state/schema.js';
import type { FenceTargets } from '../watchdog/fence-file.js';
import type { AgentConfig } from './config.js';

export interface RoleContext {
  state: StateClient;
  node: NodeRecord;
  config: AgentConfig;
  logger: Logger;
}

/** What every role reports into the node's health. */
export interface RoleReport {
  checks(): Check[];
  services(): ServiceStatus[];
}

export interface StepDownKind {
  voluntary: boolean;
}

/** Runs on the leader of one election only. */
export interface LedRole extends RoleReport {
  /** Start acting as leader; `token` is the fencing token to hand to anything that must reject a stale leader. */
  lead(token: number, signal: AbortSignal): Promise<void>;
  /**
   * Ordered, bounded teardown. Forced (deadline, lost key): must finish before the leader's deadline. Voluntary
   * (resign, drain, shutdown): the election keeps the lease alive meanwhile, so it may take its own longer budget
   * for a clean stop.
   */
  stepDown(reason: string, how?: StepDownKind): Promise<void>;
  /** Non-leaders: make sure nothing of the role runs here (split-brain guard). */
  follow?(): Promise<void>;
  /**
   * The election has a new leader (its node name), or none; handingOver: that leader has begun a planned
   * step-down, so a candidate may get ready to take over.
   */
  onNewLeader?(node: string | undefined, info?: { handingOver: boolean }): void;
  /** Processes and addresses the watchdog must kill and drop if this node passes its deadline while frozen. */
  fenceTargets?(): FenceTargets;
}

/** Runs on every node of some type. */
export interface AlwaysRole extends RoleReport {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export type LedRoleFactory = (ctx: RoleContext) => LedRole;
export type AlwaysRoleFactory = (ctx: RoleContext) => AlwaysRole;
