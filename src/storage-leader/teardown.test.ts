import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../lib/log.js';
import type { Supervised } from '../lib/supervisor.js';
import { monoMs } from '../lib/time.js';
import { teardown, type Held } from './teardown.js';
import { FakeDriver, FakeProcesses, FakeVip } from './testing.js';

/** A service whose stop() only returns once `release` is called: a process in uninterruptible I/O, deaf even to SIGKILL. */
function stuckService(name: string): { service: Supervised; release: () => void } {
  let release!: () => void;
  const gone = new Promise<void>((resolve) => (release = resolve));
  return { service: { spec: { name }, stop: () => gone } as unknown as Supervised, release };
}

function rig(budgetMs: number): { journal: string[]; driver: FakeDriver; alarms: string[]; env: Parameters<typeof teardown>[1] } {
  const journal: string[] = [];
  const driver = new FakeDriver(journal);
  const alarms: string[] = [];
  const env = { driver, vipOps: new FakeVip(journal), processOps: new FakeProcesses(driver), logger: silentLogger, budgetMs, alarm: (n: string, d: string) => alarms.push(`${n}: ${d}`) };
  return { journal, driver, alarms, env };
}

function heldWith(service: Supervised, driver: FakeDriver): Held {
  driver.mounts.set('/mnt/a', '/dev/fake-a');
  driver.locks.set('a', { node: 'n1', token: 3 });
  return { holder: { node: 'n1', token: 3 }, services: [service], vip: undefined, volumes: [{ spec: { name: 'a', sizeMiB: 64, fsType: 'xfs' }, locked: true, mapping: 'mapped', device: '/dev/fake-a', mountPoint: '/mnt/a' }] };
}

test('a forced stop with services stuck in I/O past their budget: the volume is aborted, they die, and the volume is left for the follow pass', async () => {
  const r = rig(400);
  const stuck = stuckService('pg');
  r.driver.onAbort = () => stuck.release();
  const held = heldWith(stuck.service, r.driver);
  const t0 = monoMs();
  const clean = await teardown(held, r.env, 'deadline');
  assert.equal(clean, false);
  assert.ok(monoMs() - t0 < 1500, `took ${monoMs() - t0} ms`);
  assert.deepEqual(held.services, []);
  // Past the budget already: no unmount of a file system that lost its device; the lock stays for fencing.
  assert.deepEqual(r.journal.filter((l) => /^(abort|unmount|unmap|unlock) /.test(l)), ['abort a']);
  assert.match(r.alarms.join('\n'), /volumes a were aborted .*retried while following/);
  assert.equal(r.driver.locks.get('a')?.token, 3);
  // The follow pass's release (the same teardown, nothing left running) completes it.
  assert.equal(await teardown(held, r.env, 'retrying release while following'), true);
  assert.deepEqual(r.journal.filter((l) => /^(abort|unmount|unmap|unlock) /.test(l)), ['abort a', 'unmount a', 'unmap a', 'unlock a n1/3']);
  assert.equal(r.driver.mounts.size, 0);
});

test('a voluntary stop with services stuck past their budget: the volume is aborted, they die, and the release completes', async () => {
  const r = rig(400);
  const stuck = stuckService('pg');
  r.driver.onAbort = () => stuck.release();
  const held = heldWith(stuck.service, r.driver);
  const clean = await teardown(held, { ...r.env, handover: true }, 'drained');
  assert.equal(clean, true);
  assert.deepEqual(r.alarms, []);
  // The abort comes before the unmount: nothing is unmounted under a running service.
  assert.deepEqual(r.journal.filter((l) => /^(abort|unmount|unmap|unlock) /.test(l)), ['abort a', 'unmount a', 'unmap a', 'unlock a n1/3']);
  assert.equal(r.driver.mounts.size, 0);
  assert.deepEqual(held.services, []);
});

test('a service that outlives the abort too is left held with an alarm; its volume keeps map and lock', async () => {
  const r = rig(300);
  const stuck = stuckService('pg');
  const held = heldWith(stuck.service, r.driver);
  const clean = await teardown(held, r.env, 'deadline');
  assert.equal(clean, false);
  assert.match(r.alarms.join('\n'), /services did not stop, even with their volumes aborted/);
  assert.equal(held.services.length, 1);
  assert.ok(r.journal.includes('abort a'));
  stuck.release();
});

test('services that stop in time: nothing is aborted', async () => {
  const r = rig(400);
  const held = heldWith({ spec: { name: 'pg' }, stop: () => Promise.resolve() } as unknown as Supervised, r.driver);
  assert.equal(await teardown(held, r.env, 'resign'), true);
  assert.ok(!r.journal.some((l) => l.startsWith('abort')));
});
