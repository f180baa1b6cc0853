// The in-process readiness check against a real PostgreSQL 15: it must agree with pg_isready before, during and
// after a start, and the handover checkpoint must run as the service user over the local socket.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/lib/exec.js';
import { monoMs, waitFor } from '../../src/lib/time.js';
import { pgPing } from '../../src/services/pg-ping.js';
import { FAILOVER_SETTINGS, POSTGRES_BIN_DIR, asUser, postgresCheckpoint, postgresHealthy, postgresService, preparePostgres } from '../../src/services/postgres.js';
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

/** A TCP connect that sends nothing: a client stalled before its startup packet. Resolves false when refused. */
function silentConnect(port: number, held: Socket[]): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const fail = (): void => {
      s.destroy();
      resolve(false);
    };
    // A full backlog drops the SYN rather than refusing it.
    s.setTimeout(500, fail);
    s.once('connect', () => {
      s.setTimeout(0);
      held.push(s);
      resolve(true);
    });
    s.once('error', fail);
    s.connect(port, '127.0.0.1');
  });
}

/** PIDs whose parent is `pid` (from /proc; a child gone meanwhile is skipped). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

// Last in this file: it stops the server the tests above share.
test('silent clients that connect during a fast shutdown hold it at most authentication_timeout (PostgreSQL 15 waits for its dead-end children)', { skip }, async () => {
  const boundS = Number(/^(\d+)s$/.exec(FAILOVER_SETTINGS.authentication_timeout ?? '')?.[1]);
  assert.ok(boundS > 0 && boundS < 5, `authentication_timeout ${FAILOVER_SETTINGS.authentication_timeout} must fit a drain's 5 s stop`);
  const pid = child?.pid;
  assert.ok(pid !== undefined && child!.exitCode === null, 'the server of the tests above runs');
  // Dirty buffers make the shutdown checkpoint take a while: the window in which new connections are dead ends.
  await localSql('CREATE TABLE dirt (g int, pad text)');
  await localSql("INSERT INTO dirt SELECT g, repeat('x', 200) FROM generate_series(1, 200000) g");
  const before = new Set(childrenOf(pid));
  const deadEnds = new Set<number>();
  const exited = new Promise<number>((resolve) => child!.once('exit', () => resolve(monoMs())));
  const held: Socket[] = [];
  const t0 = monoMs();
  process.kill(pid, 'SIGINT');
  try {
    // Connect and stay silent until a child is forked for one of them (a dead end: the server is shutting down),
    // or the server refuses.
    for (let i = 0; i < 500 && monoMs() - t0 < 10_000 && child!.exitCode === null; i++) {
      const ok = await silentConnect(o.port, held);
      for (const c of childrenOf(pid)) if (!before.has(c)) deadEnds.add(c);
      if (!ok || deadEnds.size > 0) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    const ms = await Promise.race([exited.then((t) => t - t0), new Promise<number>((r) => setTimeout(() => r(Infinity), 20_000))]);
    assert.ok(deadEnds.size > 0, `no child was forked for a connection after the signal (${held.length} connects accepted): the window was not exercised`);
    assert.ok(ms < (boundS + 3) * 1000, `the fast shutdown took ${ms} ms with ${deadEnds.size} dead-end children (authentication_timeout ${boundS} s)`);
  } finally {
    for (const s of held) s.destroy();
  }
});
