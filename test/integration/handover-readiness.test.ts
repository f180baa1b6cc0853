// Who gets ready when the storage leader announces a handover, read from a real etcd: storage nodes unless
// drained; a core node only where no storage node (other than the leader) is alive and not drained.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { StateClient } from '../../src/state/client.js';
import { keys } from '../../src/state/keys.js';
import type { NodeRecord } from '../../src/state/schema.js';
import { mayTakeOverStorage } from '../../src/agent/storage-wiring.js';

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

const record = (hostname: string, type: NodeRecord['type'], n: number): NodeRecord => ({
  mac: `52:54:00:00:00:0${n}`, hostname, ip: `10.0.0.${10 + n}`, type, typeSource: 'registration', createdAt: new Date().toISOString(),
});

test('storage nodes get ready unless drained; a core node only when no other storage node can lead', async () => {
  const s4 = record('s4', 'storage', 4);
  const s5 = record('s5', 'storage', 5);
  const s1 = record('s1', 'core', 1);
  for (const n of [s1, s4, s5]) await state.put(keys.nodeByMac(n.mac), n);
  await state.put(keys.heartbeat('s5'), { node: 's5', startedAt: new Date().toISOString() });

  assert.equal(await mayTakeOverStorage(state, s5, 's4'), true, 'a storage node gets ready');
  assert.equal(await mayTakeOverStorage(state, s1, 's4'), false, 'a core node leaves it to the live storage node s5');

  await state.put(keys.drain('s5'), { reason: 'test', at: new Date().toISOString() });
  assert.equal(await mayTakeOverStorage(state, s5, 's4'), false, 'a drained node does not campaign, so it does not get ready');
  assert.equal(await mayTakeOverStorage(state, s1, 's4'), true, 'with s5 drained, the core node would lead');
});
