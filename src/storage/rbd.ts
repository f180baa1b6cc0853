/**
 * The rbd driver: volumes are RBD images. The lock is an advisory RBD lock whose id is
 * "ycluster:NODE:TOKEN". Breaking a stale lock fences the old holder in Ceph itself: every client watching
 * the image (the old holder's rbd-fuse or kernel map) is blocklisted, then `rbd lock rm` removes the lock
 * (the one-shot client that added it is gone, so it is not blocklisted). A blocklisted client gets I/O errors from the OSDs; with the
 * client cache off nothing is served from memory either. Images are created with layering only, since
 * librbd's exclusive-lock feature refuses to work while a manual lock is held.
 * Mapping: kernel RBD (`rbd map`) when /sys/bus/rbd exists, else rbd-fuse + a loop device.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { YcError, notFound } from '../lib/errors.js';
import { checkVolumeName, formatIfBlank, fsTypeOf, mountDevice, mountPointsOf, unmountDir } from './blockdev.js';
import { CephCli, failure, isMissing, type CephClientOptions } from './ceph-cli.js';
import type { LockHolder, VolumeDriver, VolumeSpec, VolumeStatus } from './driver.js';
import { abortFuse, fuseAlive, isOurLoop, mapWithFuse, readMapping, unmapFuse } from './rbd-fuse.js';
import { markUnreachableOsdsDown } from './osd-markdown.js';
import { kernelAbort, kernelMap, kernelMapped, kernelUnmap } from './rbd-kernel.js';

export interface RbdDriverOptions extends CephClientOptions {
  pool: string;
  /** Per-node directory for rbd-fuse mounts and mapping records, e.g. /run/ycluster/rbd. */
  runDir: string;
  /** Use kernel RBD; default: when /sys/bus/rbd exists. */
  kernel?: boolean;
}

interface RbdLock {
  id: string;
  locker: string;
  address: string;
}

const lockId = (h: LockHolder): string => `ycluster:${h.node}:${h.token}`;
/**
 * `rbd lock rm` blocklists the client that added the lock unless told not to. That client is the one-shot
 * `rbd lock add` process, long gone; the client doing I/O (rbd-fuse, the kernel) is blocklisted explicitly when a
 * stale lock is broken. Skipping the pointless round through the monitors saves most of an unlock's time.
 */
const NO_BLOCKLIST_ON_BREAK = ['--rbd_blocklist_on_break_lock=false'];

function parseLockId(id: string): LockHolder | undefined {
  const m = /^ycluster:(.+):(\d+)$/.exec(id);
  return m ? { node: m[1]!, token: Number(m[2]) } : undefined;
}

export class RbdDriver implements VolumeDriver {
  readonly kind = 'rbd';
  private readonly cli: CephCli;
  private readonly kernel: boolean;

  constructor(private readonly opts: RbdDriverOptions) {
    this.cli = new CephCli(opts);
    this.kernel = opts.kernel ?? existsSync('/sys/bus/rbd');
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

  async exists(name: string): Promise<boolean> {
    checkVolumeName(name);
    const res = await this.cli.rbd(['info', this.image(name)], { allowFailure: true });
    if (res.code === 0) return true;
    if (isMissing(res)) return false;
    throw new YcError('UNAVAILABLE', `rbd info ${this.image(name)}: ${failure(res)}`);
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
      await this.fence(name, locks);
    }
    const res = await this.cli.rbd(['lock', 'add', this.image(name), lockId(holder)], { allowFailure: true });
    if (res.code !== 0) {
      // Lost a race with another taker (EBUSY/EEXIST): the lock is theirs.
      throw new YcError('CONFLICT', `volume ${name}: rbd lock add failed: ${failure(res)}`, { retryable: true });
    }
  }

  async unlock(name: string, holder: LockHolder): Promise<void> {
    const locks = await this.locks(name);
    if (locks.length === 0) return;
    const mine = locks.find((l) => l.id === lockId(holder));
    if (mine === undefined) throw new YcError('CONFLICT', `volume ${name} is not locked by ${holder.node} (token ${holder.token})`);
    await this.cli.rbd(['lock', 'rm', this.image(name), mine.id, mine.locker, ...NO_BLOCKLIST_ON_BREAK]);
  }

  async map(name: string, holder: LockHolder): Promise<string> {
    const cur = await this.holder(name);
    if (cur?.token !== holder.token || cur.node !== holder.node) {
      throw new YcError('CONFLICT', `volume ${name} is not locked by ${holder.node} (token ${holder.token})`);
    }
    if (this.kernel) return (await kernelMapped(this.cli, this.opts.pool, name)) ?? kernelMap(this.cli, this.opts.pool, name);
    const m = await readMapping(this.opts.runDir, name);
    if (m !== undefined && m.token === holder.token && m.device !== '' && fuseAlive(m) && isOurLoop(m, name)) return m.device;
    // A mapping from an older term may belong to a blocklisted client: start afresh.
    await unmapFuse(this.opts.runDir, name);
    return (await mapWithFuse(this.cli, this.opts.runDir, this.opts.pool, name, holder.token)).device;
  }

  async unmap(name: string): Promise<void> {
    checkVolumeName(name);
    if (this.kernel) await kernelUnmap(this.cli, this.opts.pool, name);
    else await unmapFuse(this.opts.runDir, name);
  }

  async abort(name: string): Promise<void> {
    checkVolumeName(name);
    if (this.kernel) await kernelAbort(this.cli, this.opts.pool, name);
    else await abortFuse(this.opts.runDir, name);
  }

  async expedite(): Promise<string[]> {
    const down = await markUnreachableOsdsDown({
      dumpOsds: async () => (await this.cli.ceph(['osd', 'dump', '--format', 'json'])).stdout,
      markDown: async (ids) => {
        await this.cli.ceph(['osd', 'down', ...ids.map(String)]);
      },
    });
    return down.map((id) => `osd.${id} marked down (unreachable)`);
  }

  formatIfBlank(device: string, fsType: VolumeSpec['fsType']): Promise<boolean> {
    return formatIfBlank(device, fsType);
  }

  mount(device: string, mountPoint: string): Promise<void> {
    return mountDevice(device, mountPoint);
  }

  unmount(mountPoint: string, opts: { timeoutMs: number }): Promise<void> {
    return unmountDir(mountPoint, opts.timeoutMs);
  }

  /** The image's locks; NOT_FOUND when the image is missing (one command where an `rbd info` first would be two). */
  private async locks(name: string): Promise<RbdLock[]> {
    checkVolumeName(name);
    const res = await this.cli.rbd(['lock', 'ls', this.image(name), '--format', 'json'], { allowFailure: true });
    if (isMissing(res)) throw notFound(`volume ${name} does not exist`);
    if (res.code !== 0) throw new YcError('UNAVAILABLE', `rbd lock ls ${this.image(name)}: ${failure(res)}`, { retryable: true });
    try {
      return JSON.parse(res.stdout) as RbdLock[];
    } catch (err) {
      throw new YcError('INTERNAL', `rbd lock ls ${this.image(name)} printed no JSON`, { cause: err });
    }
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
  private async fence(name: string, locks: RbdLock[]): Promise<void> {
    const st = await this.cli.rbdJson<{ watchers?: { address: string }[] }>(['status', this.image(name)]);
    // At once: the mons fold changes that arrive together into one map update.
    await Promise.all((st.watchers ?? []).map((w) => this.cli.ceph(['osd', 'blocklist', 'add', w.address, '3600'])));
    for (const l of locks) {
      const res = await this.cli.rbd(['lock', 'rm', this.image(name), l.id, l.locker, ...NO_BLOCKLIST_ON_BREAK], { allowFailure: true });
      // Gone already: the old holder released it while we fenced (its client is blocklisted all the same).
      if (res.code !== 0 && !/\(2\) No such file or directory/.test(res.stderr)) {
        throw new YcError('UNAVAILABLE', `rbd lock rm ${this.image(name)} ${l.id}: ${failure(res)}`, { retryable: true });
      }
    }
  }
}
