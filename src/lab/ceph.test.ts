import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cephConfigText, cephLabConfig, cephSecret, monCommands, monMgrCommands, monmapCommand, poolCreateCommands } from './ceph.js';

test('a cephx secret is the 28-byte AES key struct', () => {
  const raw = Buffer.from(cephSecret(1_700_000_000_123, Buffer.alloc(16, 7)), 'base64');
  assert.equal(raw.length, 28);
  assert.equal(raw.readUInt16LE(0), 1);
  assert.equal(raw.readUInt32LE(2), 1_700_000_000);
  assert.equal(raw.readUInt32LE(6), 123_000_000);
  assert.equal(raw.readUInt16LE(10), 16);
  assert.deepEqual(raw.subarray(12), Buffer.alloc(16, 7));
});

test('the config keeps every path under the lab dir and sets the single-host settings', () => {
  const text = cephConfigText({ dir: '/x/ceph', fsid: 'f', mons: [{ id: 'a', ip: '10.9.0.11' }], monPort: 6789, objectstore: 'memstore', poolSize: 1, publicNetwork: '10.9.0.0/24' });
  for (const key of ['run_dir', 'admin_socket', 'pid_file', 'log_file', 'mon_data', 'mgr_data', 'osd_data', 'keyring']) {
    const line = text.split('\n').find((l) => l.startsWith(`${key} =`));
    assert.ok(line?.includes('/x/ceph/'), `${key} under the lab dir: ${line}`);
  }
  for (const s of ['mon_host = [v1:10.9.0.11:6789]', 'osd_pool_default_size = 1', 'mon_allow_pool_size_one = true', 'osd_crush_chooseleaf_type = 0', 'mon_data_avail_warn = 5', 'osd_objectstore = memstore', 'rbd_cache = false', 'rbd_default_features = 1', 'public_network = 10.9.0.0/24', 'mon_client_ping_interval = 1', 'mon_client_ping_timeout = 3']) {
    assert.ok(text.includes(`\n${s}\n`), s);
  }
});

test('cephLabConfig writes conf and keyring; mon commands point at them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'yc-cephcfg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const lab = await cephLabConfig(dir, '10.9.0.11');
  assert.match(readFileSync(lab.conf, 'utf8'), new RegExp(`fsid = ${lab.fsid}`));
  const keyring = readFileSync(lab.keyring, 'utf8');
  for (const e of ['[mon.]', '[client.admin]', '[mgr.x]']) assert.ok(keyring.includes(e), e);
  const cmds = monMgrCommands(lab);
  assert.ok(cmds.setup[0]!.args.includes('[v1:10.9.0.11:6789]'));
  assert.deepEqual(cmds.run.map((c) => [c.command, c.args.includes('-f')]), [['ceph-mon', true], ['ceph-mgr', true]]);
});

test('lab settings: a crashed OSD is marked down within seconds, bluestore on a sparse file, no shared client admin socket', () => {
  const text = cephConfigText({ dir: '/x/ceph', fsid: 'f', mons: [{ id: 'a', ip: '10.0.0.11' }], monPort: 6789, objectstore: 'bluestore', poolSize: 2, publicNetwork: '10.0.0.0/24', bluestoreBlockBytes: 1 << 30 });
  for (const s of ['osd_objectstore = bluestore', 'osd_pool_default_size = 2', 'osd_heartbeat_grace = 6', 'mon_osd_min_down_reporters = 1', 'bluestore_block_create = true', `bluestore_block_size = ${1 << 30}`]) {
    assert.ok(text.includes(`\n${s}\n`), s);
  }
  const client = text.slice(text.indexOf('[client]'));
  assert.match(client, /\nadmin_socket =\n/);
});

test('the lab pool is made with only the mon up: created and tagged for rbd, never initialised (that writes)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'yc-cephpool-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const lab = await cephLabConfig(dir, '10.0.0.11', { poolSize: 2 });
  const cmds = poolCreateCommands(lab, 'rbd');
  assert.deepEqual(cmds.map((c) => [c.command, ...c.args.slice(c.args.indexOf('admin') + 1)]), [
    ['ceph', 'osd', 'pool', 'create', 'rbd', '8', '8'],
    ['ceph', 'osd', 'pool', 'application', 'enable', 'rbd', 'rbd'],
  ]);
});

test('three mons: mon_host lists each, the monmap adds each with its address, each mon is made from that monmap', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'yc-cephmons-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const mons = [{ id: 'a', ip: '10.0.0.11' }, { id: 'b', ip: '10.0.0.12' }, { id: 'c', ip: '10.0.0.13' }];
  const lab = await cephLabConfig(dir, mons, { publicNetwork: '10.0.0.0/24' });
  assert.match(readFileSync(lab.conf, 'utf8'), /\nmon_host = \[v1:10\.0\.0\.11:6789\],\[v1:10\.0\.0\.12:6789\],\[v1:10\.0\.0\.13:6789\]\n/);
  const map = monmapCommand(lab);
  assert.deepEqual(map.args.slice(map.args.indexOf('--addv')), ['--addv', 'a', '[v1:10.0.0.11:6789]', '--addv', 'b', '[v1:10.0.0.12:6789]', '--addv', 'c', '[v1:10.0.0.13:6789]', join(lab.dir, 'monmap')]);
  const b = monCommands(lab, 'b');
  assert.deepEqual(b.setup[0]!.args.slice(2), ['--mkfs', '-i', 'b', '--monmap', join(lab.dir, 'monmap'), '--keyring', lab.keyring]);
  assert.deepEqual(b.run.args.slice(2), ['-f', '-i', 'b']);
  assert.throws(() => monCommands(lab, 'd'), /not in the monmap/);
  assert.deepEqual(monMgrCommands(lab).run.map((c) => `${c.command} ${c.args.at(-1)}`), ['ceph-mon a', 'ceph-mon b', 'ceph-mon c', 'ceph-mgr x']);
  await assert.rejects(cephLabConfig(dir, [{ id: 'a', ip: '10.0.0.11' }, { id: 'a', ip: '10.0.0.12' }]), /unique/);
  await assert.rejects(cephLabConfig(dir, []), /at least one mon/);
});

test('a dead mon leader is replaced in seconds: short lease and election timeout', () => {
  const text = cephConfigText({ dir: '/x/ceph', fsid: 'f', mons: [{ id: 'a', ip: '10.0.0.11' }], monPort: 6789, objectstore: 'bluestore', poolSize: 2, publicNetwork: '10.0.0.0/24' });
  for (const s of ['mon_lease = 1', 'mon_election_timeout = 1', 'osd_pool_default_pg_autoscale_mode = off', 'objecter_timeout = 1', 'osd_pool_default_read_lease_ratio = 0.4']) assert.ok(text.includes(`\n${s}\n`), s);
});
