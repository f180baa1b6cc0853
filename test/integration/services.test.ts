// Stateful services for real: docker-registry on 127.0.0.1, the VIP functions inside a namespace this test
// makes (never the host's), and qdrant when its binary is configured.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { run } from '../../src/lib/exec.js';
import { silentLogger } from '../../src/lib/log.js';
import { Supervised } from '../../src/lib/supervisor.js';
import { waitFor } from '../../src/lib/time.js';
import { QDRANT_NOT_INSTALLED, qdrantService, qdrantUnavailable } from '../../src/services/qdrant.js';
import { registryService } from '../../src/services/registry.js';

const isRoot = process.getuid?.() === 0;

function freePort(): Promise<number> {
  return new Promise((done, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => done(p));
    });
  });
}

test('docker-registry: our config, healthy on GET /v2/, data on the given directory, graceful stop', { skip: !isRoot ? 'needs root' : !existsSync('/usr/bin/docker-registry') ? 'docker-registry not installed' : undefined }, async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'ycreg-'));
  chmodSync(base, 0o755);
  const addr = `127.0.0.1:${await freePort()}`;
  const sup = new Supervised(registryService({ dataDir: join(base, 'vol', 'registry'), runDir: join(base, 'run'), addr, logFile: join(base, 'registry.log') }), silentLogger);
  t.after(async () => {
    await sup.stop();
    rmSync(base, { recursive: true, force: true });
  });
  sup.start();
  await waitFor('registry healthy', () => (sup.status().healthy ? true : undefined), { timeoutMs: 10_000 });
  const res = await fetch(`http://${addr}/v2/`);
  assert.equal(res.status, 200, 'no auth asked for');
  assert.equal(res.headers.get('www-authenticate'), null);
  // An upload session writes under the storage root: proof it is the directory we gave.
  const up = await fetch(`http://${addr}/v2/yc/test/blobs/uploads/`, { method: 'POST' });
  assert.equal(up.status, 202);
  assert.ok(existsSync(join(base, 'vol', 'registry', 'docker', 'registry', 'v2', 'repositories', 'yc', 'test')));
  assert.equal(statSync(join(base, 'vol', 'registry')).uid, Number(execFileSync('id', ['-u', 'docker-registry']).toString().trim()));
  const pid = sup.status().pid!;
  await sup.stop();
  assert.equal(sup.status().state, 'stopped');
  assert.throws(() => process.kill(pid, 0), 'registry process is gone');
});

test('qdrant through a configured binary', async (t) => {
  const binary = process.env.YCLUSTER_QDRANT_BIN ?? '/usr/local/bin/qdrant';
  if (qdrantUnavailable({ binary })) {
    t.skip(QDRANT_NOT_INSTALLED);
    return;
  }
  const base = mkdtempSync(join(tmpdir(), 'ycqd-'));
  const sup = new Supervised(qdrantService({ binary, dataDir: join(base, 'vol'), host: '127.0.0.1', httpPort: await freePort(), grpcPort: await freePort(), logFile: join(base, 'qdrant.log') }), silentLogger);
  t.after(async () => {
    await sup.stop();
    rmSync(base, { recursive: true, force: true });
  });
  sup.start();
  await waitFor('qdrant healthy', () => (sup.status().healthy ? true : undefined), { timeoutMs: 20_000 });
  assert.ok(existsSync(join(base, 'vol', 'storage')));
});

/** Runs vip.ts functions in a child inside the namespace; each call's result comes back as JSON. */
async function inNamespace(ns: string, calls: string): Promise<unknown> {
  const vip = resolve('src/services/vip.ts');
  const script = `import * as v from ${JSON.stringify(vip)}; const out = []; ${calls}; console.log(JSON.stringify(out));`;
  const res = await run('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], { timeoutMs: 20_000 });
  return JSON.parse(res.stdout.trim().split('\n').pop()!);
}

test('VIP add/remove/clear are idempotent and announce with gratuitous ARP (inside a test namespace)', { skip: !isRoot ? 'needs root' : undefined }, async (t) => {
  const ns = `ycvip${process.pid % 100000}`;
  execFileSync('ip', ['netns', 'add', ns]);
  t.after(() => execFileSync('ip', ['netns', 'del', ns]));
  const ipn = (...args: string[]): string => execFileSync('ip', ['-n', ns, ...args]).toString();
  ipn('link', 'add', 'ycv0', 'type', 'veth', 'peer', 'name', 'ycv1');
  ipn('link', 'set', 'ycv0', 'up');
  ipn('link', 'set', 'ycv1', 'up');
  ipn('link', 'set', 'lo', 'up');
  ipn('addr', 'add', '10.99.0.11/24', 'dev', 'ycv0');
  ipn('addr', 'add', '10.99.0.100/32', 'dev', 'ycv0'); // a stale VIP from a "crashed" run, with another prefix

  const out = (await inNamespace(ns, `
    out.push(v.hasVip('ycv0', '10.99.0.100/24'));
    out.push(await v.clearStaleVip('ycv0', '10.99.0.100/24'));
    out.push(v.hasVip('ycv0', '10.99.0.100/24'));
    out.push(await v.clearStaleVip('ycv0', '10.99.0.100/24'));
    out.push(await v.addVip('ycv0', '10.99.0.100/24'));
    out.push(await v.addVip('ycv0', '10.99.0.100/24'));
    out.push(await v.hasVip('ycv0', '10.99.0.100/24'));
  `)) as unknown[];
  assert.deepEqual(out, [true, true, false, false, { changed: true, arp: 'iputils-arping' }, { changed: false, arp: 'iputils-arping' }, true]);
  assert.match(ipn('-4', 'addr', 'show', 'dev', 'ycv0'), /inet 10\.99\.0\.100\/24/);
  assert.doesNotMatch(execFileSync('ip', ['-4', 'addr']).toString(), /10\.99\.0\.100/, 'the host namespace is untouched');

  const removed = (await inNamespace(ns, `
    out.push(await v.removeVip('ycv0', '10.99.0.100/24'));
    out.push(await v.removeVip('ycv0', '10.99.0.100/24'));
    out.push(v.hasVip('ycv0', '10.99.0.100/24'));
    out.push(v.hasVip('ycv0', '10.99.0.11/24'));
  `)) as unknown[];
  assert.deepEqual(removed, [true, false, false, true]);
  assert.doesNotMatch(ipn('-4', 'addr', 'show', 'dev', 'ycv0'), /10\.99\.0\.100/);
  assert.match(ipn('-4', 'addr', 'show', 'dev', 'ycv0'), /10\.99\.0\.11\/24/, 'the node address stays');
});
