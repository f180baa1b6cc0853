// The storage leader role for real: loop volumes, real PostgreSQL 15 on 127.0.0.1 (root; no namespaces needed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/lib/exec.js';
import { monoMs, waitFor } from '../../src/lib/time.js';
import { asUser, POSTGRES_BIN_DIR, postgresHealthy, postgresService, preparePostgres, programArgv } from '../../src/services/postgres.js';
import { isMountPoint, loopDetach, loopList } from '../../src/storage/blockdev.js';
import { LoopDriver } from '../../src/storage/loop.js';
import { createStorageLeaderRole, type StorageLeaderRole } from '../../src/storage-leader/role.js';
import { findProcesses } from '../../src/storage-leader/procs.js';
import { MemoryLedger, fakeRoleContext } from '../../src/storage-leader/testing.js';

const skip = process.getuid?.() !== 0 ? 'needs root (loop devices, mounts)' : !existsSync(join(POSTGRES_BIN_DIR, 'postgres')) ? 'postgresql-15 not installed' : undefined;
const BUDGET_MS = 2000;

let base: string;
let port: number;
let role: StorageLeaderRole;
let driver: LoopDriver;
const logFile = (): string => join(base, 'postgres.log');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
}

async function psql(sql: string): Promise<string> {
  const { command, args } = asUser('postgres', ['psql', '-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-h', join(base, 'run-pg'), '-p', String(port), '-d', 'postgres', '-c', sql]);
  return (await run(command, args, { timeoutMs: 10_000 })).stdout.trim();
}

const pgSpecFor = (mountPoint: string): ReturnType<typeof postgresService> =>
  postgresService({ dataDir: join(mountPoint, 'data'), runDir: join(base, 'run-pg'), listen: '127.0.0.1', port, logFile: logFile() });

before(async () => {
  if (skip) return;
  base = mkdtempSync(join(tmpdir(), 'ycsl-int-'));
  chmodSync(base, 0o755); // the postgres user walks down to its data directory
  port = await freePort();
  driver = new LoopDriver({ dir: join(base, 'volumes') });
  execFileSync('mkdir', ['-p', join(base, 'volumes'), join(base, 'mnt')]);
  role = createStorageLeaderRole(fakeRoleContext('n1'), {
    driver,
    ledger: new MemoryLedger(),
    volumes: [{ name: 'pg', sizeMiB: 128, fsType: 'ext4' }],
    mountRoot: join(base, 'mnt'),
    services: { pg: (v) => [pgSpecFor(v.mountPoint)] },
    vip: undefined,
    stepDownBudgetMs: BUDGET_MS,
    startTimeoutMs: 30_000,
  });
});

after(async () => {
  if (skip) return;
  await role.stepDown('test cleanup').catch(() => undefined);
  const mp = join(base, 'mnt', 'pg');
  if (isMountPoint(mp)) execFileSync('umount', ['-l', mp]);
  for (const l of await loopList()) if (l.backFile?.startsWith(base)) await loopDetach(l.name).catch(() => undefined);
  rmSync(base, { recursive: true, force: true });
});

test('lead → write → stepDown (graceful, within budget) → lead with a larger token → rows still there', { skip }, async () => {
  await role.lead(10, new AbortController().signal);
  assert.equal(role.services()[0]?.healthy, true);
  await psql('create table kv (k text primary key, v text); insert into kv values (\'a\', \'1\'), (\'b\', \'2\');');
  const pid = role.services()[0]!.pid!;
  const pgArgv = programArgv(pgSpecFor(join(base, 'mnt', 'pg')));
  assert.deepEqual((await findProcesses([{ service: 'postgres', argv: pgArgv }])).map((p) => p.pid), [pid], 'the split-brain scan recognises the running postmaster');

  const t0 = monoMs();
  await role.stepDown('handover');
  const ms = monoMs() - t0;
  console.log(`stepDown took ${ms} ms`);
  assert.ok(ms < BUDGET_MS, `stepDown took ${ms} ms (budget ${BUDGET_MS})`);
  assert.equal(isMountPoint(join(base, 'mnt', 'pg')), false, 'unmounted');
  assert.deepEqual((await driver.status('pg')).holder, undefined, 'unlocked');
  assert.equal((await findProcesses([{ service: 'postgres', argv: pgArgv }])).length, 0, `postgres ${pid} is gone`);
  const firstLog = readFileSync(logFile(), 'utf8');
  assert.match(firstLog, /received fast shutdown request/);
  assert.match(firstLog, /database system is shut down/);

  await role.lead(11, new AbortController().signal);
  assert.equal(await psql('select string_agg(k || \'=\' || v, \',\' order by k) from kv'), 'a=1,b=2');
  const secondStart = readFileSync(logFile(), 'utf8').slice(firstLog.length);
  assert.match(secondStart, /database system was shut down at/);
  assert.doesNotMatch(secondStart, /not properly shut down|automatic recovery in progress|was interrupted/);
  assert.equal((await driver.status('pg')).holder?.token, 11);
  await role.stepDown('done');
});

test('a volume locked by a live holder with a larger token: lead fails with an alarm, nothing touched', { skip }, async () => {
  const other = new LoopDriver({ dir: join(base, 'volumes') });
  const holder = { node: 'n2', token: 50 };
  await other.lock('pg', holder, { breakStale: true });
  try {
    await assert.rejects(role.lead(12, new AbortController().signal), /lead failed at lock pg: .*locked by n2/);
    const alarm = role.checks().find((c) => c.name === 'storage-leader');
    assert.equal(alarm?.ok, false);
    assert.match(alarm.detail, /lock pg/);
    assert.deepEqual((await driver.status('pg')).holder, holder);
    assert.equal(isMountPoint(join(base, 'mnt', 'pg')), false);
    assert.deepEqual(role.services(), []);
    await role.stepDown('leader start failed');
  } finally {
    await other.unlock('pg', holder);
  }
});

test('follow: postgres left running on a non-leader with the volume mounted is an alarm, and is stopped gracefully and unmounted', { skip }, async (t) => {
  const stale = { node: 'n1', token: 60 };
  const mp = join(base, 'mnt', 'pg');
  await driver.lock('pg', stale, { breakStale: true });
  const device = await driver.map('pg', stale);
  await driver.mount(device, mp);
  t.after(async () => {
    if (isMountPoint(mp)) await driver.unmount(mp, { timeoutMs: 5000 });
    await driver.unmap('pg');
    await driver.unlock('pg', stale);
  });
  const o = { dataDir: join(mp, 'data'), runDir: join(base, 'run-pg'), listen: '127.0.0.1', port };
  await preparePostgres(o);
  const spec = postgresService(o);
  const log = openSync(join(base, 'stray.log'), 'a');
  const child = spawn(spec.command, spec.args, { stdio: ['ignore', log, log], detached: true });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
    closeSync(log);
  });
  const exited = new Promise((resolve) => child.once('exit', (code, sig) => resolve(sig ?? code)));
  await waitFor('stray postgres ready', async () => ((await postgresHealthy(o)) ? true : undefined), { timeoutMs: 15_000 });

  await role.follow();
  const alarm = role.checks().find((c) => c.name === 'storage-split-brain');
  assert.equal(alarm?.ok, false);
  assert.match(alarm.detail, new RegExp(`postgres \\(pid ${child.pid}\\).*volume pg mounted`));
  assert.equal(await exited, 0, 'postgres exited by itself after SIGINT (not killed)');
  assert.match(readFileSync(join(base, 'stray.log'), 'utf8'), /database system is shut down/);
  assert.equal(isMountPoint(mp), false);
});

test('the split-brain scan matches a command line longer than one read, and nothing short of the whole', async (t) => {
  const long = 'x'.repeat(20_000);
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)', '--', long], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  const argv = [process.execPath, '-e', 'setTimeout(() => {}, 60_000)', '--', long];
  const found = await waitFor('the long command line seen', async () => {
    const f = await findProcesses([{ service: 'long', argv }]);
    return f.length > 0 ? f : undefined;
  }, { timeoutMs: 10_000, intervalMs: 50 });
  assert.deepEqual(found.map((f) => [f.pid, f.service]), [[child.pid, 'long']]);
  assert.deepEqual(await findProcesses([{ service: 'short', argv: argv.slice(0, 4).concat('x') }]), [], 'a prefix of it is not a match');
});
