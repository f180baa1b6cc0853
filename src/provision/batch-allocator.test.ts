import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../lib/log.js';
import { formatIpv4, parseIpv4 } from '../lib/net.js';
import type { StateClient } from '../state/client.js';
import { defaultConfig, type ClusterConfig, type MacRule, type NodeRecord, type NodeType } from '../state/schema.js';
import { BatchAllocator } from './batch-allocator.js';
import type { ClusterCache } from './cluster-cache.js';

/** The part of ClusterCache the allocator uses, in memory. */
class FakeCache {
  readonly byMac = new Map<string, NodeRecord>();
  removed = 0;
  cfg: ClusterConfig = { ...defaultConfig, network: '10.0.0.0/16', ranges: { ...defaultConfig.ranges, compute: { start: '10.0.1.1', end: '10.0.2.250' } } };
  registrations = new Map<string, NodeType>();
  rules: MacRule[] = [];
  nodeByMac = (mac: string): NodeRecord | undefined => this.byMac.get(mac);
  remember = (n: NodeRecord): void => void this.byMac.set(n.mac, n);
  hostnameTaken = (name: string): boolean => [...this.byMac.values()].some((n) => n.hostname === name);
  ipTaken = (ip: number): boolean => [...this.byMac.values()].some((n) => parseIpv4(n.ip) === ip);
  removals = (): number => this.removed;
  registeredType = (mac: string): NodeType | undefined => this.registrations.get(mac);
  macRules = (): MacRule[] => this.rules;
  config = (): ClusterConfig => this.cfg;
  remove(mac: string): void {
    this.byMac.delete(mac);
    this.removed++;
  }
}

/** etcd's transaction as the allocator uses it: create-revision compares against what was written. */
class FakeState {
  readonly written = new Set<string>();
  txns: { compares: number; puts: number }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  delayMs = 0;
  async txn(t: { compare: { key: string }[]; puts?: { key: string }[] }): Promise<boolean> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((r) => setTimeout(r, this.delayMs));
    this.inFlight--;
    this.txns.push({ compares: t.compare.length, puts: t.puts?.length ?? 0 });
    if (t.compare.some((c) => this.written.has(c.key))) return false;
    for (const p of t.puts ?? []) this.written.add(p.key);
    return true;
  }
}

const mac = (i: number): string => `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

function setup(): { cache: FakeCache; state: FakeState; alloc: BatchAllocator } {
  const cache = new FakeCache();
  const state = new FakeState();
  return { cache, state, alloc: new BatchAllocator(state as unknown as StateClient, cache as unknown as ClusterCache, silentLogger) };
}

test('a burst of new MACs: lowest names and addresses first, unique, in batches within etcd\'s operation limit', async () => {
  const { state, alloc } = setup();
  const nodes = await Promise.all(Array.from({ length: 100 }, (_, i) => alloc.allocate(mac(i))));
  assert.deepEqual(nodes.map((n) => n.hostname).sort(), Array.from({ length: 100 }, (_, i) => `c${i + 1}`).sort());
  assert.deepEqual(nodes.map((n) => parseIpv4(n.ip)).sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => parseIpv4('10.0.1.1') + i));
  assert.ok(state.txns.length <= 4, `${state.txns.length} transactions for 100 MACs`);
  assert.ok(state.txns.every((t) => t.compares <= 128 && t.puts <= 128));
  assert.deepEqual(alloc.stats(), { allocated: 100, txns: state.txns.length, fallbacks: 0 });
});

test('batches in flight together never plan the same name or address; at most 4 at once', async () => {
  const { state, alloc } = setup();
  state.delayMs = 20;
  const all: Promise<NodeRecord>[] = [];
  // Arrivals spread over several event-loop turns, while earlier batches are still in flight.
  for (let round = 0; round < 6; round++) {
    for (let i = 0; i < 45; i++) all.push(alloc.allocate(mac(round * 45 + i)));
    await new Promise((r) => setImmediate(r));
  }
  const nodes = await Promise.all(all);
  assert.equal(new Set(nodes.map((n) => n.hostname)).size, nodes.length);
  assert.equal(new Set(nodes.map((n) => n.ip)).size, nodes.length);
  assert.ok(state.maxInFlight > 1 && state.maxInFlight <= 4, `max in flight ${state.maxInFlight}`);
  assert.equal(alloc.stats().fallbacks, 0);
});

test('a freed name and address are handed out again, lowest first; registrations and rules decide the type', async () => {
  const { cache, state, alloc } = setup();
  const first = await Promise.all([0, 1, 2, 3].map((i) => alloc.allocate(mac(i))));
  assert.deepEqual(first.map((n) => n.hostname), ['c1', 'c2', 'c3', 'c4']);
  // c2 / 10.0.1.2 removed by the operator (removeNode deletes the three keys).
  cache.remove(first[1]!.mac);
  for (const k of [`/ycluster/nodes/by-mac/${first[1]!.mac}`, '/ycluster/nodes/by-name/c2', '/ycluster/nodes/by-ip/10.0.1.2']) assert.ok(state.written.delete(k), k);
  const again = await alloc.allocate(mac(10));
  assert.deepEqual([again.hostname, again.ip], ['c2', '10.0.1.2']);
  assert.equal((await alloc.allocate(mac(11))).hostname, 'c5');
  cache.registrations.set(mac(12), 'storage');
  cache.rules = [{ prefix: '02:00:00:00:00', type: 'frontend' }];
  const registered = await alloc.allocate(mac(12));
  const ruled = await alloc.allocate(mac(13));
  assert.deepEqual([registered.type, registered.typeSource, ruled.type, ruled.typeSource, ruled.hostname], ['core', 'registration', 'frontend', 'rule', 'f1']);
});

test('a full range rejects the MACs that do not fit and allocates the rest', async () => {
  const { cache, alloc } = setup();
  cache.cfg = { ...cache.cfg, ranges: { ...cache.cfg.ranges, compute: { start: '10.0.1.1', end: '10.0.1.3' } } };
  const got = await Promise.allSettled([0, 1, 2, 3, 4].map((i) => alloc.allocate(mac(i))));
  assert.equal(got.filter((r) => r.status === 'fulfilled').length, 3);
  assert.match(String((got.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason), /full/);
  assert.deepEqual(got.flatMap((r) => (r.status === 'fulfilled' ? [r.value.ip] : [])).sort(), ['10.0.1.1', '10.0.1.2', '10.0.1.3'].map((ip) => formatIpv4(parseIpv4(ip))));
});
