import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentConfigSchema } from './config.js';
import { asokCommand, cephDaemonList, cephDaemonSpec, daemonHealthy } from './ceph-daemons.js';

const base = { mac: '52:54:00:00:00:01', etcdEndpoints: ['127.0.0.1:2379'], dataDir: '/tmp/x' };

test('storage.driver is a choice: loop needs volumesDir, rbd needs pool, conf and keyring', () => {
  const loop = AgentConfigSchema.safeParse({ ...base, storage: { driver: 'loop', volumesDir: '/v', mountRoot: '/m' } });
  assert.ok(loop.success);
  const rbd = AgentConfigSchema.parse({ ...base, storage: { driver: 'rbd', pool: 'rbd', cephConf: '/c/ceph.conf', keyring: '/c/keyring', mountRoot: '/m', mapDir: '/r' } });
  assert.equal(rbd.storage?.driver, 'rbd');
  assert.equal(rbd.storage?.driver === 'rbd' ? rbd.storage.clientId : '', 'admin');
  assert.equal(rbd.storage?.volumeSizeMiB, 512);
  for (const bad of [
    { driver: 'rbd', pool: 'rbd', cephConf: '/c', mountRoot: '/m' }, // no keyring
    { driver: 'rbd', pool: 'rbd', cephConf: '/c', keyring: '/k', mountRoot: '/m', volumesDir: '/v' }, // loop field on rbd
    { driver: 'loop', mountRoot: '/m' }, // no volumesDir
    { driver: 'nbd', mountRoot: '/m' },
    { driver: 'rbd', pool: 'a b', cephConf: '/c', keyring: '/k', mountRoot: '/m' },
  ]) {
    assert.equal(AgentConfigSchema.safeParse({ ...base, storage: bad }).success, false, JSON.stringify(bad));
  }
});

test('the ceph section lists daemons in start order: mon, mgr, OSDs; each runs in the foreground', () => {
  const cfg = AgentConfigSchema.parse({ ...base, ceph: { conf: '/c/ceph.conf', mon: { id: 'a', dataDir: '/c/mon/ceph-a' }, mgr: { id: 'x', dataDir: '/c/mgr/ceph-x' }, osds: [{ id: 3, dataDir: '/c/osd/ceph-3' }] } }).ceph!;
  assert.deepEqual(cephDaemonList(cfg).map((d) => `${d.type}.${d.id}`), ['mon.a', 'mgr.x', 'osd.3']);
  const spec = cephDaemonSpec(cfg.conf, cephDaemonList(cfg)[2]!, '/logs');
  assert.equal(spec.command, 'ceph-osd');
  assert.deepEqual(spec.args, ['-c', '/c/ceph.conf', '-f', '-i', '3']);
  assert.equal(spec.logFile, '/logs/ceph-osd.3.out');
  assert.equal(AgentConfigSchema.safeParse({ ...base, ceph: { conf: '/c', osds: [{ id: -1, dataDir: '/d' }] } }).success, false);
  assert.equal(AgentConfigSchema.safeParse({ ...base, ceph: { conf: '/c', mon: { id: 'a b', dataDir: '/d' } } }).success, false);
});

test('a daemon whose data dir was never made fails its prepare with a clear reason', async () => {
  const spec = cephDaemonSpec('/nonexistent/ceph.conf', { type: 'osd', id: '0', dataDir: '/nonexistent/osd' }, '/tmp');
  await assert.rejects(spec.prepare!(new AbortController().signal), /data dir \/nonexistent\/osd is missing or empty \(not made with --mkfs\)/);
});

test('admin socket: NUL-terminated JSON request, length-prefixed reply; state decides health', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'yc-asok-'));
  const path = join(dir, 'osd.asok');
  let state = 'booting';
  const requests: string[] = [];
  const srv = createServer((c) => {
    let buf = '';
    c.on('data', (d: Buffer) => {
      buf += d.toString();
      if (!buf.endsWith('\0')) return;
      requests.push(buf.slice(0, -1));
      const prefix = (JSON.parse(buf.slice(0, -1)) as { prefix: string }).prefix;
      const body = Buffer.from(prefix === 'garbage' ? 'not json' : JSON.stringify({ state }));
      const len = Buffer.alloc(4);
      len.writeUInt32BE(body.length);
      // Split the reply to check reassembly.
      c.write(Buffer.concat([len, body.subarray(0, 3)]));
      setTimeout(() => c.end(body.subarray(3)), 5);
    });
  });
  await new Promise<void>((r) => srv.listen(path, r));
  t.after(() => {
    srv.close();
    rmSync(dir, { recursive: true, force: true });
  });
  assert.equal(await daemonHealthy('osd', path), false);
  state = 'active';
  assert.equal(await daemonHealthy('osd', path), true);
  state = 'leader';
  assert.equal(await daemonHealthy('mon', path), true);
  // One of three mons: a peon in the quorum is as healthy as the leader; out of quorum it is not.
  state = 'peon';
  assert.equal(await daemonHealthy('mon', path), true);
  for (const s of ['probing', 'electing', 'synchronizing']) {
    state = s;
    assert.equal(await daemonHealthy('mon', path), false, s);
  }
  assert.deepEqual(JSON.parse(requests[0]!), { prefix: 'status', format: 'json' });
  await assert.rejects(asokCommand(path, 'garbage'), /answered no JSON/);
  await assert.rejects(asokCommand(join(dir, 'none.asok'), 'status'), /ENOENT/);
});
