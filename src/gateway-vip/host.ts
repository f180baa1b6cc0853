// The few host facts and actions the gateway VIP needs: addresses on our interface, our files, a stale keepalived.
import { readFileSync } from 'node:fs';
import { rename, rm, writeFile, readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { run, isAlive } from '../lib/exec.js';
import { sleep } from '../lib/time.js';

/** Synchronous, no subprocess: safe to call from checks() every second. */
export function holdsAddress(iface: string, ip: string): boolean {
  return (networkInterfaces()[iface] ?? []).some((a) => a.family === 'IPv4' && a.address === ip);
}

/** `ip addr del`; true when an address was removed. */
export async function removeAddress(iface: string, ip: string, prefix: number): Promise<boolean> {
  if (!holdsAddress(iface, ip)) return false;
  const r = await run('ip', ['addr', 'del', `${ip}/${prefix}`, 'dev', iface], { timeoutMs: 5000, allowFailure: true });
  return r.code === 0;
}

export type WriteOutcome = { changed: false } | { changed: true } | { changed: false; invalid: string };

/**
 * Writes `content` to `path` only when it differs: a temp file beside it, validated, then renamed over,
 * so a reader never sees half a file and a config that fails validation never replaces a good one.
 */
export async function writeValidatedIfChanged(path: string, content: string, validate: (file: string) => Promise<{ ok: boolean; detail: string }>): Promise<WriteOutcome> {
  const current = await readFile(path, 'utf8').catch(() => undefined);
  if (current === content) return { changed: false };
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, content, { mode: 0o600 });
    const v = await validate(tmp);
    if (!v.ok) return { changed: false, invalid: v.detail };
    await rename(tmp, path);
    return { changed: true };
  } finally {
    await rm(tmp, { force: true });
  }
}

export function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/**
 * A keepalived left by an earlier agent of this node (the agent died, its detached child did not)
 * holds our pid file and would make the new one refuse to start. It is ours only if its command line
 * names our config file; then it is stopped, SIGKILL after a bounded wait.
 */
export async function stopStaleKeepalived(pidFile: string, conf: string, timeoutMs = 3000): Promise<number | undefined> {
  const pid = readPid(pidFile);
  if (pid === undefined || !isAlive(pid) || !cmdline(pid).includes(conf)) return undefined;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && cmdline(pid).includes(conf) && Date.now() < deadline) await sleep(50);
  if (isAlive(pid) && cmdline(pid).includes(conf)) process.kill(pid, 'SIGKILL');
  return pid;
}
