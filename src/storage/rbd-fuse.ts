// Maps an RBD image without kernel RBD: rbd-fuse exposes the image as a file, losetup makes it a block device.
// The state of one mapping (rbd-fuse PID, mount dir, loop device, lock token) is kept in a small JSON file
// in the node's run directory, so an agent restart can still unmap what it mapped.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { YcError } from '../lib/errors.js';
import { writeAtomic } from '../lib/files.js';
import { run } from '../lib/exec.js';
import { readMountTable, type MountEntry } from '../lib/mountinfo.js';
import { sleep, waitFor, withTimeout } from '../lib/time.js';
import { isMountPoint, loopAttachRecorded, loopBackingFile, loopDetach } from './blockdev.js';
import { MON_FAILOVER_SETTINGS, type CephCli } from './ceph-cli.js';

export interface FuseMapping {
  pid: number;
  fuseDir: string;
  device: string;
  token: number;
  /**
   * Whether rbd-fuse has opened the image (and so watches it: a lock break's fence blocklists it). False only for
   * a warm start that has looked at nothing but the directory; a record without it counts as opened.
   */
  opened?: boolean;
}

const recordPath = (runDir: string, name: string): string => join(runDir, `${name}.map.json`);

export async function readMapping(runDir: string, name: string): Promise<FuseMapping | undefined> {
  try {
    return JSON.parse(await readFile(recordPath(runDir, name), 'utf8')) as FuseMapping;
  } catch {
    return undefined;
  }
}

/** The rbd-fuse process is ours only while its command line still names our mount dir (PIDs get reused). */
export function fuseAlive(m: FuseMapping): boolean {
  try {
    return readFileSync(`/proc/${m.pid}/cmdline`, 'utf8').split('\0').includes(m.fuseDir);
  } catch {
    return false;
  }
}

export async function mapWithFuse(cli: CephCli, runDir: string, pool: string, name: string, token: number): Promise<FuseMapping> {
  return attachLoop(runDir, name, await startFuse(cli, runDir, pool, name, token));
}

/** A started rbd-fuse that exposes the image but has no loop device yet (token 0: nobody's lock yet). */
export const isWarm = (m: FuseMapping): boolean => m.device === '' && m.token === 0;

/** rbd-fuse gives up connecting after this long (Ceph's default is 300 s), so a wait for it ends too. */
const FUSE_CONNECT_TIMEOUT_S = 15;
/** How long a start waits for rbd-fuse to list the image: its connect bound and some. */
const FUSE_READY_MS = 20_000;

/**
 * Starts rbd-fuse for one image and waits until it lists the image; recorded with no device. Only the directory
 * is read: rbd-fuse opens an image (and registers a watch on it, which a lock break's fence blocklists) at its
 * first stat or open, so a warm start (token 0) that a candidate keeps beside a live leader is no client of the
 * image yet, and another node's fence leaves it usable. The loop attach opens it later; opening it drops any
 * page cache FUSE kept of it.
 */
export async function startFuse(cli: CephCli, runDir: string, pool: string, name: string, token: number): Promise<FuseMapping> {
  const fuseDir = join(runDir, `fuse-${name}`);
  await mkdir(fuseDir, { recursive: true });
  // Foreground (-f), so the PID we record is the daemon; detached, so it outlives an agent restart like a kernel map.
  const child = spawn('rbd-fuse', ['-f', '-c', cli.opts.conf, '-p', pool, '-r', name, fuseDir], {
    stdio: 'ignore',
    detached: true,
    env: { ...process.env, CEPH_ARGS: [...cli.identityArgs(), '--rbd_cache=false', `--client_mount_timeout=${FUSE_CONNECT_TIMEOUT_S}`, ...Object.entries(MON_FAILOVER_SETTINGS).map(([k, v]) => `--${k}=${v}`)].join(' ') },
  });
  child.on('error', () => undefined);
  child.unref();
  if (child.pid === undefined) throw new YcError('UNAVAILABLE', 'cannot start rbd-fuse');
  const m: FuseMapping = { pid: child.pid, fuseDir, device: '', token, opened: false };
  await writeAtomic(recordPath(runDir, name), JSON.stringify(m));
  try {
    // Asynchronous: a listing waits while rbd-fuse connects, and must not hold up the agent's event loop. One at
    // a time, and bounded as a whole: a hung one ends when rbd-fuse is stopped (its connection is then gone).
    await withTimeout(waitFor(`rbd-fuse to list ${pool}/${name}`, async () => {
      if (!fuseAlive(m)) throw new YcError('UNAVAILABLE', `rbd-fuse for ${pool}/${name} exited`);
      return (await readdir(fuseDir)).includes(name) ? true : undefined;
    }, { timeoutMs: FUSE_READY_MS, intervalMs: 10 }), FUSE_READY_MS + 1000, `rbd-fuse to list ${pool}/${name}`);
    return m;
  } catch (err) {
    await unmapFuse(runDir, name);
    throw err;
  }
}

/** Opens the image in a warm rbd-fuse ahead of its map (a handover: nobody will fence it), and records that. */
export async function openWarm(runDir: string, name: string, m: FuseMapping): Promise<FuseMapping> {
  const opened = { ...m, opened: true };
  // Recorded first: from the stat on, rbd-fuse may be a watcher, and a fence must know to drop it.
  await writeAtomic(recordPath(runDir, name), JSON.stringify(opened));
  await withTimeout(stat(join(m.fuseDir, name)), FUSE_READY_MS, `rbd-fuse to open ${name}`);
  return opened;
}

/** Attaches a loop device to a started rbd-fuse's image file, recorded with the lock's token. */
export async function attachLoop(runDir: string, name: string, started: FuseMapping, token = started.token): Promise<FuseMapping> {
  // The attach opens the image: from here on this rbd-fuse watches it.
  const m = { ...started, token, opened: true };
  try {
    m.device = await loopAttachRecorded(join(m.fuseDir, name), async (device) => {
      await writeAtomic(recordPath(runDir, name), JSON.stringify({ ...m, device }));
    });
    return m;
  } catch (err) {
    await unmapFuse(runDir, name);
    throw err;
  }
}

/** Detaches the loop device, unmounts the FUSE dir and stops rbd-fuse by PID; idempotent. */
export async function unmapFuse(runDir: string, name: string): Promise<void> {
  const m = await readMapping(runDir, name);
  if (m === undefined) return;
  // The device is recorded before the attach: detach it only if it really carries this mapping's file.
  if (m.device !== '' && isOurLoop(m, name)) await loopDetach(m.device);
  // Stop rbd-fuse before unmounting its dir: a fenced (blocklisted) rbd-fuse spins on failing I/O and
  // never answers, and a plain umount of its dir then sleeps uninterruptibly (no timeout can end it).
  // Killing the daemon aborts the FUSE connection instead, so anything waiting on it fails at once. On
  // the healthy path the file system above is unmounted and the loop device detached by now, so every
  // write has already reached rbd-fuse, which writes through (no cache).
  await stopPid(m);
  if (isMountPoint(m.fuseDir)) await run('umount', ['-l', m.fuseDir], { timeoutMs: 10_000 });
  await rm(m.fuseDir, { recursive: true, force: true });
  await rm(recordPath(runDir, name), { force: true });
}

/**
 * Whether the mapping's loop device is attached to its rbd-fuse file. Seen from outside the mount namespace
 * that holds the FUSE mount, the kernel names the file only relative to that mount ("/VOLUME").
 */
export function isOurLoop(m: FuseMapping, name: string): boolean {
  const backing = loopBackingFile(m.device);
  return backing === join(m.fuseDir, name) || backing === `/${name}`;
}

/** FUSE mounts of a mount table and their connection numbers (the device's minor). */
export function fuseMounts(table: readonly MountEntry[]): { mountPoint: string; conn: number }[] {
  return table.filter((m) => (m.fsType === 'fuse' || m.fsType === 'fuseblk' || m.fsType.startsWith('fuse.')) && m.minor >= 0)
    .map((m) => ({ mountPoint: m.mountPoint, conn: m.minor }));
}

/** Where fusectl is mounted in a mount table, if anywhere. */
export function fusectlMount(table: readonly MountEntry[]): string | undefined {
  return table.find((m) => m.fsType === 'fusectl')?.mountPoint;
}

/**
 * Mounts fusectl at `dir` unless this mount namespace has it somewhere already, so that an abort later is a file
 * write, not a process: a leader cut off from Ceph aborts its volumes inside the margin before its lease can
 * expire, and starting processes on a loaded node took up to 900 ms of that margin.
 */
export async function ensureFusectl(dir: string): Promise<string | undefined> {
  const found = fusectlMount(await readMountTable());
  if (found !== undefined) return found;
  await mkdir(dir, { recursive: true });
  const r = await run('mount', ['-t', 'fusectl', 'fusectl', dir], { timeoutMs: 5000, allowFailure: true });
  return r.code === 0 ? dir : undefined;
}

/**
 * Aborts FUSE connections by number: through a fusectl mount of this namespace when there is one (a write each),
 * else with fusectl mounted in a private mount namespace, so the host's is untouched. `table`: this namespace's
 * mount table when the caller has just read it.
 */
export async function abortFuseConnections(conns: readonly number[], table?: readonly MountEntry[]): Promise<void> {
  if (conns.length === 0) return;
  const fusectl = fusectlMount(table ?? (await readMountTable()));
  if (fusectl !== undefined) {
    // A connection already gone has no directory: nothing left to abort.
    await Promise.all(conns.map((c) => writeFile(join(fusectl, String(Math.trunc(c)), 'abort'), '1').catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    })));
    return;
  }
  const writes = conns.map((c) => `echo 1 > /sys/fs/fuse/connections/${Math.trunc(c)}/abort`).join('; ');
  const script = `mountpoint -q /sys/fs/fuse/connections || mount -t fusectl fusectl /sys/fs/fuse/connections; ${writes}`;
  await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { timeoutMs: 5000 });
}

/**
 * Aborts the FUSE connection of a mapping, so every request waiting on rbd-fuse (and the loop I/O and processes
 * above it) fails at once, then kills rbd-fuse. Killing alone is not enough: its exit can wait on writeback that
 * only it could finish.
 */
export async function abortFuse(runDir: string, name: string): Promise<void> {
  const m = await readMapping(runDir, name);
  if (m === undefined) return;
  const table = await readMountTable();
  const mine = fuseMounts(table).filter((f) => f.mountPoint === m.fuseDir);
  await abortFuseConnections(mine.map((f) => f.conn), table);
  if (fuseAlive(m)) process.kill(m.pid, 'SIGKILL');
}

async function stopPid(m: FuseMapping): Promise<void> {
  for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
    if (!fuseAlive(m)) return;
    process.kill(m.pid, sig);
    // rbd-fuse exits within milliseconds of SIGTERM, and a drain's write gap waits on this: poll finely (3 s bound).
    for (let i = 0; i < 300 && fuseAlive(m); i++) await sleep(10);
  }
}
