/**
 * The rbd driver: volumes are RBD images. The lock is an advisory RBD lock whose id is
 * "ycluster:NODE:TOKEN". Breaking a stale lock fences the old holder in Ceph itself: every client watching
 * the image (the old holder's rbd-fuse or kernel map) is blocklisted, then the lock is broken (its locker, the
 * old holder's Ceph session, is not blocklisted: it never does I/O on the image). A blocklisted client gets I/O
 * errors from the OSDs; with the client cache off nothing is served from memory either. Images are created with
 * layering only, since librbd's exclusive-lock feature refuses to work while a manual lock is held. The Ceph
 * session ends by itself when this process exits (its stdin closes).
 * Mapping: kernel RBD (`rbd map`) when /sys/bus/rbd exists, else rbd-fuse + a loop device.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { YcError, errorMessage, isYcError, notFound } from '../lib/errors.js';
import { checkVolumeName, formatIfBlank, fsTypeOf, mountDevice, mountPointsOf, unmountDir } from './blockdev.js';
import { CephCli, failure, type CephClientOptions } from './ceph-cli.js';
import { RadosSession, type MonCommandResult, type RadosLocker } from './rados-session.js';
import type { LockHolder, PrepareMode, VolumeDriver, VolumeSpec, VolumeStatus } from './driver.js';
import { abortFuse, attachLoop, ensureFusectl, fuseAlive, isOurLoop, isWarm, mapWithFuse, openWarm, readMapping, startFuse, unmapFuse } from './rbd-fuse.js';
import { OsdFailureDetector, markUnreachableOsdsDown, parseOsdDump, type OsdDump, type OsdMarkdownOps } from './osd-markdown.js';
import { kernelAbort, kernelMap, kernelMapped, kernelUnmap } from './rbd-kernel.js';

export interface RbdDriverOptions extends CephClientOptions {
  pool: string;
  /** Per-node directory for rbd-fuse mounts and mapping records, e.g. /run/ycluster/rbd. */
  runDir: string;
  /** Use kernel RBD; default: when /sys/bus/rbd exists. */
  kernel?: boolean;
  /**
   * Where to mount fusectl (once, at start) unless this mount namespace has it already, so that aborting a
   * mapping's I/O is a file write. Unset: each abort mounts it in a private mount namespace of its own process
   * (for callers in a namespace that must stay untouched, such as tests on the host).
   */
  fusectlDir?: string;
  /** Told when an rbd-fuse kept warm is given up (a map could not use it, or its restart failed). */
  onWarmUnusable?: (volume: string, error: string) => void;
}


const lockId = (h: LockHolder): string => `ycluster:${h.node}:${h.token}`;

function parseLockId(id: string): LockHolder | undefined {
  const m = /^ycluster:(.+):(\d+)$/.exec(id);
  return m ? { node: m[1]!, token: Number(m[2]) } : undefined;
}

export class RbdDriver implements VolumeDriver {
  readonly kind = 'rbd';
  private readonly cli: CephCli;
  /**
   * Locks, watchers and monitor commands go through one long-lived client: a takeover needs a dozen of them,
   * and each `rbd`/`ceph` process would connect, authenticate and fetch maps afresh. The session's lock breaks
   * never blocklist the locker (the session itself); the client doing I/O (rbd-fuse, the kernel) is blocklisted
   * explicitly when a stale lock is broken.
   */
  private readonly rados: RadosSession;
  private readonly kernel: boolean;

  constructor(private readonly opts: RbdDriverOptions) {
    this.cli = new CephCli(opts);
    this.rados = new RadosSession(opts);
    this.kernel = opts.kernel ?? existsSync('/sys/bus/rbd');
  }

  async start(): Promise<void> {
    if (this.opts.fusectlDir !== undefined && !this.kernel) await ensureFusectl(this.opts.fusectlDir);
  }

  /** Unmaps whatever a run directory still records (for tests and a node's cleanup after a crash). */
  static async cleanupRunDir(runDir: string): Promise<void> {
    for (const f of await readdir(runDir).catch(() => [] as string[])) {
      if (f.endsWith('.map.json')) await unmapFuse(runDir, f.slice(0, -'.map.json'.length));
    }
  }

  private image(name: string): string {
    return `${this.opts.pool}/${name}`;
  }

  async ensure(spec: VolumeSpec): Promise<{ created: boolean }> {
    checkVolumeName(spec.name);
    if (!Number.isInteger(spec.sizeMiB) || spec.sizeMiB < 16) throw new YcError('BAD_INPUT', `volume ${spec.name}: sizeMiB must be an integer ≥ 16`);
    if (spec.fsType === 'xfs' && spec.sizeMiB < 300) throw new YcError('BAD_INPUT', `volume ${spec.name}: XFS needs at least 300 MiB`);
    if (await this.exists(spec.name)) return { created: false };
    const res = await this.cli.rbd(['create', '--size', `${spec.sizeMiB}M`, '--image-feature', 'layering', this.image(spec.name)], { allowFailure: true });
    if (res.code === 0) return { created: true };
    if (/\(17\) File exists/.test(res.stderr)) return { created: false };
    throw new YcError('INTERNAL', `rbd create ${this.image(spec.name)}: ${failure(res)}`);
  }

  exists(name: string): Promise<boolean> {
    checkVolumeName(name);
    return this.rados.exists(name);
  }

  async status(name: string): Promise<VolumeStatus> {
    // Each rbd command is a process start (most of a takeover's time on a small machine): ask at once.
    const [exists, device] = await Promise.all([this.exists(name), this.mappedDevice(name)]);
    if (!exists) return { name, exists: false, holder: undefined, mapped: false, mountPoint: undefined, formatted: undefined };
    const [holder, fsType] = await Promise.all([this.holder(name), device === undefined ? undefined : fsTypeOf(device)]);
    return {
      name,
      exists: true,
      holder,
      mapped: device !== undefined,
      mountPoint: device === undefined ? undefined : mountPointsOf(device)[0],
      formatted: device === undefined ? undefined : fsType !== undefined,
    };
  }

  async lock(name: string, holder: LockHolder, opts: { breakStale: boolean }): Promise<void> {
    const locks = await this.locks(name);
    if (locks.some((l) => l.id === lockId(holder))) return;
    const other = locks[0];
    if (other !== undefined) {
      const cur = parseLockId(other.id);
      if (cur === undefined || cur.token >= holder.token || !opts.breakStale) {
        throw new YcError('CONFLICT', `volume ${name} is locked by ${cur ? `${cur.node} (token ${cur.token})` : `"${other.id}"`}`, { detail: { holder: cur } });
      }
      // Fencing blocklists every client that has the image open: our own warm rbd-fuse too, if a handover's
      // warm-up opened it. One kept on standby has not, and stays, so that the map below starts from it.
      if (await this.warmOpened(name)) await this.unprepare(name);
      await this.fence(name, locks);
    }
    // Lost a race with another taker (EBUSY/EEXIST): CONFLICT, the lock is theirs.
    await this.rados.lockAdd(name, lockId(holder));
  }

  async unlock(name: string, holder: LockHolder): Promise<void> {
    const locks = await this.locks(name);
    if (locks.length === 0) return;
    const mine = locks.find((l) => l.id === lockId(holder));
    if (mine === undefined) throw new YcError('CONFLICT', `volume ${name} is not locked by ${holder.node} (token ${holder.token})`);
    await this.rados.lockBreak(name, mine.id, mine.locker);
  }

  async map(name: string, holder: LockHolder): Promise<string> {
    const cur = await this.holder(name);
    if (cur?.token !== holder.token || cur.node !== holder.node) {
      throw new YcError('CONFLICT', `volume ${name} is not locked by ${holder.node} (token ${holder.token})`);
    }
    if (this.kernel) return (await kernelMapped(this.cli, this.opts.pool, name)) ?? kernelMap(this.cli, this.opts.pool, name);
    return this.serial(name, async () => {
      const m = await readMapping(this.opts.runDir, name);
      if (m !== undefined && m.token === holder.token && m.device !== '' && fuseAlive(m) && isOurLoop(m, name)) return m.device;
      // Started warm by this run of the agent: either it never opened the image (standby), so no fence named it,
      // or a handover's warm-up opened it and our own lock break dropped it before fencing, so nobody has
      // blocklisted it. Another node's fence since then drops an opened one too (the role cools it down).
      const warm = m !== undefined && isWarm(m) && this.warmedHere.has(name) && fuseAlive(m);
      this.warmedHere.delete(name);
      if (warm) {
        try {
          return (await attachLoop(this.opts.runDir, name, m, holder.token)).device;
        } catch (err) {
          // A warm rbd-fuse kept for long may have lost its cluster: a fresh one costs only the time saved.
          this.opts.onWarmUnusable?.(name, `a map could not use it, and starts a fresh one: ${errorMessage(err)}`);
        }
      }
      // A mapping from an older term may belong to a blocklisted client: start afresh.
      await unmapFuse(this.opts.runDir, name);
      return (await mapWithFuse(this.cli, this.opts.runDir, this.opts.pool, name, holder.token)).device;
    });
  }

  /**
   * rbd-fuse work per volume (warm start, map, unmap, drop) runs one step at a time: a map must not attach to
   * a warm rbd-fuse that a drop is stopping.
   */
  private readonly fuseQueue = new Map<string, Promise<unknown>>();
  /** Volumes this driver started warm: a warm rbd-fuse from an earlier run of the agent may since have been fenced. */
  private readonly warmedHere = new Set<string>();

  private serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const next = (this.fuseQueue.get(name) ?? Promise.resolve()).then(fn, fn);
    const tail = next.catch(() => undefined);
    this.fuseQueue.set(name, tail);
    void tail.then(() => {
      if (this.fuseQueue.get(name) === tail) this.fuseQueue.delete(name);
    });
    return next;
  }

  prepare(name: string, mode: PrepareMode): Promise<boolean> {
    checkVolumeName(name);
    if (this.kernel) return Promise.resolve(false);
    return this.serial(name, async () => {
      const m = await readMapping(this.opts.runDir, name);
      const alive = m !== undefined && fuseAlive(m);
      // Mapped, and its rbd-fuse alive: a term of this node's, not ours to touch here.
      if (alive && !isWarm(m)) return false;
      if (alive && isWarm(m) && this.warmedHere.has(name)) {
        if (mode !== 'handover' || m.opened !== false) return false;
        await openWarm(this.opts.runDir, name, m);
        return true;
      }
      // Nothing here yet; a term of this node's that died with it (the node crashed: its loop device can only
      // fail, and is cleared now rather than by the next map, which a takeover waits on); a warm rbd-fuse that
      // died; or one left by an earlier run of the agent (which may have opened it and been fenced since).
      await this.startWarm(name, mode === 'handover');
      return true;
    });
  }

  /** A warm rbd-fuse started afresh (whatever the volume's record held is undone first); `open`: opens the image too. */
  private async startWarm(name: string, open: boolean): Promise<void> {
    await unmapFuse(this.opts.runDir, name);
    const m = await startFuse(this.cli, this.opts.runDir, this.opts.pool, name, 0);
    this.warmedHere.add(name);
    if (open) await openWarm(this.opts.runDir, name, m);
  }

  /** Whether a warm rbd-fuse has (or may have) opened the image, and so would be blocklisted by a fence. */
  private async warmOpened(name: string): Promise<boolean> {
    const m = await readMapping(this.opts.runDir, name);
    return m !== undefined && isWarm(m) && m.opened !== false;
  }

  unprepare(name: string): Promise<boolean> {
    checkVolumeName(name);
    // Now, not in turn: a map queued before the drop runs must not take the warm rbd-fuse either.
    this.warmedHere.delete(name);
    return this.serial(name, async () => {
      const m = await readMapping(this.opts.runDir, name);
      if (m === undefined || !isWarm(m)) return false;
      await unmapFuse(this.opts.runDir, name);
      return true;
    });
  }

  async unmap(name: string): Promise<void> {
    checkVolumeName(name);
    if (this.kernel) await kernelUnmap(this.cli, this.opts.pool, name);
    // Not queued behind a map: a teardown must be able to stop an rbd-fuse whose start hangs.
    else await unmapFuse(this.opts.runDir, name);
  }

  async abort(name: string): Promise<void> {
    checkVolumeName(name);
    if (this.kernel) await kernelAbort(this.cli, this.opts.pool, name);
    else await abortFuse(this.opts.runDir, name);
  }

  async expedite(): Promise<string[]> {
    // The session's OSD map may predate a mark-down made by another node: the lock lookups running beside this
    // would go to the dead OSD and wait for the objecter's laggy-op check. Fetching the newest map resends them.
    const [down] = await Promise.all([markUnreachableOsdsDown(this.osdOps), this.rados.latestOsdmap()]);
    return down.map((id) => `osd.${id} marked down (unreachable)`);
  }

  async checkPeers(): Promise<string[]> {
    return (await this.osdDetector.pass()).map((id) => `osd.${id} marked down (missed two probes)`);
  }

  /** The OSD map epoch of the last dump; a newer one means the session should fetch the map too. */
  private osdEpoch: number | undefined;
  /** The OSDs as the last dump showed them (osdFingerprint). */
  private osds: string | undefined;

  /**
   * An idle rbd-fuse asks for no OSD map after its start: one kept warm across an OSD's death or restart would
   * send a takeover's first requests to an address that no longer answers, and wait (1.3-1.6 s seen, against
   * 0.1 s from a current one). So each warm rbd-fuse is started afresh whenever the OSDs change; a map waiting
   * for it starts from the new one.
   */
  private restartWarm(): void {
    for (const name of [...this.warmedHere]) {
      void this.serial(name, async () => {
        const m = await readMapping(this.opts.runDir, name);
        if (m === undefined || !isWarm(m) || !this.warmedHere.has(name)) return;
        await this.startWarm(name, m.opened !== false);
      }).catch((err: unknown) => {
        this.warmedHere.delete(name);
        this.opts.onWarmUnusable?.(name, `restart after an OSD change failed: ${errorMessage(err)}`);
      });
    }
  }

  /**
   * One `osd dump`, remembered: a newer epoch makes the session fetch the map too (kept current while idle, so a
   * takeover's first requests already know which OSDs are down). Returns whether the OSDs changed since the last.
   */
  private async readOsds(fetchNewerMap: boolean): Promise<{ dump: OsdDump; changed: boolean }> {
    const dump = parseOsdDump((await this.mon({ prefix: 'osd dump', format: 'json' })).outbuf);
    if (fetchNewerMap && dump.epoch !== undefined && this.osdEpoch !== undefined && dump.epoch > this.osdEpoch) await this.rados.latestOsdmap();
    this.osdEpoch = dump.epoch;
    const changed = dump.fingerprint !== undefined && this.osds !== undefined && dump.fingerprint !== this.osds;
    if (dump.fingerprint !== undefined) this.osds = dump.fingerprint;
    return { dump, changed };
  }

  private readonly osdOps: OsdMarkdownOps = {
    dumpOsds: async () => {
      const { dump, changed } = await this.readOsds(true);
      if (changed) this.restartWarm();
      return dump;
    },
    markDown: async (ids) => {
      await this.mon({ prefix: 'osd down', ids: ids.map(String) });
      // Our own requests already sent to those OSDs (a lock lookup) are resent once we hold the newer map.
      await this.rados.latestOsdmap();
      this.restartWarm();
      // The rbd-fuses just restarted start from this mark-down: the next dump must not count it as a change and
      // restart them a second time (perhaps while a takeover's map waits behind the restart).
      await this.readOsds(false).catch(() => undefined);
    },
  };

  private readonly osdDetector = new OsdFailureDetector(this.osdOps);

  formatIfBlank(device: string, fsType: VolumeSpec['fsType']): Promise<boolean> {
    return formatIfBlank(device, fsType);
  }

  mount(device: string, mountPoint: string, fsType?: string): Promise<void> {
    return mountDevice(device, mountPoint, fsType);
  }

  unmount(mountPoint: string, opts: { timeoutMs: number }): Promise<void> {
    return unmountDir(mountPoint, opts.timeoutMs);
  }

  /** The image's locks; NOT_FOUND when the image is missing. */
  private async locks(name: string): Promise<RadosLocker[]> {
    checkVolumeName(name);
    try {
      return await this.rados.lockers(name);
    } catch (err) {
      if (isYcError(err, 'NOT_FOUND')) throw notFound(`volume ${name} does not exist`);
      throw err;
    }
  }

  /** A monitor command that must succeed. */
  private async mon(cmd: Record<string, unknown>): Promise<MonCommandResult> {
    const res = await this.rados.monCommand(cmd);
    if (res.code !== 0) throw new YcError('UNAVAILABLE', `ceph ${JSON.stringify(cmd)}: ${res.outs.trim() || `error ${res.code}`}`, { retryable: true });
    return res;
  }

  private async holder(name: string): Promise<LockHolder | undefined> {
    const l = (await this.locks(name))[0];
    return l === undefined ? undefined : parseLockId(l.id);
  }

  private async mappedDevice(name: string): Promise<string | undefined> {
    if (this.kernel) return kernelMapped(this.cli, this.opts.pool, name);
    const m = await readMapping(this.opts.runDir, name);
    return m !== undefined && m.device !== '' && fuseAlive(m) && isOurLoop(m, name) ? m.device : undefined;
  }

  /** Blocklists every client that has the image open (nobody legitimate does while the lock is being broken). */
  private async fence(name: string, locks: RadosLocker[]): Promise<void> {
    const watchers = await this.rados.watchers(name);
    // At once: the mons fold changes that arrive together into one map update.
    await Promise.all(watchers.map((w) => this.mon({ prefix: 'osd blocklist', blocklistop: 'add', addr: w.address, expire: 3600 })));
    // A lock gone already (the old holder released it while we fenced) is fine: its client is blocklisted all the same.
    for (const l of locks) await this.rados.lockBreak(name, l.id, l.locker);
  }
}
