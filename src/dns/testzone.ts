/** A small cluster zone shared by the DNS tests and the benchmark. */
import { Zone, hostRecords, type ZoneRecord } from './records.js';

export const TEST_DOMAIN = 'cluster.test';

export function testRecords(hosts = 3): ZoneRecord[] {
  const list = Array.from({ length: hosts }, (_, i) => ({ name: `n${i + 1}.${TEST_DOMAIN}`, ip: `10.0.0.${i + 11}` }));
  return [
    { name: TEST_DOMAIN, type: 'NS', ttl: 60, data: `n1.${TEST_DOMAIN}` },
    ...hostRecords(list, 30),
    { name: `vip.${TEST_DOMAIN}`, type: 'A', ttl: 5, data: '10.0.0.100' },
    { name: `api.${TEST_DOMAIN}`, type: 'CNAME', ttl: 30, data: `vip.${TEST_DOMAIN}` },
    { name: `ext.${TEST_DOMAIN}`, type: 'CNAME', ttl: 30, data: 'example.org' },
    { name: `_etcd._tcp.${TEST_DOMAIN}`, type: 'SRV', ttl: 30, data: { priority: 0, weight: 0, port: 2379, target: `n1.${TEST_DOMAIN}` } },
    { name: `info.${TEST_DOMAIN}`, type: 'TXT', ttl: 30, data: ['hello', 'world'] },
  ];
}

export function testZone(hosts = 3): Zone {
  return new Zone(TEST_DOMAIN, testRecords(hosts), { reverseCidrs: ['10.0.0.0/24'], serial: 7 });
}

/** A name with many A records, so its answer exceeds 512 bytes and forces TC over UDP. */
export function bigRecords(count = 60): ZoneRecord[] {
  return Array.from({ length: count }, (_, i) => ({ name: `big.${TEST_DOMAIN}`, type: 'A' as const, ttl: 30, data: `10.0.1.${i + 1}` }));
}
