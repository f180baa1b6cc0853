import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive } from '../lib/exec.js';
import type { ServiceSpec } from '../lib/supervisor.js';
import { monoMs, sleep, waitFor } from '../lib/time.js';
import { createStorageLeaderRole, programName, type StorageLeaderRole } from './role.js';
import { FakeDriver, FakeProcesses, FakeVip, MemoryLedger, fakeRoleContext } from './testing.js';
import type { StorageLeaderDeps, VolumeServices } from './types.js';

const volumes: StorageLeaderDeps['volumes'] = [
  { name: 'a', sizeMiB: 64, fsType: 'ext4' },
  { name: 'b', sizeMiB: 64, fsType: 'ext4' },
];

/** The journal lines about one volume, in order (volumes are brought up and released concurrently). */
const of = (journal: string[], v: string): string[] => journal.filter((l) => new RegExp(`(^\\S+ ${v}( |$))|fake-${v}$`).test(l));

const readyFile = (name: string): string => join(tmpdir(), `ycsl-ready-${process.pid}-${name}`);

/** A long-running child that stops on SIGTERM (or ignores it), healthy at once unless told otherwise. */
function sleeper(name: string, o: { ignoreTerm?: boolean; healthy?: boolean } = {}): ServiceSpec {
  if (o.ignoreTerm) {
    // Healthy only once the handler is in place, so the stop really meets a process that ignores SIGTERM.
    const ready = readyFile(name);
    const script = `process.on('SIGTERM', () => {}); require('fs').writeFileSync(${JSON.stringify(ready)}, ''); setInterval(() => {}, 1000)`;
    return { name, command: process.execPath, args: ['-e', script], health: () => Promise.resolve(existsSync(ready)), healthIntervalMs: 20, stopSignal: 'SIGTERM', stopTimeoutMs: 10_000 };
  }
  return { name, command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'], health: () => Promise.resolve(o.healthy ?? true), healthIntervalMs: 20, stopSignal: 'SIGTERM', stopTimeoutMs: 10_000 };
}

interface Rig {
  role: StorageLeaderRole;
  journal: string[];
  driver: FakeDriver;
  vip: FakeVip;
  procs: FakeProcesses;
  cleanup: () => void;
}

function rig(services: Record<string, VolumeServices>, extra: Partial<StorageLeaderDeps> = {}): Rig {
  const journal: string[] = [];
  const driver = new FakeDriver(journal);
  const vip = new FakeVip(journal);
  const procs = new FakeProcesses(driver);
  const mountRoot = mkdtempSync(join(tmpdir(), 'ycsl-'));
  const role = createStorageLeaderRole(fakeRoleContext('n1'), {
    driver, volumes, ledger: new MemoryLedger(), mountRoot, services, vip: { iface: 'eth0', cidr: '10.0.0.100/24' }, vipOps: vip, processOps: procs, stepDownBudgetMs: 1000, startTimeoutMs: 2000, standbySettleMs: 0, ...extra,
  });
  return { role, journal, driver, vip, procs, cleanup: () => rmSync(mountRoot, { recursive: true, force: true }) };
}

/** A lead (token 8) whose mount of volume a waits until `open` is called; `rejected` settles once lead has failed. */
async function leadStuckAtMount(t: TestContext, failure: RegExp): Promise<{ r: Rig; open: () => void; election: AbortController; rejected: Promise<void> }> {
  const r = rig({ a: () => [sleeper('svc-a')] });
  t.after(r.cleanup);
  let open!: () => void;
  r.driver.mountGate = new Promise((resolve) => (open = resolve));
  const election = new AbortController();
  const rejected = assert.rejects(r.role.lead(8, election.signal), failure);
  while (!r.journal.includes('mount /dev/fake-a')) await new Promise((resolve) => setImmediate(resolve));
  return { r, open, election, rejected };
}

test('lead takes each volume in order, starts services, claims the VIP once the first volume\'s started; stepDown releases in reverse after the services stopped', async (t) => {
  const r = rig({ a: () => [sleeper('svc-a')], b: () => [sleeper('svc-b')] });
  t.after(r.cleanup);
  await r.role.lead(7, new AbortController().signal);
  assert.deepEqual(of(r.journal, 'a'), ['ensure a', 'lock a n1/7 breakStale', 'map a', 'mount /dev/fake-a']);
  assert.deepEqual(of(r.journal, 'b'), ['ensure b', 'lock b n1/7 breakStale', 'map b', 'mount /dev/fake-b']);
  assert.equal(r.journal.length, 9);
  assert.ok(r.journal.indexOf('vip add') > r.journal.indexOf('mount /dev/fake-a'), 'the VIP comes after the first volume\'s mount');
  const services = r.role.services();
  assert.deepEqual(services.map((s) => [s.name, s.state, s.healthy]), [['svc-a', 'running', true], ['svc-b', 'running', true]]);
  assert.ok(r.role.checks().every((c) => c.ok));
  assert.match(r.role.checks().find((c) => c.name === 'storage-leader')!.detail, /token 7.*gratuitous ARP: iputils-arping/);
  const pids = services.map((s) => s.pid!);
  const aliveAtUnmount: boolean[] = [];
  r.driver.onUnmount = () => aliveAtUnmount.push(...pids.map(isAlive));
  r.journal.length = 0;
  const t0 = monoMs();
  await r.role.stepDown('test');
  assert.ok(monoMs() - t0 < 1000, 'within the budget');
  assert.equal(r.journal[0], 'vip remove', 'the VIP is the first thing released');
  assert.deepEqual(of(r.journal, 'a'), ['unmount a', 'unmap a', 'unlock a n1/7']);
  assert.deepEqual(of(r.journal, 'b'), ['unmount b', 'unmap b', 'unlock b n1/7']);
  assert.equal(r.journal.length, 7);
  assert.deepEqual(aliveAtUnmount, [false, false, false, false], 'services are gone before any unmount');
  assert.deepEqual(r.role.services(), []);
  assert.equal(r.vip.on, false);
});

test('only a volume created now, or one its driver knows is blank, is formatted', async (t) => {
  const r = rig({});
  t.after(r.cleanup);
  r.driver.existing.delete('a');
  r.driver.formatted.delete('a');
  r.driver.formatted.delete('b'); // exists, never formatted (its first leader died before mkfs)
  await r.role.lead(1, new AbortController().signal);
  assert.deepEqual(r.journal.filter((l) => l.startsWith('format')), ['format /dev/fake-a', 'format /dev/fake-b']);
  await r.role.stepDown('again');
  r.journal.length = 0;
  await r.role.lead(2, new AbortController().signal);
  assert.deepEqual(r.journal.filter((l) => l.startsWith('format')), [], 'existing, formatted volumes are never handed to formatIfBlank');
  await r.role.stepDown('done');
});

test('a volume the cluster knows that vanished is not created again: clear alarm, nothing touched; forgotten, it is made afresh', async (t) => {
  const ledger = new MemoryLedger();
  const r = rig({ a: () => [sleeper('svc-a')] }, { ledger });
  t.after(r.cleanup);
  r.driver.existing.delete('a');
  r.driver.formatted.delete('a');
  await r.role.lead(1, new AbortController().signal);
  await r.role.stepDown('done');
  r.driver.existing.delete('a');
  r.driver.formatted.delete('a');
  r.journal.length = 0;
  await assert.rejects(r.role.lead(2, new AbortController().signal), /volume a is missing: the cluster created it on .* \(n1, token 1\); it is not created again.*storage forget a/);
  assert.ok(!r.journal.some((l) => /^(ensure|format) /.test(l)), `journal: ${r.journal.join(', ')}`);
  assert.match(r.role.checks().find((c) => c.name === 'storage-leader')?.detail ?? '', /lead failed at lock a: volume a is missing/);
  assert.equal(r.driver.existing.has('a'), false);
  assert.deepEqual([...r.driver.locks.keys()], [], 'everything taken was released');
  ledger.records.delete('a'); // what `ycluster storage forget a --yes` does
  await r.role.lead(3, new AbortController().signal);
  assert.ok(r.journal.includes('ensure a') && r.journal.includes('format /dev/fake-a'));
  assert.equal(ledger.records.get('a')?.adopted, false);
  await r.role.stepDown('done');
});

test('a known volume that reads blank is never formatted: clear alarm at mount, nothing touched', async (t) => {
  const ledger = new MemoryLedger();
  const r = rig({ a: () => [sleeper('svc-a')] }, { ledger });
  t.after(r.cleanup);
  await r.role.lead(1, new AbortController().signal);
  assert.ok(ledger.records.get('a')?.formattedAt, 'the file system is recorded');
  await r.role.stepDown('done');
  r.driver.formatted.delete('a'); // e.g. wiped, or another image mapped under its name
  r.journal.length = 0;
  await assert.rejects(r.role.lead(2, new AbortController().signal), /volume a reads blank, but a file system has been on it since .*: it is not formatted again/);
  assert.ok(!r.journal.some((l) => l.startsWith('format ')), `journal: ${r.journal.join(', ')}`);
  assert.equal(r.role.isLeading(), false);
  assert.equal(r.driver.mounts.size, 0);
});

test('an existing volume the ledger does not know is adopted: recorded, formatted only if blank', async (t) => {
  const ledger = new MemoryLedger();
  const r = rig({}, { ledger });
  t.after(r.cleanup);
  r.driver.formatted.delete('b'); // exists, blank
  await r.role.lead(1, new AbortController().signal);
  assert.deepEqual(r.journal.filter((l) => l.startsWith('format')), ['format /dev/fake-b']);
  assert.deepEqual([ledger.records.get('a')?.adopted, ledger.records.get('b')?.adopted], [true, true]);
  assert.ok(ledger.records.get('a')?.formattedAt && ledger.records.get('b')?.formattedAt);
  await r.role.stepDown('done');
});

test('a lock held by a live holder with a larger token: lead fails, undoes, alarms, touches nothing', async (t) => {
  const r = rig({ a: () => [sleeper('svc-a')], b: () => [sleeper('svc-b')] });
  t.after(r.cleanup);
  r.driver.locks.set('b', { node: 'n2', token: 9 });
  await assert.rejects(r.role.lead(7, new AbortController().signal), /lead failed at lock b: .*locked by n2 with token 9/);
  assert.deepEqual(of(r.journal, 'b'), ['ensure b', 'lock b n1/7 breakStale'], 'nothing of b is touched after its lock failed');
  assert.equal(of(r.journal, 'a').at(-1), 'unlock a n1/7', 'whatever a got to is undone');
  assert.ok(!r.journal.includes('vip add'));
  const check = r.role.checks().find((c) => c.name === 'storage-leader');
  assert.equal(check?.ok, false);
  assert.match(check.detail, /lead failed at lock b/);
  assert.deepEqual(r.role.services(), []);
  assert.deepEqual(r.driver.locks.get('b'), { node: 'n2', token: 9 }, 'the other holder keeps its lock');
  // The election then calls stepDown: nothing left to do, and the alarm stays.
  r.journal.length = 0;
  await r.role.stepDown('leader start failed');
  assert.deepEqual(r.journal, []);
  assert.equal(r.role.checks().find((c) => c.name === 'storage-leader')?.ok, false);
  // It stays through this node's own re-election, and is history once another node has won.
  r.role.onNewLeader('n1');
  r.role.onNewLeader(undefined);
  assert.equal(r.role.checks().find((c) => c.name === 'storage-leader')?.ok, false);
  r.role.onNewLeader('n2');
  assert.equal(r.role.checks().find((c) => c.name === 'storage-leader'), undefined);
});

test('a service that never becomes healthy: lead fails after the bound, the service is stopped, the VIP and the volumes released', async (t) => {
  const r = rig({ a: () => [sleeper('sick', { healthy: false })] }, { startTimeoutMs: 300 });
  t.after(r.cleanup);
  await assert.rejects(r.role.lead(3, new AbortController().signal), /lead failed at wait for healthy services: not healthy after 300 ms: sick \(starting\)/);
  assert.equal(r.vip.on, false);
  assert.ok(r.journal.lastIndexOf('vip remove') > r.journal.indexOf('vip add'), r.journal.join(', '));
  assert.deepEqual(of(r.journal, 'a').slice(-3), ['unmount a', 'unmap a', 'unlock a n1/3']);
  assert.deepEqual(of(r.journal, 'b').slice(-3), ['unmount b', 'unmap b', 'unlock b n1/3']);
  assert.equal(r.driver.mounts.size, 0);
  assert.equal(r.driver.locks.size, 0);
});

test('the VIP is claimed once every service has started, before they answer: lead waits for both', async (t) => {
  let answers = false;
  const slow = (): ServiceSpec => ({ ...sleeper('slow-answer'), health: () => Promise.resolve(answers) });
  const r = rig({ a: () => [slow()] });
  t.after(r.cleanup);
  let done = false;
  const leading = r.role.lead(4, new AbortController().signal).then(() => (done = true));
  for (let i = 0; i < 2000 && !r.vip.on; i++) await new Promise((resolve) => setTimeout(resolve, 1));
  assert.equal(r.vip.on, true, `journal: ${r.journal.join(', ')}`);
  assert.equal(r.role.services()[0]?.healthy, false);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(done, false, 'still waiting for the service');
  answers = true;
  await leading;
  assert.ok(r.role.checks().find((c) => c.name === 'storage-leader')?.ok);
  await r.role.stepDown('test over');
});

test('the start bound leaves out a service\'s preparation (initdb on a fresh volume): a slow prepare then a quick start is healthy', async (t) => {
  const slow = (): ServiceSpec => ({ ...sleeper('slow-prep'), prepare: () => new Promise((resolve) => setTimeout(resolve, 600)) });
  const r = rig({ a: () => [slow()] }, { startTimeoutMs: 300 });
  t.after(r.cleanup);
  await r.role.lead(3, new AbortController().signal);
  assert.ok(r.journal.includes('vip add'));
  await r.role.stepDown('test over');
});

test('a mount failure undoes the map and the locks of every volume', async (t) => {
  const r = rig({});
  t.after(r.cleanup);
  r.driver.fail.mount = new Map([['b', new Error('wrong fs type')]]);
  await assert.rejects(r.role.lead(4, new AbortController().signal), /lead failed at mount b: wrong fs type/);
  assert.deepEqual(of(r.journal, 'b').slice(-3), ['mount /dev/fake-b', 'unmap b', 'unlock b n1/4']);
  assert.deepEqual(of(r.journal, 'a').slice(-3), ['unmount a', 'unmap a', 'unlock a n1/4']);
  assert.equal(r.driver.locks.size, 0);
});

test('stepDown kills a service that ignores its stop signal, still within the budget', async (t) => {
  const r = rig({ a: () => [sleeper('stubborn', { ignoreTerm: true })] });
  t.after(r.cleanup);
  t.after(() => rmSync(readyFile('stubborn'), { force: true }));
  await r.role.lead(5, new AbortController().signal);
  const pid = r.role.services()[0]!.pid!;
  const t0 = monoMs();
  await r.role.stepDown('test');
  const ms = monoMs() - t0;
  assert.ok(ms >= 450 && ms < 1000, `stepDown took ${ms} ms: SIGKILL at half the 1000 ms budget`);
  assert.equal(isAlive(pid), false);
  assert.equal(r.driver.locks.size, 0);
});

test('a voluntary stepDown (resign, drain) gives services the longer resign budget before SIGKILL', async (t) => {
  const r = rig({ a: () => [sleeper('stubborn-v', { ignoreTerm: true })] }, { resignBudgetMs: 3000 });
  t.after(r.cleanup);
  t.after(() => rmSync(readyFile('stubborn-v'), { force: true }));
  await r.role.lead(5, new AbortController().signal);
  const pid = r.role.services()[0]!.pid!;
  const t0 = monoMs();
  await r.role.stepDown('drained', { voluntary: true });
  const ms = monoMs() - t0;
  assert.ok(ms >= 1450 && ms < 2500, `stepDown took ${ms} ms: SIGKILL at half the 3000 ms resign budget`);
  assert.equal(isAlive(pid), false);
  assert.equal(r.driver.locks.size, 0);
});

test('unmount that keeps failing: map and lock are left for the next leader, an alarm is raised, the budget holds; the next term retries', async (t) => {
  const r = rig({ a: () => [sleeper('svc-a')] });
  t.after(r.cleanup);
  await r.role.lead(5, new AbortController().signal);
  const pid = r.role.services()[0]!.pid!;
  r.driver.fail.unmount = new Map([['a', new Error('target is busy')]]);
  const t0 = monoMs();
  await r.role.stepDown('test');
  assert.ok(monoMs() - t0 < 1000);
  assert.equal(isAlive(pid), false);
  assert.ok(r.journal.filter((l) => l === 'unmount a').length >= 2, 'retried');
  assert.ok(!r.journal.includes('unmap a') && !r.journal.includes('unlock a n1/5'));
  assert.equal(r.driver.locks.get('a')?.token, 5);
  assert.match(r.role.checks().find((c) => c.name === 'storage-teardown')?.detail ?? '', /volume a is still mounted/);
  r.driver.fail.unmount = undefined;
  r.journal.length = 0;
  await r.role.lead(6, new AbortController().signal);
  assert.deepEqual(r.journal.slice(0, 4), ['unmount a', 'unmap a', 'unlock a n1/5', 'lock a n1/6 breakStale']);
  await r.role.stepDown('done');
});

/** A term (token 5) whose stepDown could not unmount volume a ("target is busy"): left behind, still mounted. */
async function termLeftMounted(t: TestContext): Promise<Rig> {
  const r = rig({ a: () => [sleeper('svc-a')] });
  t.after(r.cleanup);
  await r.role.lead(5, new AbortController().signal);
  r.driver.fail.unmount = new Map([['a', new Error('target is busy')]]);
  await r.role.stepDown('deadline');
  return r;
}

test('a term left behind is retried while following: once released, its alarm clears and it is never called a split brain', async (t) => {
  const r = await termLeftMounted(t);
  assert.match(r.role.checks().find((c) => c.name === 'storage-teardown')?.detail ?? '', /volume a is still mounted/);
  await r.role.follow();
  await r.role.follow();
  await settle();
  assert.equal(r.role.checks().find((c) => c.name === 'storage-split-brain'), undefined, 'its own leftover is not a stray');
  assert.equal(r.driver.mounts.size, 1, 'still mounted while unmount fails');
  assert.equal(r.driver.warm.size, 0, 'nothing on standby while a past term is still held');
  r.driver.fail.unmount = undefined;
  await r.role.follow();
  assert.equal(r.driver.mounts.size, 0);
  assert.equal(r.driver.locks.size, 0);
  assert.deepEqual(r.role.checks(), [], 'released: no alarm left');
});

test('a past term\'s volume held by a stray child of its service: follow stops that child, names any other holder, and the alarm says who holds it', async (t) => {
  const r = await termLeftMounted(t);
  const mp = r.role.mountPoint('a');
  // The service's program retitled as a child would be (PostgreSQL's "postgres: checkpointer"), and an operator's shell.
  r.procs.holding.set(mp, [{ pid: 4242, service: '', argv: [`${process.execPath}: checkpointer`] }, { pid: 4343, service: '', argv: ['-bash'] }]);
  await r.role.follow();
  assert.deepEqual(r.procs.stopped, [{ pid: 4242, signal: 'SIGKILL' }], 'only the service\'s own child is stopped');
  const detail = r.role.checks().find((c) => c.name === 'storage-teardown')?.detail ?? '';
  assert.match(detail, /held by pid 4242 \(.*: checkpointer\), stopped; pid 4343 \(-bash\); its lock/);
  assert.equal(r.role.checks().find((c) => c.name === 'storage-split-brain'), undefined);
  r.driver.fail.unmount = undefined;
  await r.role.follow();
  assert.equal(r.driver.mounts.size, 0);
  assert.deepEqual(r.role.checks(), [], 'released: no alarm left');
});

test('programName: a path\'s last part, or the program of a retitled child', () => {
  assert.equal(programName('/usr/lib/postgresql/15/bin/postgres'), 'postgres');
  assert.equal(programName('postgres: ycluster app 10.0.0.5(5432) idle'), 'postgres');
  assert.equal(programName('-bash'), '-bash');
});

test('a takeover stuck after its term ended owns its mounts: follow leaves them alone; a new term waits for it or refuses', async (t) => {
  const { r, open, election, rejected } = await leadStuckAtMount(t, /leadership ended during mount/);
  election.abort(new Error('deadline'));
  await r.role.stepDown('deadline');
  // The stuck mount finishes later; until its takeover has released it, follow must not scan.
  r.driver.mounts.set(r.role.mountPoint('a'), '/dev/fake-a');
  await r.role.follow();
  assert.equal(r.role.checks().find((c) => c.name === 'storage-split-brain'), undefined);
  await assert.rejects(r.role.lead(9, new AbortController().signal), /previous takeover on this node has not finished/);
  open();
  await rejected;
  await r.role.follow();
  assert.equal(r.driver.mounts.size, 0);
  assert.equal(r.role.checks().find((c) => c.name === 'storage-split-brain'), undefined);
  await r.role.lead(10, new AbortController().signal);
  assert.equal(r.role.isLeading(), true);
  await r.role.stepDown('done');
});

test('stepDown while lead is still mounting: lead rejects and everything taken is released', async (t) => {
  const { r, open, election, rejected } = await leadStuckAtMount(t, /leadership ended during mount [ab]/);
  election.abort(new Error('deadline'));
  const down = r.role.stepDown('deadline');
  open();
  await down;
  await rejected;
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(r.driver.mounts.size, 0);
  assert.equal(r.driver.locks.size, 0);
  assert.deepEqual(r.role.services(), []);
  assert.ok(!r.journal.includes('vip add'));
});

test('the first volume is brought up alone: the others are locked at once but map only once its services answer', async (t) => {
  let answers = false;
  const r = rig({ a: () => [{ ...sleeper('svc-a'), health: () => Promise.resolve(answers) }], b: () => [sleeper('svc-b')] });
  t.after(r.cleanup);
  let open!: () => void;
  r.driver.mountGate = new Promise((resolve) => (open = resolve));
  const leading = r.role.lead(9, new AbortController().signal);
  for (let i = 0; i < 1000 && !(r.journal.includes('mount /dev/fake-a') && r.journal.includes('lock b n1/9 breakStale')); i++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(r.journal.includes('lock b n1/9 breakStale'), `journal: ${r.journal.join(', ')}`);
  assert.ok(!r.journal.includes('map b') && !r.journal.includes('vip add'), `journal: ${r.journal.join(', ')}`);
  open();
  // svc-a started but does not answer yet: the VIP is claimed, volume b still waits.
  await waitFor('the VIP', () => (r.journal.includes('vip add') ? true : undefined), { timeoutMs: 2000, intervalMs: 5 });
  await sleep(100);
  assert.ok(!r.journal.includes('map b'), `b waits for svc-a's first answer: ${r.journal.join(', ')}`);
  answers = true;
  await leading;
  assert.ok(r.journal.indexOf('map b') > r.journal.indexOf('vip add'), `journal: ${r.journal.join(', ')}`);
  await r.role.stepDown('done');
});

test('follow: a service process, a mount or the VIP on a non-leader is a split-brain alarm and is stopped', async (t) => {
  const r = rig({ a: (v) => [{ ...sleeper('pg'), command: '/bin/pg', args: ['-D', join(v.mountPoint, 'data')], stopSignal: 'SIGINT' }] });
  t.after(r.cleanup);
  await r.role.follow();
  assert.deepEqual(r.role.checks(), [], 'nothing found, nothing reported');
  const mp = r.role.mountPoint('a');
  r.procs.running = [{ pid: 4242, service: 'pg', argv: ['/bin/pg', '-D', join(mp, 'data')] }, { pid: 4343, service: 'pg', argv: ['/bin/pg', '-D', '/elsewhere'] }];
  r.vip.on = true;
  r.driver.mounts.set(mp, '/dev/fake-a');
  await r.role.follow();
  assert.deepEqual(r.procs.stopped, [{ pid: 4242, signal: 'SIGINT' }]);
  assert.equal(r.vip.on, false);
  assert.equal(r.driver.mounts.size, 0);
  const alarm = r.role.checks().find((c) => c.name === 'storage-split-brain');
  assert.equal(alarm?.ok, false);
  assert.match(alarm.detail, /pg \(pid 4242\), volume a mounted at .*, VIP 10\.0\.0\.100\/24 on eth0/);
});

test('an unavailable service is reported, not started nor awaited', async (t) => {
  const r = rig({ a: () => [{ name: 'qdrant', unavailable: 'qdrant binary not installed (/opt/qdrant)' }] });
  t.after(r.cleanup);
  await r.role.lead(2, new AbortController().signal);
  const s = r.role.services();
  assert.deepEqual(s.map((x) => [x.name, x.state, x.lastError]), [['qdrant', 'failed', 'qdrant binary not installed (/opt/qdrant)']]);
  const c = r.role.checks().find((x) => x.name === 'service:qdrant');
  assert.equal(c?.ok, false);
  await r.role.stepDown('done');
  assert.deepEqual(r.role.services(), []);
});

/** Lets the role's queued work (warm-up, cool-down chains) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

test('a leader handing over: the follower gets every volume ready; its takeover maps the ready volumes', async (t) => {
  const r = rig({ a: () => [sleeper('svc-a')] });
  t.after(r.cleanup);
  r.role.onNewLeader('n2', { handingOver: true });
  await settle();
  assert.deepEqual([...r.driver.warm].sort(), ['a', 'b']);
  await r.role.lead(9, new AbortController().signal);
  assert.ok(r.journal.includes('map a (warm)') && r.journal.includes('map b (warm)'), r.journal.join('\n'));
  await r.role.stepDown('test');
});

test('the handover went to another node: what was got ready is dropped; a node that may not take over gets nothing ready', async (t) => {
  const r = rig({});
  t.after(r.cleanup);
  r.role.onNewLeader('n2', { handingOver: true });
  await settle();
  r.role.onNewLeader('n3', { handingOver: false });
  await settle();
  assert.deepEqual(r.driver.warm.size, 0);
  assert.ok(r.journal.includes('unprepare a') && r.journal.includes('unprepare b'), r.journal.join('\n'));

  const asked: string[] = [];
  const no = rig({}, { mayTakeOver: (leader) => (asked.push(leader), Promise.resolve(false)) });
  t.after(no.cleanup);
  no.role.onNewLeader('n2', { handingOver: true });
  await settle();
  assert.deepEqual(asked, ['n2']);
  assert.ok(!no.journal.some((l) => l.startsWith('prepare')), no.journal.join('\n'));
});

test('a node that would take over keeps its volumes on standby: through a leader change, into its takeover; one that would not, drops them', async (t) => {
  let may = true;
  const r = rig({ a: () => [sleeper('svc-a')] }, { mayTakeOver: () => Promise.resolve(may) });
  t.after(r.cleanup);
  r.role.onNewLeader('n2');
  await r.role.follow(); // the first pass only drops what an earlier run of the agent left
  await r.role.follow();
  await settle();
  assert.deepEqual([...r.driver.warm].sort(), ['a', 'b']);
  assert.deepEqual([...r.driver.warmMode.values()], ['standby', 'standby']);
  r.role.onNewLeader('n3');
  await r.role.follow();
  await settle();
  assert.ok(!r.journal.some((l) => l.startsWith('unprepare')), `a leader change drops nothing on standby: ${r.journal.join(', ')}`);
  await r.role.lead(9, new AbortController().signal);
  assert.ok(r.journal.includes('map a (warm)') && r.journal.includes('map b (warm)'), r.journal.join('\n'));
  await r.role.stepDown('test');

  r.role.onNewLeader('n2');
  await r.role.follow();
  await settle();
  assert.deepEqual([...r.driver.warm].sort(), ['a', 'b'], 'standby again after leading');
  may = false;
  r.role.onNewLeader('n3');
  await r.role.follow();
  await settle();
  assert.equal(r.driver.warm.size, 0, 'a node that would not take over keeps nothing ready');
});

test('no standby while no leader is known, nor for a new leader until it has led for the settle time', async (t) => {
  const r = rig({}, { standbySettleMs: 300 });
  t.after(r.cleanup);
  await r.role.follow(); // the first pass only drops what an earlier run of the agent left
  await r.role.follow();
  await settle();
  assert.equal(r.driver.warm.size, 0, 'no leader: an election is under way');
  r.role.onNewLeader('n2');
  await r.role.follow();
  await settle();
  assert.equal(r.driver.warm.size, 0, 'a leader just elected is still taking over');
  await sleep(350);
  await r.role.follow();
  await settle();
  assert.deepEqual([...r.driver.warm].sort(), ['a', 'b']);
  r.role.onNewLeader(undefined);
  r.role.onNewLeader('n3');
  await r.role.follow();
  await settle();
  assert.deepEqual([...r.driver.warm].sort(), ['a', 'b'], 'what is on standby stays through a leader change');
});

test('a handover after standby opens the volumes further; if it goes elsewhere, standby resumes', async (t) => {
  const r = rig({});
  t.after(r.cleanup);
  r.role.onNewLeader('n2');
  await r.role.follow();
  await r.role.follow();
  await settle();
  r.role.onNewLeader('n2', { handingOver: true });
  await settle();
  assert.deepEqual([...r.driver.warmMode.values()], ['handover', 'handover']);
  r.role.onNewLeader('n3');
  await settle();
  assert.equal(r.driver.warm.size, 0, 'what a handover opened may be fenced by the new leader: dropped');
  await r.role.follow();
  await settle();
  assert.deepEqual([...r.driver.warmMode.values()], ['standby', 'standby']);
});

test('a voluntary stepDown flushes (service hook, syncfs) while the VIP is still up; a forced one does not', async (t) => {
  const hooked: string[] = [];
  const svc = (name: string): ServiceSpec => ({ ...sleeper(name), beforeHandover: () => (hooked.push(name), r.journal.push(`hook ${name}`), Promise.resolve()) });
  const r: Rig = rig({ a: () => [svc('svc-a')] });
  t.after(r.cleanup);
  await r.role.lead(7, new AbortController().signal);
  const vipBefore = r.journal.length;
  await r.role.stepDown('drained', { voluntary: true });
  assert.deepEqual(hooked, ['svc-a']);
  assert.deepEqual(r.procs.synced.sort(), [r.role.mountPoint('a'), r.role.mountPoint('b')].sort());
  const after = r.journal.slice(vipBefore);
  assert.ok(after.indexOf('hook svc-a') >= 0 && after.indexOf('hook svc-a') < after.indexOf('vip remove'), after.join('\n'));

  await r.role.lead(8, new AbortController().signal);
  await r.role.stepDown('deadline');
  assert.deepEqual(hooked, ['svc-a'], 'no hook on a forced stepDown');
  assert.equal(r.procs.synced.length, 2);
});
