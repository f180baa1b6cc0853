import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CephLab } from './ceph.js';
import { cephSectionFor, type LabCeph } from './ceph-setup.js';
import { planCeph, planLab } from './plan.js';

test('agent ceph sections: a mon on each core node, the mgr only on the first, an OSD per storage node', () => {
  const placement = planCeph(planLab({ core: 3, storage: 2, compute: 1, frontend: 0 }));
  const lab: CephLab = { dir: '/l/ceph', conf: '/l/ceph/ceph.conf', keyring: '/l/ceph/keyring', fsid: 'f', mons: placement.mons, monPort: 6789 };
  const c: LabCeph = { lab, placement, pool: 'rbd' };
  const s1 = cephSectionFor(c, 's1', '/log');
  assert.deepEqual(s1, { conf: lab.conf, mon: { id: 'a', dataDir: '/l/ceph/mon/ceph-a' }, mgr: { id: 'x', dataDir: '/l/ceph/mgr/ceph-x' }, osds: [], logDir: '/log' });
  assert.deepEqual(cephSectionFor(c, 's2', '/log'), { conf: lab.conf, mon: { id: 'b', dataDir: '/l/ceph/mon/ceph-b' }, osds: [], logDir: '/log' });
  assert.equal(cephSectionFor(c, 's3', '/log')?.mon?.id, 'c');
  assert.deepEqual(cephSectionFor(c, 's5', '/log'), { conf: lab.conf, osds: [{ id: 1, dataDir: '/l/ceph/osd/ceph-1' }], logDir: '/log' });
  assert.equal(cephSectionFor(c, 'c1', '/log'), undefined);
});
