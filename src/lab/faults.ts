// Faults a real rack suffers: a pulled cable, a crashed node, a clean shutdown.
import { run } from '../lib/exec.js';
import { bridgeName, nsName, switchNs, switchPort, validateNodeName } from './names.js';
import { isSameAlive, signalRef, waitGone, type ProcRef } from './proc.js';
import { forgetPids, netnsProcs, readRegistry } from './registry.js';

/** Every process of the node: those in its namespace, plus live recorded ones tagged with the node. */
export async function nodeProcs(name: string, node: string): Promise<ProcRef[]> {
  const byPid = new Map<number, ProcRef>();
  for (const p of await netnsProcs(nsName(name, node))) byPid.set(p.pid, p);
  for (const p of readRegistry(name)?.pids ?? []) {
    if (p.node === node && isSameAlive(p)) byPid.set(p.pid, { pid: p.pid, start: p.start });
  }
  return [...byPid.values()];
}

export interface KillResult {
  /** PIDs signalled. */
  signalled: number[];
  /** PIDs that needed SIGKILL after the SIGTERM grace period (stopNode only). */
  forced: number[];
}

/** Signals every process of the node and waits (bounded) until they are gone; returns those still alive. */
export async function killNodeProcs(name: string, node: string, sig: NodeJS.Signals, timeoutMs: number): Promise<{ signalled: number[]; alive: ProcRef[] }> {
  const procs = await nodeProcs(name, node);
  const signalled = procs.filter((p) => signalRef(p, sig)).map((p) => p.pid);
  const alive = await waitGone(procs, timeoutMs);
  if (readRegistry(name)) forgetPids(name, procs.filter((p) => !alive.includes(p)).map((p) => p.pid));
  return { signalled, alive };
}

/** Pulls the node's cable: the switch port leaves the bridge and goes down, so eth0 loses carrier too. */
export async function partitionNode(name: string, node: string): Promise<void> {
  validateNodeName(name, node);
  await run('ip', ['-n', switchNs(name), 'link', 'set', switchPort(name, node), 'nomaster'], { timeoutMs: 10_000 });
  await run('ip', ['-n', switchNs(name), 'link', 'set', switchPort(name, node), 'down'], { timeoutMs: 10_000 });
}

/** Plugs the cable back in. */
export async function healNode(name: string, node: string): Promise<void> {
  validateNodeName(name, node);
  await run('ip', ['-n', switchNs(name), 'link', 'set', switchPort(name, node), 'master', bridgeName(name), 'up'], { timeoutMs: 10_000 });
}

/** Crash: SIGKILL every process of the node, waiting (bounded) for them to be gone. */
export async function killNode(name: string, node: string, opts: { timeoutMs?: number } = {}): Promise<KillResult> {
  validateNodeName(name, node);
  const r = await killNodeProcs(name, node, 'SIGKILL', opts.timeoutMs ?? 5_000);
  if (r.alive.length > 0) throw new Error(`killNode ${node}: PIDs ${r.alive.map((p) => p.pid).join(' ')} still alive`);
  return { signalled: r.signalled, forced: [] };
}

/** Clean shutdown: SIGTERM, wait up to graceMs, then SIGKILL what is left. */
export async function stopNode(name: string, node: string, opts: { graceMs?: number } = {}): Promise<KillResult> {
  validateNodeName(name, node);
  const term = await killNodeProcs(name, node, 'SIGTERM', opts.graceMs ?? 10_000);
  const forced = term.alive.filter((p) => signalRef(p, 'SIGKILL')).map((p) => p.pid);
  const still = await waitGone(term.alive, 5_000);
  if (still.length > 0) throw new Error(`stopNode ${node}: PIDs ${still.map((p) => p.pid).join(' ')} still alive`);
  if (readRegistry(name)) forgetPids(name, term.alive.map((p) => p.pid));
  return { signalled: term.signalled, forced };
}
