import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, type Snapshot } from './decide.js';

const base: Snapshot = {
  registered: { hostname: 's1', type: 'core' },
  etcdReachable: true,
  drained: false,
  wantedElections: ['dhcp', 'storage'],
  wantedRoles: ['core-services'],
  elections: [{ name: 'dhcp', paused: false }, { name: 'storage', paused: false }],
  roles: ['core-services'],
  publishedStatus: 'x',
  currentStatus: 'x',
};

test('steady state: no actions, a reason that says so', () => {
  const d = decide(base);
  assert.deepEqual(d.actions, []);
  assert.equal(d.reason, 'steady: s1 (core) as wanted');
});

test('etcd unreachable: nothing is done', () => {
  const d = decide({ ...base, etcdReachable: false });
  assert.deepEqual(d.actions, []);
  assert.match(d.reason, /etcd unreachable/);
});

test('unregistered: register first', () => {
  assert.deepEqual(decide({ ...base, registered: undefined }).actions, [{ kind: 'register' }]);
});

test('a new core node joins its elections and starts its roles', () => {
  const d = decide({ ...base, elections: [], roles: [] });
  assert.deepEqual(d.actions, [
    { kind: 'campaign', election: 'dhcp' },
    { kind: 'campaign', election: 'storage' },
    { kind: 'start-role', role: 'core-services' },
  ]);
  assert.match(d.reason, /core node joins election dhcp/);
});

test('drained: every election is paused; undrained: resumed', () => {
  const drained = decide({ ...base, drained: true });
  assert.deepEqual(drained.actions, [{ kind: 'pause', election: 'dhcp' }, { kind: 'pause', election: 'storage' }]);
  assert.match(drained.reason, /drained: resigning dhcp/);
  const back = decide({ ...base, elections: [{ name: 'dhcp', paused: true }, { name: 'storage', paused: true }] });
  assert.deepEqual(back.actions, [{ kind: 'resume', election: 'dhcp' }, { kind: 'resume', election: 'storage' }]);
});

test('a node that became compute leaves elections and roles', () => {
  const d = decide({ ...base, registered: { hostname: 'c1', type: 'compute' }, wantedElections: [], wantedRoles: [] });
  assert.deepEqual(d.actions, [
    { kind: 'withdraw', election: 'dhcp' },
    { kind: 'withdraw', election: 'storage' },
    { kind: 'stop-role', role: 'core-services' },
  ]);
});

test('a changed status is published', () => {
  const d = decide({ ...base, currentStatus: 'y' });
  assert.deepEqual(d.actions, [{ kind: 'publish-status' }]);
  assert.equal(d.reason, 'status changed: publishing');
});
