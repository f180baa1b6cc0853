// Host → lab forwards without the host namespace ever sending a packet to the lab subnet: a relay inside the
// admin namespace listens on a unix socket in the state dir (sockets are file system objects, not namespaced)
// and connects to the lab target; a relay in the host namespace listens on 127.0.0.1 and pipes to that socket.
// Both relays carry the state dir in their argv, so destroyLab finds them even after the lab command crashed.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { YcError, badInput } from '../lib/errors.js';
import { isIpv4 } from '../lib/net.js';
import { ADMIN_NODE, nsName } from './names.js';
import { procRef, signalRef, waitGone, type ProcRef } from './proc.js';
import { forgetPids, labDir, readRegistry, recordPid, updateRegistry, type ForwardRecord } from './registry.js';

/** [node, args...] that runs relay: dist/lab/relay.js when it sits next to this file, else src/lab/relay.ts via tsx. */
export function relayCommand(): string[] {
  const js = fileURLToPath(new URL('./relay.js', import.meta.url));
  if (existsSync(js)) return [process.execPath, js];
  const ts = fileURLToPath(new URL('./relay.ts', import.meta.url));
  return [process.execPath, '--import', import.meta.resolve('tsx'), ts];
}

export interface ForwardOptions {
  targetIp: string;
  targetPort: number;
  /** 127.0.0.1 port on the host; 0 or absent picks a free one. */
  hostPort?: number;
  /** Further target IPs tried in order when targetIp does not answer (same port). */
  failover?: string[];
  /** Per-target connect timeout inside the lab (default 1000 ms). */
  connectTimeoutMs?: number;
}

export interface Forward {
  hostPort: number;
  socketPath: string;
  pids: number[];
}

function checkPort(p: number, allowZero: boolean): void {
  if (!Number.isInteger(p) || p < (allowZero ? 0 : 1) || p > 65535) throw badInput(`invalid port ${p}`);
}

/** Spawns a relay (in the host, or in a namespace via `ip netns exec`) and waits for its READY line. */
function spawnRelay(name: string, ns: string | null, args: string[], logFile: string, timeoutMs: number): Promise<{ child: ChildProcess; ready: string; ref: ProcRef }> {
  const [node, ...pre] = relayCommand();
  const argv = [...pre, ...args];
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = ns === null
      ? spawn(node!, argv, { detached: true, stdio: ['ignore', 'pipe', fd] })
      : spawn('ip', ['netns', 'exec', ns, node!, ...argv], { detached: true, stdio: ['ignore', 'pipe', fd] });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  const ref = pid === undefined ? undefined : procRef(pid);
  if (ref) recordPid(name, { ...ref, what: 'relay', ...(ns === null ? {} : { node: ADMIN_NODE }) });
  return new Promise((resolve, reject) => {
    let buf = '';
    const fail = (why: string): void => {
      clearTimeout(timer);
      if (ref) signalRef(ref, 'SIGKILL');
      child.stdout?.destroy();
      reject(new YcError('UNAVAILABLE', `relay did not start (${why}); see ${logFile}`));
    };
    const timer = setTimeout(() => fail(`no READY within ${timeoutMs} ms`), timeoutMs);
    child.once('error', (err) => fail(err.message));
    child.once('exit', (code, sig) => fail(`exited ${sig ?? code}`));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      const m = /^READY (\S+)\n/.exec(buf);
      if (!m?.[1] || !ref) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.stdout!.destroy();
      child.unref();
      resolve({ child, ready: m[1], ref });
    });
  });
}

function socketPathFor(dir: string, ip: string, port: number): string {
  for (let i = 1; i <= 1000; i++) {
    const p = join(dir, `fwd-${ip}-${port}${i === 1 ? '' : `-${i}`}.sock`);
    if (!existsSync(p)) return p;
  }
  throw new YcError('RANGE_FULL', `too many forwards to ${ip}:${port}`);
}

/**
 * Forwards 127.0.0.1:hostPort on the host to targetIp:targetPort in the lab (TCP). Resolves once the host
 * port accepts connections; relays' PIDs are recorded in the registry.
 */
export async function startForward(name: string, opts: ForwardOptions): Promise<Forward> {
  const targets = [opts.targetIp, ...(opts.failover ?? [])];
  for (const t of targets) if (!isIpv4(t)) throw badInput(`invalid target IP "${t}"`);
  checkPort(opts.targetPort, false);
  checkPort(opts.hostPort ?? 0, true);
  const dir = labDir(name);
  if (!readRegistry(name)) throw new YcError('NOT_FOUND', `no lab ${name}`);
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const socketPath = socketPathFor(dir, opts.targetIp, opts.targetPort);
  const logFile = join(dir, 'logs', `fwd-${opts.targetIp}-${opts.targetPort}.log`);
  const timeout = String(opts.connectTimeoutMs ?? 1000);
  const inner = await spawnRelay(name, nsName(name, ADMIN_NODE), [
    '--listen', `unix:${socketPath}`,
    ...targets.flatMap((t) => ['--connect', `tcp:${t}:${opts.targetPort}`]),
    '--connect-timeout', timeout,
  ], logFile, 15_000);
  let outer;
  try {
    outer = await spawnRelay(name, null, ['--listen', `tcp:127.0.0.1:${opts.hostPort ?? 0}`, '--connect', `unix:${socketPath}`], logFile, 15_000);
  } catch (err) {
    signalRef(inner.ref, 'SIGKILL');
    throw err;
  }
  const hostPort = Number(outer.ready);
  const pids = [inner.ref.pid, outer.ref.pid];
  const rec: ForwardRecord = { hostPort, socketPath, targets, targetPort: opts.targetPort, pids };
  updateRegistry(name, (r) => {
    r.forwards = r.forwards.filter((f) => f.hostPort !== hostPort);
    r.forwards.push(rec);
  });
  return { hostPort, socketPath, pids };
}

/** Stops the forward on hostPort (both relays) and removes its socket; false when there was none. */
export async function stopForward(name: string, hostPort: number): Promise<boolean> {
  const reg = readRegistry(name);
  const fwd = reg?.forwards.find((f) => f.hostPort === hostPort);
  if (!reg || !fwd) return false;
  const refs = reg.pids.filter((p) => fwd.pids.includes(p.pid));
  for (const ref of refs) signalRef(ref, 'SIGKILL');
  await waitGone(refs, 5_000);
  rmSync(fwd.socketPath, { force: true });
  forgetPids(name, fwd.pids);
  updateRegistry(name, (r) => void (r.forwards = r.forwards.filter((f) => f.hostPort !== hostPort)));
  return true;
}

export function listForwards(name: string): ForwardRecord[] {
  return readRegistry(name)?.forwards ?? [];
}
