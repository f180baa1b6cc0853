import { clusterStatus, type ClusterStatus } from '../inventory/cluster-status.js';
import type { StateClient } from '../state/client.js';
import { json, table, type Io } from './output.js';

export function formatStatus(s: ClusterStatus): string {
  let out = table(
    ['NODE', 'TYPE', 'IP', 'MAC', 'HEARTBEAT', 'HEALTH', 'LEADS', 'DRAINED'],
    s.nodes.map((n) => [n.hostname, n.type, n.ip, n.mac, n.alive ? `${n.heartbeatAgeSeconds ?? '?'}s ago` : 'down', n.healthy ? 'healthy' : 'UNHEALTHY', n.leaderships.join(',') || '-', n.drained ? 'yes' : 'no']),
  );
  out += '\nLeaders: ' + (Object.entries(s.leaders).map(([e, n]) => `${e}=${n ?? 'NONE'}`).join('  ') || 'none') + '\n';
  out += s.healthy ? 'Cluster healthy\n' : 'Cluster UNHEALTHY:\n' + s.reasons.map((r) => `  - ${r}\n`).join('');
  return out;
}

/** Prints the cluster table; exit code 1 when the cluster is unhealthy, with every reason. */
export async function statusCommand(state: StateClient, io: Io, asJson: boolean): Promise<number> {
  const s = await clusterStatus(state);
  io.out(asJson ? json(s) : formatStatus(s));
  return s.healthy ? 0 : 1;
}
