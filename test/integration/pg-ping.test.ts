// The in-process readiness check against a real PostgreSQL 15: it must agree with pg_isready before, during and
// after a start, and the handover checkpoint must run as the service user over the local socket.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/lib/exec.js';
import { waitFor } from '../../src/lib/time.js';
import { pgPing } from '../../src/services/pg-ping.js';
import { POSTGRES_BIN_DIR, asUser, postgresCheckpoint, postgresHealthy, postgresService, preparePostgres } from '../../src/services/postgres.js';
import { freePort } from '../helpers/etcd.js';
import { pgQuery } from '../helpers/pg-wire.js';

const skip = process.getuid?.() !== 0 ? 'needs root (runs postgres as the postgres user)' : !existsSync(join(POSTGRES_BIN_DIR, 'postgres')) ? 'postgresql-15 not installed' : undefined;
let base: string;
let o: { dataDir: string; runDir: string; listen: string; port: number };
let child: ChildProcess | undefined;

before(async () => {
  if (skip) return;
  base = mkdtempSync(join(tmpdir(), 'ycpgping-'));
  chmodSync(base, 0o755);
  o = { dataDir: join(base, 'data'), runDir: join(base, 'run'), listen: '127.0.0.1', port: await freePort() };
  await preparePostgres(o);
});

after(async () => {
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    const gone = new Promise((resolve) => child!.once('exit', resolve));
    process.kill(-child.pid, 'SIGKILL');
    await gone;
  }
  if (base) rmSync(base, { recursive: true, force: true });
});

async function pgIsReady(): Promise<boolean> {
  const r = await run(join(POSTGRES_BIN_DIR, 'pg_isready'), ['-q', '-h', o.runDir, '-p', String(o.port), '-t', '1'], { timeoutMs: 3000, allowFailure: true });
  return r.code === 0;
}

test('pgPing: no answer before the server runs, ready once it accepts connections (as pg_isready says)', { skip }, async () => {
  const socket = { path: join(o.runDir, `.s.PGSQL.${o.port}`) };
  assert.equal(await pgPing(socket, 500), 'no-response');
  assert.equal(await pgIsReady(), false);
  const spec = postgresService(o);
  const log = openSync(join(base, 'pg.log'), 'a');
  child = spawn(spec.command, spec.args, { stdio: ['ignore', log, log], detached: true });
  closeSync(log);
  const seen = new Set<string>();
  await waitFor('postgres ready', async () => {
    const r = await pgPing(socket, 1000);
    seen.add(r);
    return r === 'ready' ? true : undefined;
  }, { timeoutMs: 30_000, intervalMs: 5 });
  assert.equal(await pgIsReady(), true, 'pg_isready agrees once pgPing says ready');
  assert.equal(await postgresHealthy(o), true);
  assert.equal(await pgPing({ host: '127.0.0.1', port: o.port }, 1000), 'ready', 'over TCP too (password authentication still counts as ready)');
  assert.ok(!seen.has('rejecting') || seen.has('ready'));
});

test('the health check leaves nothing in the server log (it hangs up at the password request)', { skip }, async () => {
  const logFile = join(base, 'pg.log');
  const before = readFileSync(logFile, 'utf8').length;
  for (let i = 0; i < 5; i++) assert.equal(await postgresHealthy(o), true);
  // A failed login would be logged at once; give the server a moment to write anything it would.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(readFileSync(logFile, 'utf8').slice(before).trim(), '');
});

test('postgresCheckpoint runs a CHECKPOINT as the postgres user over the socket', { skip }, async () => {
  const before = await controlCheckpoint();
  await postgresCheckpoint(o);
  const after = await controlCheckpoint();
  assert.notEqual(after, before, 'pg_control records a newer checkpoint');
});

async function controlCheckpoint(): Promise<string> {
  const cd = asUser('postgres', [join(POSTGRES_BIN_DIR, 'pg_controldata'), '-D', o.dataDir]);
  const r = await run(cd.command, cd.args, { timeoutMs: 10_000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('Time of latest checkpoint:'));
  assert.ok(line, r.stdout);
  const redo = r.stdout.split('\n').find((l) => l.startsWith("Latest checkpoint's REDO location:"));
  return `${line} ${redo ?? ''}`;
}

/** psql over the local socket as the postgres user (peer authentication): what the wire client's tests check with. */
async function localSql(sql: string): Promise<string> {
  const p = asUser('postgres', [join(POSTGRES_BIN_DIR, 'psql'), '-X', '-Atq', '-h', o.runDir, '-p', String(o.port), '-d', 'postgres', '-c', sql]);
  return (await run(p.command, p.args, { timeoutMs: 10_000 })).stdout.trim();
}

test('the probes\' wire client: SCRAM-SHA-256 login over TCP, a write acknowledged and present; bad password, bad SQL and a statement timeout rejected with the server\'s reason', { skip }, async () => {
  await localSql("ALTER USER postgres PASSWORD 'probe-secret'");
  await localSql('CREATE TABLE IF NOT EXISTS wire(id int primary key)');
  const target = { host: '127.0.0.1', port: o.port, user: 'postgres', database: 'postgres', password: 'probe-secret' };
  await pgQuery(target, 'INSERT INTO wire(id) VALUES (42)', 5000);
  assert.equal(await localSql('SELECT id FROM wire'), '42');
  await assert.rejects(pgQuery({ ...target, password: 'wrong' }, 'SELECT 1', 5000), /28P01/);
  await assert.rejects(pgQuery(target, 'INSERT INTO wire(id) VALUES (42)', 5000), /23505: duplicate key/);
  await assert.rejects(pgQuery(target, 'SELECT pg_sleep(3)', 5000, '-c statement_timeout=200'), /57014/);
  await assert.rejects(pgQuery({ ...target, port: await freePort() }, 'SELECT 1', 2000), /ECONNREFUSED/);
});
