// Looks into a running lab from its admin namespace (the host never sends to lab addresses).
import { run, type ExecResult } from '../../src/lib/exec.js';
import { nsName, ADMIN_NODE } from '../../src/lab/names.js';

export const LAB_CORES = [
  { node: 's1', ip: '10.0.0.11' },
  { node: 's2', ip: '10.0.0.12' },
  { node: 's3', ip: '10.0.0.13' },
];
export const LAB_ENDPOINTS = LAB_CORES.map((c) => `${c.ip}:2379`);

export function inAdmin(lab: string, cmd: string, args: readonly string[], timeoutMs = 10_000): Promise<ExecResult> {
  return run('ip', ['netns', 'exec', nsName(lab, ADMIN_NODE), cmd, ...args], { timeoutMs, allowFailure: true });
}

export interface RaftView {
  /** Node that holds etcd's raft leadership. */
  leader: string | undefined;
  /** member id (hex) by node, for move-leader. */
  ids: Map<string, string>;
  healthy: number;
}

/** etcd's view of its members, read with etcdctl; member ids kept exact (they exceed 2^53). */
export async function raftView(lab: string): Promise<RaftView> {
  const r = await inAdmin(lab, 'etcdctl', ['--endpoints', LAB_ENDPOINTS.join(','), '--command-timeout=2s', 'endpoint', 'status', '-w', 'json'], 8000);
  const text = r.stdout.replace(/(":\s*)(\d{15,})/g, '$1"$2"');
  const list = (text.trim() ? JSON.parse(text) : []) as { Endpoint: string; Status: { header: { member_id: string }; leader: string } }[];
  const ids = new Map<string, string>();
  let leader: string | undefined;
  for (const m of list) {
    const node = LAB_CORES.find((c) => m.Endpoint === `${c.ip}:2379`)?.node;
    if (!node) continue;
    ids.set(node, BigInt(m.Status.header.member_id).toString(16));
    if (m.Status.header.member_id === m.Status.leader) leader = node;
  }
  return { leader, ids, healthy: list.length };
}

/** Moves etcd's raft leadership to `to` (asked of the current leader); true when it holds it afterwards. */
export async function moveRaftLeader(lab: string, to: string): Promise<boolean> {
  const v = await raftView(lab);
  if (v.leader === to) return true;
  const from = LAB_CORES.find((c) => c.node === v.leader);
  const id = v.ids.get(to);
  if (!from || !id) return false;
  await inAdmin(lab, 'etcdctl', ['--endpoints', `${from.ip}:2379`, '--command-timeout=5s', 'move-leader', id], 10_000);
  return (await raftView(lab)).leader === to;
}

/** Sum of each counter over the members, by metric{labels}: etcd's Prometheus text, scraped now. */
export async function scrapeCounters(lab: string, metricNames: readonly string[]): Promise<Map<string, number>> {
  const sums = new Map<string, number>();
  for (const c of LAB_CORES) {
    const r = await inAdmin(lab, 'curl', ['-s', '-m', '3', `http://${c.ip}:2379/metrics`], 8000);
    if (r.code !== 0) throw new Error(`metrics of ${c.node}: curl exit ${r.code}`);
    for (const line of r.stdout.split('\n')) {
      const m = /^(\w+)(\{[^}]*\})?\s+([0-9.e+]+)$/.exec(line);
      if (!m || !metricNames.includes(m[1]!)) continue;
      const key = `${m[1]}${m[2] ?? ''}`;
      sums.set(key, (sums.get(key) ?? 0) + Number(m[3]));
    }
  }
  return sums;
}

/** `grpc_method="Range"` of a metric key. */
export const label = (key: string, name: string): string => new RegExp(`${name}="([^"]*)"`).exec(key)?.[1] ?? '';
