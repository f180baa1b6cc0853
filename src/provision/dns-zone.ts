import { hostRecords, type ZoneRecord } from '../dns/records.js';
import { reverseName } from '../lib/net.js';
import type { ClusterConfig, NodeRecord } from '../state/schema.js';

const TTL = 30;

/** Service names that follow a VIP wherever it moves. */
export const VIP_ALIASES = {
  gateway: ['gateway', 'admin', 'dns', 'ntp'],
  storage: ['storage', 'postgres', 'registry', 'qdrant'],
} as const;

/** The cluster's records, derived from nodes and config alone (pure, so it is tested without etcd). */
export function clusterZoneRecords(nodes: readonly NodeRecord[], config: ClusterConfig): ZoneRecord[] {
  const d = config.domain;
  const fqdn = (name: string): string => `${name}.${d}`;
  const records: ZoneRecord[] = hostRecords(nodes.map((n) => ({ name: fqdn(n.hostname), ip: n.ip })), TTL);
  for (const alias of VIP_ALIASES.gateway) records.push({ name: fqdn(alias), type: 'A', ttl: TTL, data: config.gatewayVip });
  for (const alias of VIP_ALIASES.storage) records.push({ name: fqdn(alias), type: 'A', ttl: TTL, data: config.storageVip });
  records.push({ name: reverseName(config.gatewayVip), type: 'PTR', ttl: TTL, data: fqdn('gateway') });
  records.push({ name: reverseName(config.storageVip), type: 'PTR', ttl: TTL, data: fqdn('storage') });
  const cores = nodes.filter((n) => n.type === 'core').sort((a, b) => a.hostname.localeCompare(b.hostname, 'en', { numeric: true }));
  for (const c of cores) {
    records.push({ name: d, type: 'NS', ttl: TTL, data: fqdn(c.hostname) });
    records.push({ name: `_etcd-client._tcp.${d}`, type: 'SRV', ttl: TTL, data: { priority: 0, weight: 0, port: 2379, target: fqdn(c.hostname) } });
    records.push({ name: `_ycluster-api._tcp.${d}`, type: 'SRV', ttl: TTL, data: { priority: 0, weight: 0, port: 8080, target: fqdn(c.hostname) } });
  }
  records.push({ name: `_postgresql._tcp.${d}`, type: 'SRV', ttl: TTL, data: { priority: 0, weight: 0, port: 5432, target: fqdn('postgres') } });
  records.push({ name: `_registry._tcp.${d}`, type: 'SRV', ttl: TTL, data: { priority: 0, weight: 0, port: 5000, target: fqdn('registry') } });
  return records;
}
