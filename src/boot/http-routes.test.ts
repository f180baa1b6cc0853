import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { YcError } from '../lib/errors.js';
import { bootDecision, handleBootRequest, type BootRequest } from './http-routes.js';
import type { BootConfig, BootLookup, BootNode, InstallState } from './types.js';

const config: BootConfig = {
  serverBaseUrl: 'http://10.0.0.1:8080',
  installerKernelUrl: 'http://mirror.example/vmlinuz',
  installerInitrdUrl: 'http://mirror.example/initrd',
  isoUrl: 'http://mirror.example/ubuntu.iso',
  sshAuthorizedKeys: ['ssh-ed25519 AAAA admin'],
  domain: 'cluster.lan',
  gatewayVip: '10.0.0.1',
  dnsServers: ['10.0.0.11'],
  prefixLength: 24,
};

/** An in-memory BootLookup that records what the routes asked of it. */
class MemoryLookup implements BootLookup {
  readonly nodes = new Map<string, BootNode>();
  readonly states = new Map<string, InstallState>();
  readonly registered: string[] = [];
  readonly tokens: string[] = [];
  admit: BootNode | undefined;
  nodeByMac(mac: string) {
    return Promise.resolve(this.nodes.get(mac));
  }
  registerUnknown(mac: string) {
    this.registered.push(mac);
    if (this.admit) this.nodes.set(mac, this.admit);
    return Promise.resolve(this.admit);
  }
  bootConfig() {
    return Promise.resolve(config);
  }
  installState(mac: string) {
    return Promise.resolve(this.states.get(mac) ?? 'install');
  }
  issueJoinToken(mac: string) {
    const token = `token-${mac.replace(/:/g, '')}-${this.tokens.length}`;
    this.tokens.push(token);
    return Promise.resolve(token);
  }
}

const MAC = 'aa:bb:cc:00:11:22';
const s1: BootNode = { mac: MAC, hostname: 's1', ip: '10.0.0.11', type: 'core' };
const get = (path: string, method = 'GET'): BootRequest => {
  const url = new URL(path, 'http://x');
  return { method, path: url.pathname, query: url.searchParams };
};
const setup = (): MemoryLookup => {
  const l = new MemoryLookup();
  l.nodes.set(MAC, s1);
  return l;
};

test('GET /boot.ipxe for a node to install, by MAC in any notation', async () => {
  const l = setup();
  for (const m of ['aa:bb:cc:00:11:22', 'AA-BB-CC-00-11-22', 'aabbcc001122']) {
    const r = await handleBootRequest(get(`/boot.ipxe?mac=${encodeURIComponent(m)}`), l);
    assert.equal(r.status, 200);
    assert.match(r.contentType, /^text\/plain/);
    assert.ok(r.body.startsWith('#!ipxe\n'));
    assert.ok(r.body.includes('autoinstall ds=nocloud-net;s=http://10.0.0.1:8080/autoinstall/aa-bb-cc-00-11-22/'));
  }
  assert.deepEqual(l.registered, []);
});

test('GET /boot.ipxe for an installed node boots locally', async () => {
  const l = setup();
  l.states.set(MAC, 'installed');
  const r = await handleBootRequest(get(`/boot.ipxe?mac=${MAC}`), l);
  assert.equal(r.status, 200);
  assert.ok(r.body.includes('sanboot --no-describe --drive 0x80'));
});

test('GET /boot.ipxe for an unknown MAC registers it and returns the discovery script', async () => {
  const l = setup();
  const r = await handleBootRequest(get('/boot.ipxe?mac=02:00:00:00:00:09'), l);
  assert.equal(r.status, 200);
  assert.ok(r.body.includes('not part of the cluster'));
  assert.deepEqual(l.registered, ['02:00:00:00:00:09']);
  // A rule that admits the MAC at once leads straight to the install.
  l.admit = { mac: '02:00:00:00:00:0a', hostname: 'c1', ip: '10.0.0.50', type: 'compute' };
  const r2 = await handleBootRequest(get('/boot.ipxe?mac=02:00:00:00:00:0a'), l);
  assert.ok(r2.body.includes('kernel http://mirror.example/vmlinuz'));
});

test('malformed or missing MAC is 400 JSON with a reason', async () => {
  const l = setup();
  for (const path of ['/boot.ipxe?mac=zz:zz', '/boot.ipxe', '/boot.ipxe?mac=', '/autoinstall/not-a-mac/user-data', '/autoinstall/%E0%A4%A/meta-data']) {
    const r = await handleBootRequest(get(path), l);
    assert.equal(r.status, 400, path);
    assert.equal(r.contentType, 'application/json');
    const body = JSON.parse(r.body);
    assert.equal(body.error, 'BAD_INPUT');
    assert.equal(typeof body.reason, 'string');
  }
  assert.deepEqual(l.registered, []);
});

test('user-data issues a fresh join token per fetch and embeds it', async () => {
  const l = setup();
  const r = await handleBootRequest(get('/autoinstall/aa-bb-cc-00-11-22/user-data'), l);
  assert.equal(r.status, 200);
  assert.match(r.contentType, /cloud-config/);
  assert.equal(l.tokens.length, 1);
  assert.ok(r.body.includes(l.tokens[0]!));
  const ai = (parse(r.body) as { autoinstall: { version: number; 'user-data': { hostname: string } } }).autoinstall;
  assert.equal(ai.version, 1);
  assert.equal(ai['user-data'].hostname, 's1');
  const r2 = await handleBootRequest(get('/autoinstall/aa:bb:cc:00:11:22/user-data'), l);
  assert.equal(l.tokens.length, 2);
  assert.ok(r2.body.includes(l.tokens[1]!) && !r2.body.includes(l.tokens[0]!));
});

test('user-data for an installed node is refused and issues no token', async () => {
  const l = setup();
  l.states.set(MAC, 'installed');
  const r = await handleBootRequest(get('/autoinstall/aa-bb-cc-00-11-22/user-data'), l);
  assert.equal(r.status, 409);
  assert.equal(l.tokens.length, 0);
});

test('meta-data and vendor-data', async () => {
  const l = setup();
  const meta = await handleBootRequest(get('/autoinstall/aa-bb-cc-00-11-22/meta-data'), l);
  assert.equal(meta.status, 200);
  assert.deepEqual(parse(meta.body), { 'instance-id': 'ycluster-aa-bb-cc-00-11-22', 'local-hostname': 's1' });
  const vendor = await handleBootRequest(get('/autoinstall/aa-bb-cc-00-11-22/vendor-data'), l);
  assert.deepEqual(vendor, { status: 200, contentType: 'text/plain; charset=utf-8', body: '' });
  assert.equal(l.tokens.length, 0);
});

test('unknown node seed is 404, unknown paths 404, non-GET 405', async () => {
  const l = setup();
  assert.equal((await handleBootRequest(get('/autoinstall/02-00-00-00-00-01/user-data'), l)).status, 404);
  assert.equal((await handleBootRequest(get('/autoinstall/aa-bb-cc-00-11-22/other'), l)).status, 404);
  assert.equal((await handleBootRequest(get('/etc/passwd'), l)).status, 404);
  const post = await handleBootRequest(get(`/boot.ipxe?mac=${MAC}`, 'POST'), l);
  assert.equal(post.status, 405);
  assert.equal(JSON.parse(post.body).error, 'METHOD_NOT_ALLOWED');
});

test('lookup failures map to their status; unexpected errors to 500, never a throw', async () => {
  const l = setup();
  l.nodeByMac = () => Promise.reject(new YcError('UNAVAILABLE', 'etcd unreachable'));
  const r = await handleBootRequest(get(`/boot.ipxe?mac=${MAC}`), l);
  assert.equal(r.status, 503);
  assert.deepEqual(JSON.parse(r.body), { error: 'UNAVAILABLE', reason: 'etcd unreachable' });
  l.nodeByMac = () => Promise.reject(new Error('boom'));
  assert.equal((await handleBootRequest(get(`/boot.ipxe?mac=${MAC}`), l)).status, 500);
});

test('bootDecision describes the boot without registering anything', async () => {
  const l = setup();
  const plan = await bootDecision('AA:BB:CC:00:11:22', l);
  assert.equal(plan.action, 'install');
  assert.equal(plan.action === 'install' && plan.hostname, 's1');
  assert.deepEqual(JSON.parse(JSON.stringify(plan)), plan);
  const unknown = await bootDecision('02:00:00:00:00:09', l);
  assert.equal(unknown.action, 'discover');
  assert.deepEqual(l.registered, []);
  await assert.rejects(bootDecision('nope', l), (e) => e instanceof YcError && e.code === 'BAD_INPUT');
});
