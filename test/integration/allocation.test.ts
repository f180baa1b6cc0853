import { test, after, before, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { StateClient } from '../../src/state/client.js';
import { allocateNode, removeNode, setNodeType } from '../../src/inventory/allocate.js';
import { keys, prefixes, ROOT } from '../../src/state/keys.js';
import { defaultConfig } from '../../src/state/schema.js';
import { isYcError } from '../../src/lib/errors.js';

const exec = promisify(execFile);
let etcd: TestEtcd;
let state: StateClient;
before(async () => {
  etcd = await startEtcd(1);
  state = new StateClient({ endpoints: etcd.endpoints });
});
after(async () => {
  state.close();
  await etcd.stop();
});
beforeEach(async () => {
  await state.etcd.delete().prefix(ROOT);
});

const mac = (i: number, prefix = '02:00:00:00'): string => `${prefix}:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

async function assertIndexesConsistent(): Promise<void> {
  const [nodes, names, ips] = await Promise.all([state.list(prefixes.nodes), state.list(prefixes.nodeNames), state.list(prefixes.nodeIps)]);
  assert.equal(names.entries.length, nodes.entries.length);
  assert.equal(ips.entries.length, nodes.entries.length);
  for (const { value: n } of nodes.entries) {
    assert.equal((await state.getValue(keys.nodeByName(n.hostname)))?.mac, n.mac, `name index of ${n.hostname}`);
    assert.equal((await state.getValue(keys.nodeByIp(n.ip)))?.mac, n.mac, `ip index of ${n.ip}`);
  }
}

test('50 concurrent allocations from 5 processes never share a name or address', async () => {
  // The default compute range holds 20 addresses: widen it so 50 fit.
  await state.put(keys.config, { ...defaultConfig, network: '10.0.0.0/16', ranges: { ...defaultConfig.ranges, compute: { start: '10.0.1.1', end: '10.0.1.200' } } });
  const procs = Array.from({ length: 5 }, (_, p) =>
    exec(process.execPath, ['--import', 'tsx', 'test/helpers/allocate-child.ts', etcd.endpoints.join(','), 'compute', ...Array.from({ length: 10 }, (_, i) => mac(p * 10 + i))]),
  );
  const nodes = (await Promise.all(procs)).flatMap((r) => JSON.parse(r.stdout) as { hostname: string; ip: string }[]);
  assert.equal(nodes.length, 50);
  assert.equal(new Set(nodes.map((n) => n.hostname)).size, 50, 'host names are unique');
  assert.equal(new Set(nodes.map((n) => n.ip)).size, 50, 'addresses are unique');
  await assertIndexesConsistent();
});

test('the first three storage nodes are core; names and addresses follow the ranges', async () => {
  const made = [];
  for (let i = 0; i < 4; i++) made.push((await allocateNode(state, { mac: mac(i), reportedType: 'storage' })).node);
  assert.deepEqual(made.map((n) => [n.hostname, n.type, n.ip]), [
    ['s1', 'core', '10.0.0.11'], ['s2', 'core', '10.0.0.12'], ['s3', 'core', '10.0.0.13'], ['s4', 'storage', '10.0.0.14'],
  ]);
  const c = (await allocateNode(state, { mac: mac(9), reportedType: 'compute' })).node;
  assert.deepEqual([c.hostname, c.ip], ['c1', '10.0.0.51']);
  const again = await allocateNode(state, { mac: mac(0).toUpperCase(), reportedType: 'compute' });
  assert.equal(again.created, false, 'a known MAC keeps its node');
  assert.equal(again.node.hostname, 's1');
});

test('registration and MAC rules decide the type before the reported one', async () => {
  await state.put(keys.registration(mac(1)), { type: 'frontend' });
  await state.put(keys.macRule('02:00:00'), { prefix: '02:00:00', type: 'macos' });
  assert.equal((await allocateNode(state, { mac: mac(1), reportedType: 'compute' })).node.hostname, 'f1');
  assert.equal((await allocateNode(state, { mac: mac(2), reportedType: 'compute' })).node.hostname, 'm1');
});

test('a full range, a malformed MAC and an unknown type fail clearly and write nothing', async () => {
  await state.put(keys.config, { ...defaultConfig, ranges: { ...defaultConfig.ranges, frontend: { start: '10.0.0.91', end: '10.0.0.92' } } });
  await allocateNode(state, { mac: mac(1), reportedType: 'frontend' });
  await allocateNode(state, { mac: mac(2), reportedType: 'frontend' });
  const before = (await state.list(prefixes.nodes)).entries.length;
  await assert.rejects(allocateNode(state, { mac: mac(3), reportedType: 'frontend' }), (e) => isYcError(e, 'RANGE_FULL') && /frontend/.test(e.message));
  await assert.rejects(allocateNode(state, { mac: 'zz:00:00:00:00:01' }), (e) => isYcError(e, 'BAD_INPUT') && /malformed MAC/.test(e.message));
  await assert.rejects(allocateNode(state, { mac: mac(4), reportedType: 'toaster' }), (e) => isYcError(e, 'BAD_INPUT') && /unknown node type/.test(e.message));
  assert.equal((await state.list(prefixes.nodes)).entries.length, before, 'nothing was written');
  await assertIndexesConsistent();
});

test('set-type moves name and address together; remove deletes every index', async () => {
  const { node } = await allocateNode(state, { mac: mac(5), reportedType: 'compute' });
  const moved = await setNodeType(state, node.mac, 'macos');
  assert.deepEqual([moved.hostname, moved.ip], ['m1', '10.0.0.71']);
  assert.equal(await state.getValue(keys.nodeByName('c1')), undefined);
  await assertIndexesConsistent();
  await removeNode(state, 'm1');
  assert.equal((await state.list(prefixes.nodes)).entries.length, 0);
  assert.equal((await state.list(prefixes.nodeIps)).entries.length, 0);
});

test('a corrupt stored value is reported with its key, beside the good ones', async () => {
  await allocateNode(state, { mac: mac(6), reportedType: 'compute' });
  await state.etcd.put(`${prefixes.nodes.prefix}02:00:00:00:00:99`).value('{"mac":"nope"}');
  const listing = await state.list(prefixes.nodes);
  assert.equal(listing.entries.length, 1);
  assert.equal(listing.corrupt.length, 1);
  assert.match(listing.corrupt[0]!.error, /02:00:00:00:00:99.*fails its schema/);
});
