import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keepalivedArgs, renderKeepalivedConf, validateKeepalivedConf, type VrrpOptions } from './keepalived.js';

const base: VrrpOptions = {
  routerId: 's1',
  instance: 'gateway',
  interface: 'eth0',
  vip: '10.0.0.254',
  prefix: 24,
  virtualRouterId: 42,
  priority: 250,
  version: 3,
  advertIntSeconds: 0.1,
  nopreempt: true,
  unicast: { src: '10.0.0.11', peers: ['10.0.0.13', '10.0.0.12'] },
  track: { name: 'agent_api', command: '/usr/bin/curl -s -o /dev/null -m 0.5 http://127.0.0.1:8080/api/health', intervalSeconds: 1, timeoutSeconds: 1, fall: 3, rise: 2 },
  scriptUser: 'root',
};

test('renders VRRPv3, sub-second adverts, BACKUP + nopreempt, unicast peers sorted, the VIP and the track script', () => {
  const c = renderKeepalivedConf(base);
  for (const line of ['vrrp_version 3', 'enable_script_security', 'script_user root', 'state BACKUP', 'nopreempt', 'interface eth0', 'virtual_router_id 42', 'priority 250', 'advert_int 0.1', 'unicast_src_ip 10.0.0.11', '10.0.0.254/24 dev eth0', 'script "/usr/bin/curl -s -o /dev/null -m 0.5 http://127.0.0.1:8080/api/health"']) {
    assert.ok(c.split('\n').some((l) => l.trim() === line), `missing "${line}" in\n${c}`);
  }
  assert.ok(c.indexOf('10.0.0.12') < c.indexOf('10.0.0.13'), 'peers sorted so the bytes do not depend on etcd order');
  assert.match(c, /track_script \{\n\s+agent_api\n\s+\}/);
  assert.equal(renderKeepalivedConf({ ...base, unicast: { src: '10.0.0.11', peers: ['10.0.0.12', '10.0.0.13'] } }), c, 'same input, same bytes');
});

test('multicast and no track script leave those blocks out', () => {
  const { unicast: _u, track: _t, ...rest } = base;
  const c = renderKeepalivedConf({ ...rest, nopreempt: false });
  assert.doesNotMatch(c, /unicast|track_script|vrrp_script|nopreempt/);
});

test('rejects values that could break out of their line or that keepalived would refuse', () => {
  const bad: Partial<VrrpOptions>[] = [
    { interface: 'eth0\n}\nvrrp_instance x {' },
    { interface: 'averyveryverylongname' },
    { vip: '10.0.0.256' },
    { prefix: 0 },
    { virtualRouterId: 0 },
    { virtualRouterId: 256 },
    { priority: 255 },
    { advertIntSeconds: 0 },
    { version: 2, advertIntSeconds: 0.1 },
    { routerId: 's1 }' },
    { unicast: { src: '10.0.0.11', peers: ['10.0.0.12"'] } },
    { track: { ...base.track!, command: 'curl localhost' } },
    { track: { ...base.track!, command: '/usr/bin/curl "x"' } },
    { scriptUser: 'root; rm' },
  ];
  for (const b of bad) assert.throws(() => renderKeepalivedConf({ ...base, ...b }), /keepalived:/, JSON.stringify(b));
});

test('the rendered config passes keepalived -t; a broken one fails with the parser\'s reason', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'yc-ka-'));
  try {
    const good = join(dir, 'good.conf');
    writeFileSync(good, renderKeepalivedConf(base));
    assert.deepEqual(await validateKeepalivedConf(good), { ok: true, detail: 'valid' });
    const v2 = join(dir, 'v2.conf');
    writeFileSync(v2, renderKeepalivedConf({ ...base, version: 2, advertIntSeconds: 1, nopreempt: false }));
    assert.equal((await validateKeepalivedConf(v2)).ok, true);
    const broken = join(dir, 'broken.conf');
    writeFileSync(broken, renderKeepalivedConf(base).replace('advert_int 0.1', 'advert_int nope'));
    const r = await validateKeepalivedConf(broken);
    assert.equal(r.ok, false);
    assert.match(r.detail, /invalid number 'nope'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('keepalived runs in the foreground, VRRP only, with every file where we say', () => {
  assert.deepEqual(keepalivedArgs({ conf: '/d/k.conf', pidFile: '/d/k.pid', vrrpPidFile: '/d/v.pid' }), ['-n', '-l', '-D', '-P', '-f', '/d/k.conf', '-p', '/d/k.pid', '-r', '/d/v.pid']);
});
