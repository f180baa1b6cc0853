import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExecResult } from '../lib/exec.js';
import { addVip, clearStaleVip, removeVip, splitVip, type CommandRunner } from './vip.js';

/** A runner over a fake interface: records every command, answers ip/arping like the real tools. */
function fakeIp(opts: { addrs?: { local: string; prefixlen: number }[]; arping?: 'iputils' | 'missing' | 'fails'; busybox?: boolean } = {}) {
  const addrs = [...(opts.addrs ?? [])];
  const calls: string[] = [];
  const ok = (stdout = ''): ExecResult => ({ code: 0, signal: null, stdout, stderr: '' });
  const fail = (stderr: string): ExecResult => ({ code: 1, signal: null, stdout: '', stderr });
  const runner: CommandRunner = (cmd, args) => {
    calls.push([cmd, ...args].join(' '));
    if (cmd === 'ip' && args[0] === '-j') return Promise.resolve(ok(JSON.stringify([{ ifname: 'eth0', addr_info: addrs.map((a) => ({ family: 'inet', ...a })) }])));
    if (cmd === 'ip' && args[1] === 'add') {
      const [ip, len] = args[2]!.split('/');
      // As the kernel: the same address with the same prefix exists already.
      if (addrs.some((a) => a.local === ip && a.prefixlen === Number(len))) return Promise.resolve(fail('Error: ipv4: Address already assigned.'));
      addrs.push({ local: ip!, prefixlen: Number(len) });
      return Promise.resolve(ok());
    }
    if (cmd === 'ip' && args[1] === 'del') {
      const i = addrs.findIndex((a) => `${a.local}/${a.prefixlen}` === args[2]);
      if (i < 0) return Promise.resolve(fail('RTNETLINK answers: Cannot assign requested address'));
      addrs.splice(i, 1);
      return Promise.resolve(ok());
    }
    if (cmd === 'arping') {
      if (opts.arping === 'missing') return Promise.reject(new Error('cannot run arping: ENOENT'));
      if (args[0] === '-V') return Promise.resolve(ok('arping from iputils 20221126'));
      return Promise.resolve(opts.arping === 'fails' ? fail('interface is not ARPable') : ok());
    }
    if (cmd === 'busybox') return Promise.resolve(opts.busybox === false ? fail('applet not found') : ok());
    return Promise.reject(new Error(`unexpected ${cmd}`));
  };
  return { runner, calls, addrs };
}

test('addVip adds once with one command (no look first), announces with iputils arping, and is idempotent', async () => {
  const f = fakeIp({ arping: 'iputils' });
  assert.deepEqual(await addVip('eth0', '10.0.0.100/24', f.runner), { changed: true, arp: 'iputils-arping' });
  assert.ok(f.calls.includes('ip addr add 10.0.0.100/24 dev eth0'));
  assert.ok(f.calls.includes('arping -U -c 1 -I eth0 10.0.0.100'));
  assert.ok(!f.calls.some((c) => c.startsWith('ip -j')), 'no look before the add');
  f.calls.length = 0;
  assert.deepEqual(await addVip('eth0', '10.0.0.100/24', f.runner), { changed: false, arp: 'iputils-arping' });
  assert.deepEqual(f.addrs, [{ local: '10.0.0.100', prefixlen: 24 }], 'still one address');
});

test('a slow iputils arping (it waits a second for replies after sending) does not hold up addVip', async () => {
  const f = fakeIp({ arping: 'iputils' });
  const slow: CommandRunner = (cmd, args, o) => (cmd === 'arping' && args[0] === '-U' ? new Promise((resolve) => setTimeout(() => resolve({ code: 0, signal: null, stdout: '', stderr: '' }), 1000)) : f.runner(cmd, args, o));
  const t0 = Date.now();
  assert.deepEqual(await addVip('eth0', '10.0.0.100/24', slow), { changed: true, arp: 'iputils-arping' });
  assert.ok(Date.now() - t0 < 500, `addVip took ${Date.now() - t0} ms`);
});

test('without iputils arping the busybox applet is used and reported; with neither, the reason is reported', async () => {
  const f = fakeIp({ arping: 'missing' });
  assert.deepEqual(await addVip('eth0', '10.0.0.100/24', f.runner), { changed: true, arp: 'busybox-arping' });
  assert.ok(f.calls.includes('busybox arping -U -c 1 -I eth0 10.0.0.100'));
  const g = fakeIp({ arping: 'fails', busybox: false });
  const res = await addVip('eth0', '10.0.0.100/24', g.runner);
  assert.equal(res.arp, 'none');
  assert.match(res.arpError ?? '', /not ARPable.*applet not found/);
});

test('removeVip and clearStaleVip remove whatever prefix the address carries, and only report a change once', async () => {
  const f = fakeIp({ addrs: [{ local: '10.0.0.11', prefixlen: 24 }, { local: '10.0.0.100', prefixlen: 32 }] });
  assert.equal(await clearStaleVip('eth0', '10.0.0.100/24', f.runner), true);
  assert.ok(f.calls.includes('ip addr del 10.0.0.100/32 dev eth0'));
  assert.deepEqual(f.addrs, [{ local: '10.0.0.11', prefixlen: 24 }]);
  assert.equal(await removeVip('eth0', '10.0.0.100/24', f.runner), false);
});

test('bad VIPs are refused before any command runs', () => {
  assert.throws(() => splitVip('10.0.0.300/24'), /not an IPv4 address/);
  assert.throws(() => splitVip('10.0.0.1/40'), /not an IPv4 address/);
  assert.deepEqual(splitVip('10.0.0.1'), { ip: '10.0.0.1', prefix: 32, cidr: '10.0.0.1/32' });
});
