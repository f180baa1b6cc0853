import type { ServiceSpec } from '../lib/supervisor.js';
import type { AddVipResult } from '../services/vip.js';
import type { LockHolder, VolumeDriver, VolumeSpec } from '../storage/driver.js';
import type { VolumeRecord } from '../state/schema.js';

/** A volume as the leader holds it, handed to the service factories. */
export interface MountedVolume {
  name: string;
  device: string;
  mountPoint: string;
  holder: LockHolder;
}

/** A service that cannot run here (e.g. qdrant without its binary): reported, never started nor awaited. */
export interface UnavailableService {
  name: string;
  unavailable: string;
}

export type StatefulService = ServiceSpec | UnavailableService;

/** The services one volume carries, in start order. */
export type VolumeServices = (volume: MountedVolume) => StatefulService[];

export interface VipOps {
  add(iface: string, cidr: string): Promise<AddVipResult>;
  remove(iface: string, cidr: string): Promise<boolean>;
  has(iface: string, cidr: string): Promise<boolean>;
}

/** A process of one of our services found running on this node (same mount and network namespace). */
export interface FoundProcess {
  pid: number;
  service: string;
  argv: string[];
}

export interface ProcessOps {
  /** Processes on this node whose argv is exactly one of the given ones. */
  find(wanted: { service: string; argv: string[] }[]): Promise<FoundProcess[]>;
  /** Graceful signal, then SIGKILL after timeoutMs; resolves when gone (or the time is up). */
  stop(pid: number, signal: NodeJS.Signals, timeoutMs: number): Promise<void>;
  /** Whether something is mounted at the path in this node's mount namespace. */
  isMounted(path: string): Promise<boolean>;
  /** Writes the dirty data of the file system mounted at the path (syncfs), bounded by timeoutMs. */
  syncFs(path: string, timeoutMs: number): Promise<void>;
  /** Processes in this node's mount namespace that hold something under the path (service left empty). */
  holders(path: string): Promise<FoundProcess[]>;
}

/** Where the cluster records its volumes (etcd in the agent): a volume it knows is never re-created or reformatted. */
export interface VolumeLedger {
  get(name: string): Promise<VolumeRecord | undefined>;
  put(record: VolumeRecord): Promise<void>;
}

export interface StorageLeaderDeps {
  driver: VolumeDriver;
  volumes: VolumeSpec[];
  ledger: VolumeLedger;
  /** Each volume is mounted at mountRoot/<volume name>. */
  mountRoot: string;
  /** Keyed by volume name; a volume without an entry is mounted but carries no service. */
  services: Record<string, VolumeServices>;
  vip: { iface: string; cidr: string } | undefined;
  /** Whole stepDown budget in ms; must fit inside the election's lease margin. Default 2000. */
  stepDownBudgetMs?: number;
  /** Whole budget of a voluntary stepDown (resign, drain, shutdown), at least stepDownBudgetMs. Default 10 000. */
  resignBudgetMs?: number;
  /** Bound on lead's wait for every service to be healthy. Default 30 000. */
  startTimeoutMs?: number;
  /** How long a lead failure or a split-brain finding stays an alarm in checks(). Default 5 min. */
  alarmHoldMs?: number;
  /** Create missing volumes before locking them (first bring-up). Default true. */
  createVolumes?: boolean;
  /**
   * Whether this node should get ready to take over when the leader announces a handover (a node that would
   * only yield to a better-placed one need not). Default: always.
   */
  mayTakeOver?: (leader: string) => Promise<boolean>;
  /** How long a new leader must have led before this node keeps volumes on standby for it (STANDBY_SETTLE_MS). */
  standbySettleMs?: number;
  /** Injected in unit tests; the real ones use ip/arping and /proc. */
  vipOps?: VipOps;
  processOps?: ProcessOps;
}

export const isUnavailable = (s: StatefulService): s is UnavailableService => 'unavailable' in s;
