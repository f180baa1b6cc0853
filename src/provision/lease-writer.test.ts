import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StateClient } from '../state/client.js';
import { decodeValue, encodeValue } from '../state/codec.js';
import { keys } from '../state/keys.js';
import type { DhcpLease } from '../state/schema.js';
import { leaseJson, LeaseWriter } from './lease-writer.js';

const lease = (i: number): DhcpLease => ({ mac: `02:00:00:00:00:${(i & 255).toString(16).padStart(2, '0')}`, ip: `10.0.1.${(i % 250) + 1}`, hostname: `c${i + 1}`, expiresAt: new Date(1_700_000_000_000 + i).toISOString() });

test('leaseJson writes exactly what encodeValue would, and it reads back through the schema', () => {
  for (const l of [lease(0), lease(7), { ...lease(3), hostname: 's12' }]) {
    const def = keys.dhcpLease(l.mac);
    assert.equal(leaseJson(l), encodeValue(def, l));
    assert.deepEqual(decodeValue(def, def.key, leaseJson(l)), l);
  }
});

class FakeState {
  txns: string[][] = [];
  fail = false;
  async txn(t: { puts?: { key: string; value: string }[] }): Promise<boolean> {
    await new Promise((r) => setTimeout(r, 2));
    if (this.fail) throw new Error('etcd unavailable');
    this.txns.push((t.puts ?? []).map((p) => p.key));
    return true;
  }
}

test('group commit: 300 leases at once take a few transactions of at most 128 puts; a failed one rejects its leases', async () => {
  const state = new FakeState();
  const w = new LeaseWriter(state as unknown as StateClient);
  await Promise.all(Array.from({ length: 300 }, (_, i) => w.write(lease(i))));
  assert.ok(state.txns.length >= 3 && state.txns.length <= 4, `${state.txns.length} transactions`);
  assert.ok(state.txns.every((t) => t.length <= 128));
  // Leases for the same MAC in one batch: the last one wins, one put.
  assert.equal(new Set(state.txns.flat()).size, 256);
  assert.deepEqual(w.stats(), { leases: 300, txns: state.txns.length, failedTxns: 0 });
  state.fail = true;
  const results = await Promise.allSettled([w.write(lease(1)), w.write(lease(2))]);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
  assert.equal(w.stats().failedTxns, 1);
});

test('transactions start at least intervalMs apart: leases trickling in share them', async () => {
  const state = new FakeState();
  const w = new LeaseWriter(state as unknown as StateClient, { intervalMs: 20 });
  const writes: Promise<void>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < 40; i++) {
    writes.push(w.write(lease(i)));
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(writes);
  const elapsed = performance.now() - t0;
  // One transaction per 20 ms over the ≥80 ms the writes took (plus the first at once), not one per lease.
  assert.ok(state.txns.length >= 2 && state.txns.length <= Math.ceil(elapsed / 20) + 1, `${state.txns.length} transactions in ${elapsed.toFixed(0)} ms`);
  assert.equal(state.txns.flat().length, 40);
});
