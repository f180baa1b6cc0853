// The storage leader on Ceph (rbd volumes through rbd-fuse): partition and drain, the cases
// test/lab/storage-ceph.test.ts does not cover (it does kill -9, a frozen leader, the registry and bad input).
// The same cases run on loop volumes in test/lab/storage.test.ts. Run `npm run build` first.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { uniqueLabName, ycluster } from '../helpers/lab.js';
import { CEPH_WAITS, StorageHarness } from './storage-harness.js';
import { psql } from './storage-probe.js';

const name = uniqueLabName('ycf');
const harness = new StorageHarness(name, CEPH_WAITS);
/** Storage-capable nodes of the lab below: the core nodes s1..s3 and the storage (OSD) nodes s4, s5. */
const NODES = ['s1', 's2', 's3', 's4', 's5'];

before(async () => {
  const up = await ycluster(['lab', 'up', '--name', name, '--ceph', '--core', '3', '--storage', '2', '--compute', '1'], 300_000);
  assert.equal(up.code, 0, `lab up --ceph failed:\n${up.stderr}\n${up.stdout}`);
  await harness.serving();
  const r = await psql(name, 'CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY)');
  assert.ok(r.ok, r.err);
});

after(async () => {
  const down = await ycluster(['lab', 'down', name]);
  assert.equal(down.code, 0, down.stderr);
});

test('Ceph: partition of the storage leader (an OSD node): it lets go while cut off (its volume I/O aborted); another node serves every acknowledged row; no overlap', async () => {
  // The fault hits a storage (OSD) node, not the node running the Ceph monitor and manager.
  await harness.leaderTo('s4', NODES);
  await harness.partitionCase('s4');
});

test('Ceph: drain of the storage leader: planned switchover keeps every row; the old leader hands over (the next starts at once)', async () => {
  // Not the 1 s goal yet on Ceph (4.3-4.5 s measured): the step-down budget is sized for a leader reaching its
  // deadline (650 ms at TTL 3 s), too short to release two RBD locks, so the successor breaks them with fencing.
  await harness.drainCase(await harness.serving());
});
