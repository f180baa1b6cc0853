import { parseCidr } from '../lib/net.js';
import { seriesNumber } from '../inventory/node-types.js';
import type { ClusterConfig, NodeRecord } from '../state/schema.js';
import type { VrrpOptions } from '../services/keepalived.js';

/** Knobs of the gateway VIP; the defaults are what the lab and the benchmark measure. */
export interface GatewayVipOptions {
  /** Overrides the id derived from the cluster (two clusters on one LAN must differ). */
  virtualRouterId?: number;
  advertIntSeconds: number;
  /** Unicast to the other core nodes (default) or multicast. */
  unicast: boolean;
  /** The track script's probe; undefined leaves the VIP to keepalived's own liveness only. */
  curlPath: string | undefined;
  scriptUser: string;
}

export const defaultGatewayVipOptions: GatewayVipOptions = { advertIntSeconds: 0.1, unicast: true, curlPath: '/usr/bin/curl', scriptUser: 'root' };

/** What the gateway VIP's keepalived should look like here, from the cluster's state. */
export interface GatewayVipInputs {
  config: ClusterConfig;
  nodes: readonly NodeRecord[];
  self: { hostname: string; ip: string; interface: string; apiPort: number };
}

/** FNV-1a of what names the cluster on its LAN, folded into 1..255: every node derives the same id. */
export function virtualRouterIdFor(config: Pick<ClusterConfig, 'domain' | 'network' | 'gatewayVip'>): number {
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(`${config.domain}|${config.network}|${config.gatewayVip}`)) {
    h ^= ch;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h % 255) + 1;
}

/** s1 250, s2 240, … : a stable order, so the first election always lands on the same node. */
export function priorityFor(hostname: string): number {
  const n = seriesNumber(hostname, 's');
  if (n === undefined) return 1;
  return Math.max(1, 250 - (n - 1) * 10);
}

/** The other core nodes' addresses, sorted; the set that triggers a re-render when it changes. */
export function corePeers(nodes: readonly NodeRecord[], selfHostname: string): string[] {
  return nodes.filter((n) => n.type === 'core' && n.hostname !== selfHostname).map((n) => n.ip).sort();
}

export function desiredVrrp(inp: GatewayVipInputs, o: GatewayVipOptions = defaultGatewayVipOptions): VrrpOptions {
  const { prefix } = parseCidr(inp.config.network);
  return {
    routerId: inp.self.hostname,
    instance: 'gateway',
    interface: inp.self.interface,
    vip: inp.config.gatewayVip,
    prefix,
    virtualRouterId: o.virtualRouterId ?? virtualRouterIdFor(inp.config),
    priority: priorityFor(inp.self.hostname),
    version: 3,
    advertIntSeconds: o.advertIntSeconds,
    nopreempt: true,
    ...(o.unicast ? { unicast: { src: inp.self.ip, peers: corePeers(inp.nodes, inp.self.hostname) } } : {}),
    // Liveness, not health: any HTTP answer (even 503) counts, so a cluster-wide "unhealthy" never
    // strips the VIP from every node at once; a dead or hung agent does move it.
    ...(o.curlPath
      ? { track: { name: 'agent_api', command: `${o.curlPath} -s -o /dev/null -m 0.5 http://127.0.0.1:${inp.self.apiPort}/api/health`, intervalSeconds: 1, timeoutSeconds: 1, fall: 3, rise: 2 } }
      : {}),
    scriptUser: o.scriptUser,
  };
}
