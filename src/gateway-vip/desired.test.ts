import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig, type NodeRecord } from '../state/schema.js';
import { corePeers, defaultGatewayVipOptions, desiredVrrp, priorityFor, virtualRouterIdFor } from './desired.js';

const node = (hostname: string, ip: string, type: NodeRecord['type']): NodeRecord => ({ mac: '52:54:00:00:00:01', hostname, ip, type, typeSource: 'registration', createdAt: '2024-01-01T00:00:00Z' });
const nodes = [node('s3', '10.0.0.13', 'core'), node('s1', '10.0.0.11', 'core'), node('s2', '10.0.0.12', 'core'), node('s4', '10.0.0.14', 'storage'), node('c1', '10.0.0.51', 'compute')];
const self = { hostname: 's2', ip: '10.0.0.12', interface: 'eth0', apiPort: 8080 };

test('virtual_router_id: the same on every node, within 1..255, different for another cluster', () => {
  const a = virtualRouterIdFor(defaultConfig);
  assert.equal(virtualRouterIdFor({ ...defaultConfig }), a);
  assert.ok(a >= 1 && a <= 255);
  const ids = new Set(Array.from({ length: 50 }, (_, i) => virtualRouterIdFor({ ...defaultConfig, domain: `c${i}.example` })));
  assert.ok(ids.size > 40, `ids spread: ${ids.size}/50 distinct`);
  for (const id of ids) assert.ok(id >= 1 && id <= 255);
});

test('priority falls with the host number: s1 highest, order stable, never outside 1..254', () => {
  const p = ['s1', 's2', 's3', 's7'].map(priorityFor);
  assert.deepEqual(p, [250, 240, 230, 190]);
  assert.equal(priorityFor('s99'), 1);
  assert.equal(priorityFor('c1'), 1);
});

test('unicast peers: the other core nodes only, sorted', () => {
  assert.deepEqual(corePeers(nodes, 's2'), ['10.0.0.11', '10.0.0.13']);
  assert.deepEqual(corePeers([node('s1', '10.0.0.11', 'core')], 's1'), []);
});

test('desired instance from the cluster config: VIP and prefix, v3, 0.1 s, nopreempt, track script on the API port', () => {
  const v = desiredVrrp({ config: { ...defaultConfig, network: '10.0.0.0/16' }, nodes, self });
  assert.equal(v.vip, '10.0.0.254');
  assert.equal(v.prefix, 16);
  assert.equal(v.version, 3);
  assert.equal(v.advertIntSeconds, 0.1);
  assert.equal(v.nopreempt, true);
  assert.equal(v.priority, 240);
  assert.deepEqual(v.unicast, { src: '10.0.0.12', peers: ['10.0.0.11', '10.0.0.13'] });
  assert.match(v.track?.command ?? '', /^\/usr\/bin\/curl .*http:\/\/127\.0\.0\.1:8080\/api\/health$/);
  assert.doesNotMatch(v.track?.command ?? '', / -f/, 'a 503 (cluster unhealthy) must not strip the VIP from every node');
  assert.equal(v.virtualRouterId, virtualRouterIdFor({ ...defaultConfig, network: '10.0.0.0/16' }));
});

test('options: fixed virtual_router_id, multicast, no track script', () => {
  const v = desiredVrrp({ config: defaultConfig, nodes, self }, { ...defaultGatewayVipOptions, virtualRouterId: 7, unicast: false, curlPath: undefined });
  assert.equal(v.virtualRouterId, 7);
  assert.equal(v.unicast, undefined);
  assert.equal(v.track, undefined);
});
