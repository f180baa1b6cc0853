import { open, readdir, readFile, readlink } from 'node:fs/promises';
import { isAlive, run } from '../lib/exec.js';
import { isUnder, readMountTable } from '../lib/mountinfo.js';
import { monoMs, sleep } from '../lib/time.js';
import type { FoundProcess, ProcessOps } from './types.js';

async function nsOf(pid: number | 'self', kind: 'mnt' | 'net'): Promise<string | undefined> {
  return readlink(`/proc/${pid}/ns/${kind}`).catch(() => undefined);
}

/** Longer than any of our services' command lines; a longer one is read whole. */
const CMDLINE_BUF = 8192;

/** A process's command line as /proc shows it (NUL-separated), or '' when it is gone or a kernel thread. */
async function readCmdline(pid: number): Promise<string> {
  // open, one read, close: readFile would add an fstat and a read to find the end, on every process every pass.
  const fh = await open(`/proc/${pid}/cmdline`, 'r').catch(() => undefined);
  if (fh === undefined) return '';
  try {
    const buf = Buffer.allocUnsafe(CMDLINE_BUF);
    const { bytesRead } = await fh.read(buf, 0, CMDLINE_BUF, 0);
    if (bytesRead < CMDLINE_BUF) return buf.toString('utf8', 0, bytesRead);
    return await readFile(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * Scans /proc for our services' exact command lines. Only processes in this process's mount and network
 * namespaces count: lab nodes share one PID namespace, and another node's leader is not a split brain here.
 * The network namespace is looked at first (one readlink): in a lab most processes are other nodes'.
 */
export async function findProcesses(wanted: { service: string; argv: string[] }[]): Promise<FoundProcess[]> {
  if (wanted.length === 0) return [];
  const [selfMnt, selfNet] = await Promise.all([nsOf('self', 'mnt'), nsOf('self', 'net')]);
  const found: FoundProcess[] = [];
  const keys = new Map(wanted.map((w) => [w.argv.join('\0'), w.service]));
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid || (await nsOf(pid, 'net')) !== selfNet) continue;
    const raw = await readCmdline(pid);
    if (!raw) continue;
    const argv = raw.replace(/\0$/, '').split('\0');
    const service = keys.get(argv.join('\0'));
    if (!service) continue;
    if ((await nsOf(pid, 'mnt')) !== selfMnt) continue;
    found.push({ pid, service, argv });
  }
  return found;
}

export async function stopPid(pid: number, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const deadline = monoMs() + timeoutMs;
  while (isAlive(pid) && !(await isZombie(pid)) && monoMs() < deadline) await sleep(25);
  if (isAlive(pid) && !(await isZombie(pid))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** A zombie is gone for our purposes: it holds no files, only its exit status. */
async function isZombie(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return / Z /.test(stat.slice(stat.lastIndexOf(')')));
}

export async function isMounted(path: string): Promise<boolean> {
  return (await readMountTable()).some((m) => m.mountPoint === path);
}

export async function syncFs(path: string, timeoutMs: number): Promise<void> {
  await run('sync', ['--file-system', path], { timeoutMs });
}

/**
 * Processes of this mount namespace whose working directory, root or an open file is under `path`: what keeps
 * an unmount "busy". A service's children count (a PostgreSQL backend renames itself "postgres: ..."), and so
 * would an operator's shell.
 */
export async function findHolders(path: string): Promise<FoundProcess[]> {
  const selfMnt = await nsOf('self', 'mnt');
  const holds = async (pid: number): Promise<boolean> => {
    if (pid === process.pid || (await nsOf(pid, 'mnt')) !== selfMnt) return false;
    const fds = (await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])).map((fd) => `fd/${fd}`);
    const targets = await Promise.all(['cwd', 'root', ...fds].map((link) => readlink(`/proc/${pid}/${link}`).catch(() => undefined)));
    return targets.some((t) => t !== undefined && isUnder(t, path));
  };
  // Processes are looked at all at once: this runs while a volume stays busy, and /proc has hundreds of them.
  const pids = (await readdir('/proc')).filter((n) => /^\d+$/.test(n)).map(Number);
  const holding = await Promise.all(pids.map(async (pid) => ((await holds(pid)) ? pid : undefined)));
  const found: FoundProcess[] = [];
  for (const pid of holding) {
    if (pid === undefined) continue;
    const argv = (await readCmdline(pid)).replace(/\0$/, '').split('\0');
    found.push({ pid, service: '', argv });
  }
  return found;
}

export const realProcessOps: ProcessOps = { find: findProcesses, stop: stopPid, isMounted, syncFs, holders: findHolders };
