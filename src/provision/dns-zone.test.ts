import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Zone } from '../dns/records.js';
import { RType } from '../dns/types.js';
import { defaultConfig, type NodeRecord } from '../state/schema.js';
import { clusterZoneRecords } from './dns-zone.js';

const node = (hostname: string, ip: string, type: NodeRecord['type']): NodeRecord => ({ mac: '02:00:00:00:00:01', hostname, ip, type, typeSource: 'rule', createdAt: '' });
const nodes = [node('s1', '10.0.0.11', 'core'), node('s2', '10.0.0.12', 'core'), node('c1', '10.0.0.51', 'compute')];

test('every node has A and PTR; VIP aliases point at the VIPs; SRV lists the core nodes', () => {
  const zone = new Zone(defaultConfig.domain, clusterZoneRecords(nodes, defaultConfig), { reverseCidrs: [defaultConfig.network] });
  const v = zone.view();
  assert.deepEqual(v.lookup('c1.cluster.local', RType.A), [{ name: 'c1.cluster.local', type: RType.A, class: 1, ttl: 30, data: '10.0.0.51' }]);
  assert.equal((v.lookup('51.0.0.10.in-addr.arpa', RType.PTR) as { data: string }[])[0]!.data, 'c1.cluster.local');
  assert.equal((v.lookup('postgres.cluster.local', RType.A) as { data: string }[])[0]!.data, '10.0.0.100');
  assert.equal((v.lookup('admin.cluster.local', RType.A) as { data: string }[])[0]!.data, '10.0.0.254');
  assert.equal((v.lookup('_etcd-client._tcp.cluster.local', RType.SRV) as unknown[]).length, 2);
  assert.equal(v.lookup('nope.cluster.local', RType.A), 'nxdomain');
});
