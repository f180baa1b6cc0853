import { test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdEndpoints, planCeph, planLab } from './plan.js';

test('the lab plan names and addresses nodes as the allocator would', () => {
  const plan = planLab({ core: 3, storage: 2, compute: 1, frontend: 1 });
  assert.deepEqual(plan.map((n) => [n.node, n.type, n.ip]), [
    ['s1', 'core', '10.0.0.11'], ['s2', 'core', '10.0.0.12'], ['s3', 'core', '10.0.0.13'],
    ['s4', 'storage', '10.0.0.14'], ['s5', 'storage', '10.0.0.15'], ['c1', 'compute', '10.0.0.51'], ['f1', 'frontend', '10.0.0.91'],
  ]);
  assert.equal(new Set(plan.map((n) => n.mac)).size, plan.length, 'MACs are unique');
  assert.deepEqual(etcdEndpoints(plan), ['10.0.0.11:2379', '10.0.0.12:2379', '10.0.0.13:2379']);
});

test('Ceph placement: a mon per core node, the mgr on the first, one OSD per storage node, pool size = OSDs', () => {
  const two = planCeph(planLab({ core: 3, storage: 2, compute: 1, frontend: 0 }));
  assert.deepEqual(two, {
    monNode: 's1',
    mons: [{ node: 's1', id: 'a', ip: '10.0.0.11' }, { node: 's2', id: 'b', ip: '10.0.0.12' }, { node: 's3', id: 'c', ip: '10.0.0.13' }],
    osds: [{ node: 's4', id: 0 }, { node: 's5', id: 1 }],
    poolSize: 2,
  });
  assert.deepEqual(planCeph(planLab({ core: 1, storage: 1, compute: 0, frontend: 0 })).mons, [{ node: 's1', id: 'a', ip: '10.0.0.11' }], 'one core node: one mon');
  const none = planCeph(planLab({ core: 3, storage: 0, compute: 0, frontend: 0 }));
  assert.deepEqual(none.osds, [{ node: 's1', id: 0 }], 'without storage nodes the mon node carries the one OSD');
  assert.equal(none.poolSize, 1);
  assert.throws(() => planCeph(planLab({ core: 0, storage: 1, compute: 0, frontend: 0 })), /needs a core node/);
});
