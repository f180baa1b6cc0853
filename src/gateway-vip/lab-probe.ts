// How the lab test and the benchmark watch the gateway VIP from outside the agents: who holds it,
// whether it answers from a client node, and a crash of its holder (processes killed and link down).
import { run } from '../lib/exec.js';
import { monoMs, sleep } from '../lib/time.js';
import { killNode, partitionNode } from '../lab/faults.js';
import { nsName } from '../lab/names.js';

/** Nodes (of `nodes`) whose eth0 carries `vip` right now. */
export async function vipHolders(lab: string, nodes: readonly string[], vip: string): Promise<string[]> {
  const rows = await Promise.all(
    nodes.map(async (n) => {
      const r = await run('ip', ['-n', nsName(lab, n), '-o', '-4', 'addr', 'show', 'dev', 'eth0'], { timeoutMs: 5000, allowFailure: true });
      return r.stdout.includes(` ${vip}/`) ? n : undefined;
    }),
  );
  return rows.filter((n): n is string => n !== undefined);
}

/** GET http://VIP:PORT/api/health from a client node: the agent that answered, or undefined. */
export async function answeringNode(lab: string, client: string, vip: string, port: number, timeoutS = 0.3): Promise<string | undefined> {
  const r = await run('ip', ['netns', 'exec', nsName(lab, client), 'curl', '-s', '-m', String(timeoutS), `http://${vip}:${port}/api/health`], { timeoutMs: 5000, allowFailure: true });
  const m = /"node"\s*:\s*"([a-z0-9-]+)"/.exec(r.stdout);
  return m?.[1];
}

/** A crash as a rack sees it: every process of the node SIGKILLed and its cable pulled, at the same moment. */
export async function crashNode(lab: string, node: string): Promise<void> {
  await Promise.all([killNode(lab, node), partitionNode(lab, node)]);
}

export interface FailoverTiming {
  /** ms from the crash until another node carried the VIP. */
  movedMs: number;
  /** ms from the crash until the VIP answered HTTP from a node other than the old holder. */
  answeredMs: number;
  newHolder: string;
  answeredBy: string;
}

/** Polls (bounded) after `t0` until the VIP is on another node and answers from it. */
export async function waitFailover(o: { lab: string; cores: readonly string[]; client: string; vip: string; port: number; old: string; t0: number; timeoutMs: number }): Promise<FailoverTiming> {
  const others = o.cores.filter((n) => n !== o.old);
  let moved: { ms: number; node: string } | undefined;
  for (let i = 0; i < 100_000; i++) {
    const [holders, by] = await Promise.all([moved ? Promise.resolve([]) : vipHolders(o.lab, others, o.vip), answeringNode(o.lab, o.client, o.vip, o.port)]);
    const now = monoMs() - o.t0;
    if (!moved && holders.length > 0) moved = { ms: now, node: holders[0]! };
    if (by !== undefined && by !== o.old) return { movedMs: moved?.ms ?? now, answeredMs: now, newHolder: moved?.node ?? by, answeredBy: by };
    if (now > o.timeoutMs) throw new Error(`VIP ${o.vip} did not move off ${o.old} within ${o.timeoutMs} ms (moved: ${moved ? `${moved.node} at ${moved.ms} ms` : 'no'})`);
    await sleep(20);
  }
  throw new Error('unreachable');
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
