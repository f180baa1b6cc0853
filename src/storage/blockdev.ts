// Block-device plumbing shared by every driver: loop devices, file-system detection, format, mount.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { YcError, badInput } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import { mountTable } from '../lib/mountinfo.js';

const T = 30_000;

const volumeName = /^[a-z0-9-]{1,40}$/;

export function checkVolumeName(name: string): void {
  if (!volumeName.test(name)) throw badInput(`bad volume name "${name}": use [a-z0-9-]{1,40}`, { name });
}

/** Attaches a file to a free loop device (direct I/O off: writes go through the backing file at once). */
export async function loopAttach(file: string): Promise<string> {
  const res = await run('losetup', ['--find', '--show', file], { timeoutMs: T });
  const dev = res.stdout.trim();
  if (!dev.startsWith('/dev/loop')) throw new YcError('INTERNAL', `losetup printed "${dev}" for ${file}`);
  return dev;
}

/**
 * Attaches a file to a loop device chosen first and handed to `record` before the attach, so a crash between
 * the two can never leave a device nobody knows of (the caller records it where its cleanup looks). A device
 * taken by someone else between the choice and the attach is retried with the next free one (bounded).
 */
export async function loopAttachRecorded(file: string, record: (device: string) => Promise<void>): Promise<string> {
  let last = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const dev = (await freeLoopFromSysfs()) ?? (await run('losetup', ['--find'], { timeoutMs: T })).stdout.trim();
    if (!/^\/dev\/loop\d+$/.test(dev)) throw new YcError('INTERNAL', `losetup --find printed "${dev}"`);
    await record(dev);
    const res = await run('losetup', [dev, file], { timeoutMs: T, allowFailure: true });
    if (res.code === 0) return dev;
    last = res.stderr.trim();
    if (!/busy|failed to set up loop device/i.test(last)) break;
  }
  throw new YcError('UNAVAILABLE', `cannot attach ${file} to a loop device: ${last}`);
}

/**
 * A loop device that exists and is free, read from sysfs (a takeover waits on this: one process start fewer than
 * `losetup --find`); undefined when there is none, and `losetup --find` then makes one. Another attacher may take
 * it first: the attach then fails as busy, and the caller tries again.
 */
async function freeLoopFromSysfs(): Promise<string | undefined> {
  const names = (await readdir('/sys/block').catch(() => [] as string[])).filter((n) => /^loop\d+$/.test(n));
  names.sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
  for (const n of names) {
    if (existsSync(`/sys/block/${n}/loop/backing_file`) || !existsSync(`/dev/${n}`)) continue;
    return `/dev/${n}`;
  }
  return undefined;
}

/** The file a loop device is attached to (as the kernel names it), or undefined when it is free. */
export function loopBackingFile(device: string): string | undefined {
  const m = /^\/dev\/(loop\d+)$/.exec(device);
  if (!m) return undefined;
  try {
    return readFileSync(`/sys/block/${m[1]}/loop/backing_file`, 'utf8').trim().replace(/ \(deleted\)$/, '');
  } catch {
    return undefined;
  }
}

/**
 * Detaches a loop device. On a device still in use (mounted in some mount namespace) the kernel only sets
 * autoclear, so the device vanishes when its last user closes it; that is what we want for a fenced holder.
 */
export async function loopDetach(device: string): Promise<void> {
  const res = await run('losetup', ['--detach', device], { timeoutMs: T, allowFailure: true });
  if (res.code !== 0 && !/No such device|not a block device|failed to use device/i.test(res.stderr)) {
    throw new YcError('INTERNAL', `losetup --detach ${device}: ${res.stderr.trim()}`);
  }
}

export interface LoopInfo {
  name: string;
  backFile: string;
}

/** All loop devices on this kernel (they are global, not per namespace). A deleted backing file ends in " (deleted)". */
export async function loopList(): Promise<LoopInfo[]> {
  const res = await run('losetup', ['--list', '--json', '--output', 'NAME,BACK-FILE'], { timeoutMs: T });
  if (res.stdout.trim() === '') return [];
  const parsed = JSON.parse(res.stdout) as { loopdevices?: { name: string; 'back-file': string | null }[] };
  return (parsed.loopdevices ?? []).map((d) => ({ name: d.name, backFile: d['back-file'] ?? '' }));
}

/** The file-system type on a device or image file, or undefined when blkid finds none (exit 2). */
export async function fsTypeOf(device: string): Promise<string | undefined> {
  const res = await run('blkid', ['-p', '-o', 'value', '-s', 'TYPE', device], { timeoutMs: T, allowFailure: true });
  if (res.code === 2) return undefined;
  if (res.code !== 0) throw new YcError('INTERNAL', `blkid ${device}: exit ${res.code}: ${res.stderr.trim()}`);
  const t = res.stdout.trim();
  return t === '' ? undefined : t;
}

export async function formatIfBlank(device: string, fsType: 'xfs' | 'ext4'): Promise<boolean> {
  // blkid -p probes for any signature (also partition tables, LUKS): anything found means "not blank".
  const res = await run('blkid', ['-p', device], { timeoutMs: T, allowFailure: true });
  if (res.code === 0) return false;
  if (res.code !== 2) throw new YcError('INTERNAL', `blkid ${device}: exit ${res.code}: ${res.stderr.trim()}`);
  if (fsType === 'xfs') await run('mkfs.xfs', ['-q', device], { timeoutMs: 120_000 });
  else await run('mkfs.ext4', ['-q', '-F', device], { timeoutMs: 120_000 });
  return true;
}

/** Mount points of a device in this process's mount namespace. */
export function mountPointsOf(device: string): string[] {
  return mountTable().filter((m) => m.source === device).map((m) => m.mountPoint);
}

/** What is mounted at dir (a trailing slash ignored), in this process's mount namespace. */
function mountsAt(dir: string): { source: string }[] {
  const norm = dir.replace(/\/+$/, '');
  return mountTable().filter((m) => m.mountPoint === norm);
}

export function isMountPoint(dir: string): boolean {
  return mountsAt(dir).length > 0;
}

/** Mounts a device; a known fsType skips the probe (a process start on a takeover's path), a wrong one fails the mount. */
export async function mountDevice(device: string, mountPoint: string, fsType?: string): Promise<void> {
  const here = mountsAt(mountPoint);
  if (here.some((m) => m.source === device)) return;
  if (here.length > 0) throw new YcError('CONFLICT', `${mountPoint} is already a mount point of another device`);
  const type = fsType ?? (await fsTypeOf(device));
  if (type === undefined) throw badInput(`${device} carries no file system`, { device });
  await mkdir(mountPoint, { recursive: true });
  // A fenced copy of a volume keeps its XFS UUID, and lab nodes share one kernel: nouuid lets both mount.
  const args = type === 'xfs' ? ['-t', 'xfs', '-o', 'nouuid', device, mountPoint] : ['-t', type, device, mountPoint];
  await run('mount', args, { timeoutMs: 60_000 });
}

/** Unmounts; idempotent. A hung unmount is killed after timeoutMs and reported as TIMEOUT (the caller decides to fence). */
export async function unmountDir(mountPoint: string, timeoutMs: number): Promise<void> {
  if (!isMountPoint(mountPoint)) return;
  const res = await run('umount', [mountPoint], { timeoutMs, allowFailure: true });
  if (res.code === 0) return;
  if (res.signal) throw new YcError('TIMEOUT', `umount ${mountPoint} did not finish within ${timeoutMs} ms`);
  throw new YcError('INTERNAL', `umount ${mountPoint}: ${res.stderr.trim()}`);
}
