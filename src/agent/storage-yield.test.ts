import { test } from 'node:test';
import assert from 'node:assert/strict';
import { storageNodeCanLead } from './storage-wiring.js';

const nodes = [
  { hostname: 's1', type: 'core' },
  { hostname: 's4', type: 'storage' },
  { hostname: 's5', type: 'storage' },
];

test('a core node yields storage only while a storage node other than the last leader is alive and not drained', () => {
  const all = new Set(['s1', 's4', 's5']);
  assert.equal(storageNodeCanLead(nodes, all, new Set(), 's4'), true, 's5 can take over from s4');
  assert.equal(storageNodeCanLead(nodes, new Set(['s1', 's4']), new Set(), 's4'), false, 'only the dead leader is a storage node with a heartbeat');
  assert.equal(storageNodeCanLead(nodes, all, new Set(['s5']), 's4'), false, 's5 is drained');
  assert.equal(storageNodeCanLead(nodes, all, new Set(), 's1'), true);
  assert.equal(storageNodeCanLead(nodes.slice(0, 1), all, new Set(), undefined), false, 'no storage nodes at all');
});
