/**
 * The loop driver: volumes for a lab without Ceph. Each volume is a sparse image file in a directory that
 * every lab node sees; a node maps it with losetup.
 *
 * Fencing. Loop devices hold an open file, so nothing done to the path reaches an old holder's device,
 * and nothing from another node can make that device fail: `losetup -d` on a mounted device only sets
 * autoclear, `blockdev --setro` only warns on writes, LOOP_CHANGE_FD works only for read-only devices, and the
 * old holder's mount lives in another mount namespace. So breaking a lock moves the data instead: the new
 * holder copies the current data file (reflink where the file system can, else a sparse copy), points
 * NAME.img at the copy and unlinks the old file. The old holder's device keeps the old inode: whatever it
 * writes after the break lands in an orphaned file that nobody reads and that is freed when its device
 * goes away (the break sets autoclear on it). Its unflushed writes are lost, as in a crash. The copy costs
 * time proportional to the data written (seconds for a lab volume); a lock taken when free costs nothing.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { YcError, notFound } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import { checkVolumeName, formatIfBlank, fsTypeOf, loopAttach, loopDetach, loopList, mountDevice, mountPointsOf, unmountDir } from './blockdev.js';
import type { LockHolder, VolumeDriver, VolumeSpec, VolumeStatus } from './driver.js';
import { LoopFiles, ignoreEnoent } from './loop-files.js';

export interface LoopDriverOptions {
  /** Directory shared by every node, e.g. /run/ycluster/labs/NAME/volumes. */
  dir: string;
  /** Bound on copying a volume when a lock is broken. */
  copyTimeoutMs?: number;
}

const sameHolder = (a: LockHolder, b: LockHolder): boolean => a.node === b.node && a.token === b.token;

export class LoopDriver implements VolumeDriver {
  readonly kind = 'loop';
  private readonly files: LoopFiles;
  /** Devices this instance attached, by volume: unmap detaches these first. */
  private readonly mapped = new Map<string, string>();

  constructor(private readonly opts: LoopDriverOptions) {
    this.files = new LoopFiles(opts.dir);
  }

  async ensure(spec: VolumeSpec): Promise<{ created: boolean }> {
    checkVolumeName(spec.name);
    if (!Number.isInteger(spec.sizeMiB) || spec.sizeMiB < 16) throw new YcError('BAD_INPUT', `volume ${spec.name}: sizeMiB must be an integer ≥ 16`);
    if (spec.fsType === 'xfs' && spec.sizeMiB < 300) throw new YcError('BAD_INPUT', `volume ${spec.name}: XFS needs at least 300 MiB`);
    return this.files.withMutex(spec.name, async () => {
      if ((await this.files.currentData(spec.name)) !== undefined) return { created: false };
      const dataName = this.files.dataName(spec.name, 0);
      const fh = await open(join(this.opts.dir, dataName), 'w', 0o600);
      try {
        await fh.truncate(spec.sizeMiB * 1024 * 1024);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.files.pointTo(spec.name, dataName);
      return { created: true };
    });
  }

  async exists(name: string): Promise<boolean> {
    checkVolumeName(name);
    return (await this.files.currentData(name)) !== undefined;
  }

  async status(name: string): Promise<VolumeStatus> {
    checkVolumeName(name);
    const data = await this.files.currentData(name);
    if (data === undefined) return { name, exists: false, holder: undefined, mapped: false, mountPoint: undefined, formatted: undefined };
    const device = (await loopList()).find((l) => l.backFile === data)?.name;
    return {
      name,
      exists: true,
      holder: await this.files.readHolder(name),
      mapped: device !== undefined,
      mountPoint: device === undefined ? undefined : mountPointsOf(device)[0],
      formatted: (await fsTypeOf(data)) !== undefined,
    };
  }

  async lock(name: string, holder: LockHolder, opts: { breakStale: boolean }): Promise<void> {
    checkVolumeName(name);
    await this.files.withMutex(name, async () => {
      const data = await this.requireData(name);
      const cur = await this.files.readHolder(name);
      if (cur === undefined) return this.files.writeHolder(name, holder);
      if (sameHolder(cur, holder)) return;
      if (cur.token >= holder.token || !opts.breakStale) {
        throw new YcError('CONFLICT', `volume ${name} is locked by ${cur.node} (token ${cur.token})`, { detail: { holder: cur } });
      }
      await this.fenceByCopy(name, data, holder.token);
      await this.files.writeHolder(name, holder);
    });
  }

  async unlock(name: string, holder: LockHolder): Promise<void> {
    checkVolumeName(name);
    await this.files.withMutex(name, async () => {
      await this.requireData(name);
      const cur = await this.files.readHolder(name);
      if (cur === undefined) return;
      if (!sameHolder(cur, holder)) throw new YcError('CONFLICT', `volume ${name} is locked by ${cur.node} (token ${cur.token}), not by ${holder.node} (token ${holder.token})`);
      await this.files.writeHolder(name, undefined);
    });
  }

  async map(name: string, holder: LockHolder): Promise<string> {
    checkVolumeName(name);
    // Under the mutex so a break cannot slip between the holder check and the attach.
    return this.files.withMutex(name, async () => {
      const data = await this.requireData(name);
      const cur = await this.files.readHolder(name);
      if (cur === undefined || !sameHolder(cur, holder)) throw new YcError('CONFLICT', `volume ${name} is not locked by ${holder.node} (token ${holder.token})`);
      const existing = (await loopList()).find((l) => l.backFile === data)?.name;
      const device = existing ?? (await loopAttach(data));
      this.mapped.set(name, device);
      return device;
    });
  }

  async unmap(name: string): Promise<void> {
    checkVolumeName(name);
    const mine = this.mapped.get(name);
    // After a restart this instance has forgotten its device: detach every device of this volume (devices
    // still mounted elsewhere only get autoclear and keep working until their holder unmounts).
    const devices = mine !== undefined ? [mine] : (await loopList()).filter((l) => this.files.isDataFile(name, l.backFile)).map((l) => l.name);
    for (const d of devices) await loopDetach(d);
    this.mapped.delete(name);
  }

  /** A loop volume is a local file: its I/O always completes, so there is nothing to abort. */
  abort(name: string): Promise<void> {
    checkVolumeName(name);
    return Promise.resolve();
  }

  formatIfBlank(device: string, fsType: VolumeSpec['fsType']): Promise<boolean> {
    return formatIfBlank(device, fsType);
  }

  mount(device: string, mountPoint: string, fsType?: string): Promise<void> {
    return mountDevice(device, mountPoint, fsType);
  }

  unmount(mountPoint: string, opts: { timeoutMs: number }): Promise<void> {
    return unmountDir(mountPoint, opts.timeoutMs);
  }

  private async requireData(name: string): Promise<string> {
    const data = await this.files.currentData(name);
    if (data === undefined) throw notFound(`volume ${name} does not exist`);
    return data;
  }

  private async fenceByCopy(name: string, oldData: string, token: number): Promise<void> {
    const newName = this.files.dataName(name, token);
    const newPath = join(this.opts.dir, newName);
    const tmp = `${newPath}.copy`;
    await unlink(tmp).catch(ignoreEnoent);
    // --reflink=auto --sparse=always: instant on XFS/btrfs, and copies only the written extents elsewhere.
    await run('cp', ['--reflink=auto', '--sparse=always', oldData, tmp], { timeoutMs: this.opts.copyTimeoutMs ?? 600_000 });
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, newPath);
    await this.files.pointTo(name, newName);
    for (const l of await loopList()) if (l.backFile.replace(/ \(deleted\)$/, '') === oldData) await loopDetach(l.name);
    if (oldData !== newPath) await unlink(oldData).catch(ignoreEnoent);
  }
}
