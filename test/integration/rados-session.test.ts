// RadosSession and its helper (libexec/ycluster-rados.py) against a single-host Ceph; the timeout path with a mute fake helper.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { isYcError, type ErrorCode } from '../../src/lib/errors.js';
import { run } from '../../src/lib/exec.js';
import { waitFor } from '../../src/lib/time.js';
import { markUnreachableOsdsDown, parseOsdDump, probeTcp } from '../../src/storage/osd-markdown.js';
import { RadosSession } from '../../src/storage/rados-session.js';
import { startCeph, type TestCeph } from '../helpers/ceph.js';

const PY = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../../libexec/ycluster-rados.py', import.meta.url));
const hasPython = existsSync(PY) && spawnSync(PY, ['-c', 'import rados, rbd'], { stdio: 'ignore' }).status === 0;
const hasCeph = ['ceph-mon', 'ceph-osd', 'ceph-mgr', 'rbd'].every((b) => ['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, b))));
const skip = !hasPython ? `${PY} cannot import rados and rbd (Debian python3-rados, python3-rbd)` : !hasCeph ? 'Ceph (ceph-mon, ceph-osd, ceph-mgr, rbd) is not installed' : undefined;

function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, re?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => (isYcError(err, code) && (re === undefined || re.test(err.message))) || assert.fail(`expected ${code} ${re ?? ''}, got ${String(err)}`));
}

/** Sends raw lines to a helper process and collects its answers by id. */
function rawHelper(conf: string): { proc: ChildProcessWithoutNullStreams; ask(line: string, id: number | null): Promise<Record<string, unknown>> } {
  const proc = spawn(PY, [SCRIPT, '--conf', conf, '--id', 'admin', '--pool', 'rbd', '--timeout', '10']);
  const waiting = new Map<number | null, (a: Record<string, unknown>) => void>();
  createInterface({ input: proc.stdout }).on('line', (l) => {
    const a = JSON.parse(l) as Record<string, unknown>;
    waiting.get(a.id as number | null)?.(a);
  });
  return {
    proc,
    ask: (line, id) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer to ${line} within 20 s`)), 20_000);
        waiting.set(id, (a) => {
          clearTimeout(timer);
          resolve(a);
        });
        proc.stdin.write(`${line}\n`);
      }),
  };
}

describe('RadosSession against Ceph', { skip }, () => {
  let ceph: TestCeph;
  let session: RadosSession;
  const slow: string[] = [];
  const children: { kill(sig: NodeJS.Signals): boolean; exitCode: number | null }[] = [];
  const rbd = (...args: string[]) => run('rbd', ['-c', ceph.conf, '--id', 'admin', ...args], { timeoutMs: 30_000 });

  before(async () => {
    ceph = await startCeph();
    session = new RadosSession({ conf: ceph.conf, id: 'admin', pool: ceph.pool, timeoutMs: 20_000, onSlow: (c) => slow.push(c) });
  });
  after(async () => {
    await session?.close();
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await ceph?.stop();
  });

  test('locks: add, list, conflict, break', async () => {
    await rbd('create', '--size', '16M', '--image-feature', 'layering', 'rbd/img-a');
    assert.equal(await session.exists('img-a'), true);
    assert.equal(await session.exists('img-none'), false);
    assert.deepEqual(await session.lockers('img-a'), []);
    await session.lockAdd('img-a', 'ycluster:a:1');
    const ls = await session.lockers('img-a');
    assert.equal(ls.length, 1);
    assert.equal(ls[0]!.id, 'ycluster:a:1');
    assert.match(ls[0]!.locker, /^client\.\d+$/);
    assert.match(ls[0]!.address, /^127\.0\.0\.1:\d+\/\d+$/);
    // The rbd CLI sees the same lock.
    const cli = JSON.parse((await rbd('lock', 'ls', 'rbd/img-a', '--format', 'json')).stdout) as { id: string; locker: string }[];
    assert.deepEqual(cli.map((l) => [l.id, l.locker]), [['ycluster:a:1', ls[0]!.locker]]);
    await rejectsWith(session.lockAdd('img-a', 'ycluster:b:2'), 'CONFLICT');
    await rejectsWith(session.lockAdd('img-a', 'ycluster:a:1'), 'CONFLICT');
    assert.equal(await session.lockBreak('img-a', 'ycluster:a:1', ls[0]!.locker), true);
    assert.deepEqual(await session.lockers('img-a'), []);
    assert.equal(await session.lockBreak('img-a', 'ycluster:a:1', ls[0]!.locker), false);
    // Breaking did not blocklist the locker (this very session): it still works.
    await session.lockAdd('img-a', 'ycluster:b:2');
    assert.equal((await session.lockers('img-a'))[0]?.id, 'ycluster:b:2');
    await rejectsWith(session.lockers('img-missing'), 'NOT_FOUND', /rbd\/img-missing/);
    await rejectsWith(session.lockAdd('img-missing', 'x'), 'NOT_FOUND');
    await rejectsWith(session.watchers('img-missing'), 'NOT_FOUND');
  });

  test('concurrent requests are all answered', async () => {
    const all = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? session.lockers('img-a') : session.exists(`img-x${i}`))));
    assert.equal(all.length, 12);
    assert.deepEqual(all.filter((x) => x === false).length, 6);
  });

  test('watchers, and blocklisting one through a monitor command', async () => {
    await rbd('create', '--size', '16M', '--image-feature', 'layering', 'rbd/img-w');
    assert.deepEqual(await session.watchers('img-w'), []);
    // A read-write open registers a watch, as rbd-fuse or a kernel map would.
    const holder = spawn(PY, ['-c', `import rados, rbd, sys
c = rados.Rados(conffile=sys.argv[1], rados_id='admin', conf={'admin_socket': ''}); c.connect(timeout=10)
img = rbd.Image(c.open_ioctx('rbd'), 'img-w')
print('open', flush=True); sys.stdin.read()`, ceph.conf]);
    children.push(holder);
    await new Promise<void>((resolve, reject) => {
      holder.stdout.once('data', () => resolve());
      holder.once('exit', (code) => reject(new Error(`watch holder exited ${code}`)));
    });
    const ws = await session.watchers('img-w');
    assert.equal(ws.length, 1);
    const addr = ws[0]!.address;
    assert.match(addr, /^127\.0\.0\.1:\d+\/\d+$/);
    const add = await session.monCommand({ prefix: 'osd blocklist', blocklistop: 'add', addr, expire: 600 });
    assert.equal(add.code, 0, add.outs);
    const ls = await session.monCommand({ prefix: 'osd blocklist ls', format: 'json' });
    assert.equal(ls.code, 0);
    assert.ok(ls.outbuf.includes(addr), `${addr} in ${ls.outbuf}`);
    const bad = await session.monCommand({ prefix: 'osd no-such-command' });
    assert.ok(bad.code < 0, 'an unknown monitor command answers with a negative code');
    holder.kill('SIGKILL');
  });

  test('osd dump as the OSD check reads it: the live OSD is up at an address that answers; nothing is marked down', async () => {
    const dump = await session.monCommand({ prefix: 'osd dump', format: 'json' });
    assert.equal(dump.code, 0, dump.outs);
    const osds = parseOsdDump(dump.outbuf).up;
    assert.equal(osds.length, 1, dump.outbuf.slice(0, 300));
    assert.equal(osds[0]!.host, '127.0.0.1');
    assert.equal(await probeTcp(osds[0]!.host, osds[0]!.port, 1000), 'open');
    const marked: number[][] = [];
    const down = await markUnreachableOsdsDown({
      dumpOsds: () => Promise.resolve(parseOsdDump(dump.outbuf)),
      markDown: (ids) => {
        marked.push(ids);
        return Promise.resolve();
      },
    });
    assert.deepEqual(down, []);
    assert.deepEqual(marked, []);
    await session.latestOsdmap();
  });

  test('a killed helper is replaced by the next request', async () => {
    assert.equal(await session.exists('img-a'), true);
    const pid = session.pid;
    assert.ok(pid !== undefined);
    process.kill(pid, 'SIGKILL');
    // Either the death is seen first (a new helper answers) or the request goes to the dying one and fails.
    const first = await session.exists('img-a').catch((err: unknown) => err);
    if (first !== true) assert.ok(isYcError(first, 'UNAVAILABLE'), String(first));
    assert.equal(await session.exists('img-a'), true);
    assert.notEqual(session.pid, pid);
  });

  test('bad requests are answered, and the helper goes on', async () => {
    await rejectsWith(session.lockers(''), 'UNAVAILABLE', /non-empty string/);
    assert.equal(await session.exists('img-a'), true);
    const h = rawHelper(ceph.conf);
    children.push(h.proc);
    try {
      assert.deepEqual(await h.ask('not json', null), { id: null, ok: false, errno: 22, error: 'bad request line: Expecting value: line 1 column 1 (char 0)' });
      assert.equal((await h.ask('{"id": 1, "op": "frobnicate"}', 1)).errno, 22);
      assert.equal((await h.ask('{"id": 2, "op": "lockers"}', 2)).errno, 22);
      assert.equal((await h.ask('{"id": 5, "op": "lock_add", "image": "img-a"}', 5)).errno, 22);
      assert.equal((await h.ask('{"id": 3, "op": "mon", "cmd": "osd dump"}', 3)).errno, 22);
      assert.deepEqual(await h.ask('{"id": 4, "op": "ping"}', 4), { id: 4, ok: true, result: 'pong' });
      const exited = new Promise<number | null>((r) => h.proc.once('exit', (code) => r(code)));
      h.proc.stdin.end();
      assert.equal(await exited, 0, 'the helper exits by itself when stdin closes');
    } finally {
      h.proc.kill('SIGKILL');
    }
  });

  test('close ends the helper; the session refuses further requests', async () => {
    const s = new RadosSession({ conf: ceph.conf, id: 'admin', pool: ceph.pool });
    assert.equal(await s.exists('img-a'), true);
    const pid = s.pid!;
    await s.close();
    assert.ok(isGone(pid), 'close waits for the helper to exit');
    await rejectsWith(s.exists('img-a'), 'UNAVAILABLE', /closed/);
  });
});

describe('RadosSession with a helper that never answers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'yc-rados-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a request over its time limit fails UNAVAILABLE, the helper is killed and replaced', async () => {
    const script = join(dir, 'mute.py');
    // Answers only pings; sits on everything else like a librados call on a dead OSD.
    writeFileSync(script, `import sys, json
for line in sys.stdin:
    r = json.loads(line)
    if r['op'] == 'ping': print(json.dumps({'id': r['id'], 'ok': True, 'result': 'pong'}), flush=True)
`);
    const slow: [string, number][] = [];
    const s = new RadosSession({ conf: '/nonexistent', id: 'admin', pool: 'rbd', python: 'python3', script, timeoutMs: 700, onSlow: (c, ms) => slow.push([c, ms]) });
    try {
      const a = s.lockers('img');
      const b = s.monCommand({ prefix: 'osd dump' });
      const pid = s.pid!;
      await rejectsWith(a, 'UNAVAILABLE', /^rados lockers rbd\/img: no answer within 700 ms$/);
      await rejectsWith(b, 'UNAVAILABLE', /^rados mon osd dump: /);
      assert.equal(s.pid, undefined);
      await waitFor('the mute helper to be killed', () => (isGone(pid) ? true : undefined), { timeoutMs: 5000 });
      assert.ok(slow.some(([c, ms]) => c === 'rados lockers rbd/img' && ms >= 500), JSON.stringify(slow));
      const c = s.exists('img');
      assert.ok(s.pid !== undefined && s.pid !== pid, 'the next request starts another helper');
      await rejectsWith(c, 'UNAVAILABLE', /no answer/);
    } finally {
      await s.close();
    }
  });

  test('a helper that cannot start fails the request with its reason', async () => {
    const s = new RadosSession({ conf: '/nonexistent', id: 'admin', pool: 'rbd', python: join(dir, 'no-python'), timeoutMs: 5000 });
    try {
      await rejectsWith(s.exists('img'), 'UNAVAILABLE', /ENOENT/);
    } finally {
      await s.close();
    }
  });
});
