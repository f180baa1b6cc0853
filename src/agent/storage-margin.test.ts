import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stepDownBudgetMs, storageMarginMs } from './storage-wiring.js';

test('the storage margin holds the teardown budget plus a reserve for the abort path, and leaves the leader two keepalive intervals', () => {
  for (let ttl = 2; ttl <= 60; ttl++) {
    const budget = stepDownBudgetMs(ttl);
    const margin = storageMarginMs(ttl);
    assert.ok(margin - budget >= 300, `TTL ${ttl}: reserve ${margin - budget} ms past the budget`);
    // Keepalives go every TTL/4: a deadline before TTL/2 would fence a leader that missed a single one.
    assert.ok(ttl * 1000 - margin >= (ttl * 1000) / 2, `TTL ${ttl}: margin ${margin} ms leaves under half the lease`);
  }
  assert.equal(storageMarginMs(3), 1000, 'the default TTL of 3 s');
});
