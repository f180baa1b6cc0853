import type { ServiceSpec } from '../lib/supervisor.js';

export interface EtcdMember {
  name: string;
  /** Address the member listens on and is reached at. */
  ip: string;
  clientPort: number;
  peerPort: number;
}

export interface EtcdServiceOptions {
  self: EtcdMember;
  members: EtcdMember[];
  dataDir: string;
  clusterToken: string;
  /** Lab timers are short so failover is measured in the same terms as the agent's TTL. */
  heartbeatMs?: number;
  electionMs?: number;
  logFile?: string;
}

export const clientUrl = (m: EtcdMember): string => `http://${m.ip}:${m.clientPort}`;
const peerUrl = (m: EtcdMember): string => `http://${m.ip}:${m.peerPort}`;

export function etcdArgs(o: EtcdServiceOptions): string[] {
  return [
    '--name', o.self.name,
    '--data-dir', o.dataDir,
    '--listen-client-urls', clientUrl(o.self),
    '--advertise-client-urls', clientUrl(o.self),
    '--listen-peer-urls', peerUrl(o.self),
    '--initial-advertise-peer-urls', peerUrl(o.self),
    '--initial-cluster', o.members.map((m) => `${m.name}=${peerUrl(m)}`).join(','),
    '--initial-cluster-token', o.clusterToken,
    '--initial-cluster-state', 'new',
    '--heartbeat-interval', String(o.heartbeatMs ?? 100),
    '--election-timeout', String(o.electionMs ?? 1000),
    // A member cut off by a partition keeps starting elections; without pre-vote its higher term forces the
    // healthy leader to step down when the link comes back, and every lease keepalive stalls meanwhile.
    '--pre-vote',
    // Lets clients' gRPC keepalive pings (every 2 s) through without the server closing the connection.
    '--grpc-keepalive-min-time', '1s',
    '--log-level', 'warn',
  ];
}

/** The etcd member as a supervised service: foreground, health-checked over /health. */
export function etcdService(o: EtcdServiceOptions): ServiceSpec {
  return {
    name: 'etcd',
    command: 'etcd',
    args: etcdArgs(o),
    health: () => etcdHealthy(clientUrl(o.self)),
    healthIntervalMs: 1000,
    unhealthyRestartAfter: 30,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 10_000,
    ...(o.logFile ? { logFile: o.logFile } : {}),
  };
}

export async function etcdHealthy(url: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return false;
    const body = (await res.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}
