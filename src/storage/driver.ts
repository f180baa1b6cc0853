/**
 * A volume driver: the storage leader's only way to reach its data. Every driver (rbd, loop) passes
 * the same conformance suite (test/integration/storage-conformance.test.ts).
 */
export interface VolumeSpec {
  /** Volume name, e.g. "postgres"; [a-z0-9-]{1,40}. */
  name: string;
  sizeMiB: number;
  fsType: 'xfs' | 'ext4';
}

/** How far prepare goes: see VolumeDriver.prepare. */
export type PrepareMode = 'standby' | 'handover';

/** Who holds a volume: the node and the fencing token of its leadership. */
export interface LockHolder {
  node: string;
  token: number;
}

export interface VolumeStatus {
  name: string;
  exists: boolean;
  holder: LockHolder | undefined;
  mapped: boolean;
  /** Where it is mounted on this node, if it is. */
  mountPoint: string | undefined;
  formatted: boolean | undefined;
}

export interface VolumeDriver {
  readonly kind: string;
  /** Creates the volume when missing (never reformats or recreates an existing one). */
  ensure(spec: VolumeSpec): Promise<{ created: boolean }>;
  /**
   * Sets up, once, what later calls must find ready because they run in a hurry (rbd-fuse: fusectl mounted, so
   * an abort is a file write). Optional; a failure only leaves those calls slower.
   */
  start?(): Promise<void>;
  exists(name: string): Promise<boolean>;
  status(name: string): Promise<VolumeStatus>;
  /**
   * Takes the exclusive lock for `holder`. A lock held by someone else with a smaller token is broken
   * with fencing (the old client is blocklisted / its access revoked) only when `breakStale` is true;
   * a lock held with a larger or equal token is never broken (CONFLICT).
   */
  lock(name: string, holder: LockHolder, opts: { breakStale: boolean }): Promise<void>;
  unlock(name: string, holder: LockHolder): Promise<void>;
  /** Makes the volume a block device on this node; returns its path. */
  map(name: string, holder: LockHolder): Promise<string>;
  unmap(name: string): Promise<void>;
  /**
   * Makes every I/O still waiting on the volume fail at once, for a node cut off from its storage: its services
   * sit in uninterruptible I/O (even SIGKILL waits for it) until then. The device stays until unmap. Data is safe:
   * nothing waiting was acknowledged to a client, and a successor fences this node anyway.
   */
  abort(name: string): Promise<void>;
  /**
   * Tells the backend at once about its peers that can no longer be reached, so that a takeover's I/O does not
   * wait for the backend's own failure detection (Ceph: unreachable OSDs are marked down). Optional: a backend
   * without peers has nothing to tell. Returns what was done, for the log.
   */
  expedite?(): Promise<string[]>;
  /**
   * One pass of a standing check of the backend's peers, run about once a second by every node that can lead
   * storage (Ceph: an OSD that missed two probes in a row is marked down). Optional. Returns what was done.
   */
  checkPeers?(): Promise<string[]>;
  /**
   * Optional. Gets a volume ready to map without taking it: what can start before the lock is ours and writes
   * nothing (rbd-fuse: the daemon, not the loop device); a later map uses it. Idempotent, and it restarts what
   * has died. 'standby': kept by a node that could take over at any time, so it must not touch the volume (a
   * lock break by another node then leaves it usable). 'handover': the leader releases the volume cleanly, so it
   * may also open it (a lock break drops it before fencing). Returns whether it started or opened something.
   */
  prepare?(name: string, mode: PrepareMode): Promise<boolean>;
  /** Optional. Drops what prepare started, if map has not used it; returns whether there was anything. */
  unprepare?(name: string): Promise<boolean>;
  /** Formats only when the device carries no file system; returns whether it formatted. */
  formatIfBlank(device: string, fsType: VolumeSpec['fsType']): Promise<boolean>;
  /** fsType, when known (the ledger's record), saves probing the device for it. */
  mount(device: string, mountPoint: string, fsType?: string): Promise<void>;
  unmount(mountPoint: string, opts: { timeoutMs: number }): Promise<void>;
}
