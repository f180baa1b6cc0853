// Provisioning over real etcd on 127.0.0.1: the DHCP backend, the cluster cache feeding the DNS zone,
// the boot lookup, and `ycluster dhcp|dns|boot` with the matching admin API routes.
import { test, after, before, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { StateClient } from '../../src/state/client.js';
import { keys, prefixes, ROOT } from '../../src/state/keys.js';
import { defaultConfig, type NodeRecord } from '../../src/state/schema.js';
import { allocateNode } from '../../src/inventory/allocate.js';
import { silentLogger } from '../../src/lib/log.js';
import { isYcError } from '../../src/lib/errors.js';
import { ClusterCache } from '../../src/provision/cluster-cache.js';
import { EtcdDhcpBackend } from '../../src/provision/dhcp-backend.js';
import { EtcdBootLookup } from '../../src/provision/boot-lookup.js';
import { clusterZoneRecords } from '../../src/provision/dns-zone.js';
import { markInstalled } from '../../src/provision/install-state.js';
import { Zone } from '../../src/dns/records.js';
import { RType } from '../../src/dns/types.js';
import { Router } from '../../src/api/http.js';
import { addProvisionRoutes } from '../../src/api/routes-provision.js';
import { runCli } from '../../src/cli/index.js';

let etcd: TestEtcd;
let state: StateClient;
/** A second client, as another process would see etcd. */
let other: StateClient;
const caches: ClusterCache[] = [];

before(async () => {
  etcd = await startEtcd(1);
  state = new StateClient({ endpoints: etcd.endpoints });
  other = new StateClient({ endpoints: etcd.endpoints });
});
after(async () => {
  for (const c of caches) await c.stop();
  state.close();
  other.close();
  await etcd.stop();
});
beforeEach(async () => {
  await state.etcd.delete().prefix(ROOT);
});

const mac = (i: number, prefix = '02:00:00:00'): string => `${prefix}:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

async function newCache(): Promise<ClusterCache> {
  const c = new ClusterCache(state, silentLogger);
  await c.start();
  caches.push(c);
  return c;
}

async function revision(): Promise<number> {
  return Number((await state.etcd.kv.range({ key: Buffer.from(ROOT + 'probe') })).header.revision);
}

const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

test('DHCP backend: an unknown MAC is allocated with its rule type, a known MAC gets its node address', async () => {
  await state.put(keys.macRule('02:aa:bb'), { prefix: '02:aa:bb', type: 'frontend' });
  const known = (await allocateNode(state, { mac: mac(1), operatorType: 'storage' })).node;
  const backend = new EtcdDhcpBackend(state, await newCache(), silentLogger);

  const b1 = await backend.offer({ mac: mac(1) });
  assert.deepEqual([b1.ip, b1.hostname, b1.nodeType], [known.ip, known.hostname, known.type]);
  const ruled = await backend.offer({ mac: mac(2, '02:aa:bb:00') });
  assert.deepEqual([ruled.hostname, ruled.ip, ruled.nodeType], ['f1', defaultConfig.ranges.frontend.start, 'frontend']);
  const plain = await backend.offer({ mac: mac(3) });
  assert.deepEqual([plain.hostname, plain.ip, plain.nodeType], ['c1', defaultConfig.ranges.compute.start, 'compute']);
  // The allocation is in etcd at once: `ycluster node list` shows it.
  assert.equal((await other.getValue(keys.nodeByMac(mac(3))))?.hostname, 'c1');
  // Retransmitted DISCOVERs in flight together allocate once.
  const again = await Promise.all([1, 2, 3, 4, 5].map(() => backend.offer({ mac: mac(4) })));
  assert.equal(new Set(again.map((b) => b.ip)).size, 1);
  assert.equal((await state.list(prefixes.nodes)).entries.length, 4);
});

test('DHCP backend: commit of a wrong address is refused; a lease is in etcd before commit resolves; release and decline', async () => {
  const node = (await allocateNode(state, { mac: mac(1) })).node;
  const backend = new EtcdDhcpBackend(state, await newCache(), silentLogger);
  assert.equal(await backend.commit(mac(1), '10.0.0.99', 600), null, 'another address is NAKed');
  assert.equal(await backend.commit(mac(9), '10.0.0.52', 600), null, 'an unknown MAC is NAKed');
  assert.equal(await other.getValue(keys.dhcpLease(mac(1))), undefined, 'nothing written for a refused commit');

  const bound = await backend.commit(mac(1), node.ip, 600);
  assert.equal(bound?.ip, node.ip);
  const lease = await other.getValue(keys.dhcpLease(mac(1)));
  assert.equal(lease?.ip, node.ip, 'the lease was in etcd when commit resolved');
  const left = Date.parse(lease.expiresAt) - Date.now();
  assert.ok(left > 590_000 && left <= 600_000, `expiry ${left} ms from now`);
  const capped = await backend.commit(mac(1), node.ip, 10 * 86400);
  assert.equal(capped?.leaseSeconds, defaultConfig.dhcpLeaseSeconds, 'a client cannot ask for more than the configured lease');

  await backend.release(mac(1), '10.0.0.77');
  assert.ok(await other.getValue(keys.dhcpLease(mac(1))), 'a release naming another address is ignored');
  await backend.release(mac(1), node.ip);
  assert.equal(await other.getValue(keys.dhcpLease(mac(1))), undefined);
  assert.equal((await other.getValue(keys.nodeByMac(mac(1))))?.ip, node.ip, 'the node keeps its address');

  await backend.decline(mac(1), node.ip);
  assert.equal((await other.getValue(keys.dhcpDeclined(node.ip)))?.mac, mac(1));
});

test('DHCP backend: 200 concurrent commits are all persisted, in a few group transactions', async () => {
  // Node records written directly: the default ranges hold fewer than 200 addresses.
  const nodes: NodeRecord[] = Array.from({ length: 200 }, (_, i) => ({ mac: mac(i + 1, '02:00:00:01'), hostname: `c${i + 1}`, ip: `10.0.${1 + (i >> 8)}.${(i & 255) + 1}`, type: 'compute', typeSource: 'default', createdAt: 'x' }));
  await Promise.all(nodes.map((n) => state.put(keys.nodeByMac(n.mac), n)));
  const cache = await newCache();
  assert.equal(cache.nodes().length, 200);
  const backend = new EtcdDhcpBackend(state, cache, silentLogger);
  const rev0 = await revision();
  const t0 = performance.now();
  const results = await Promise.all(nodes.map((n) => backend.commit(n.mac, n.ip, 600)));
  const ms = performance.now() - t0;
  const txns = (await revision()) - rev0;
  assert.ok(results.every((r, i) => r?.ip === nodes[i]!.ip), 'every commit bound its node address');
  const leases = await other.list(prefixes.dhcpLeases);
  assert.equal(leases.entries.length, 200);
  for (const l of leases.entries) assert.equal(l.value.ip, nodes.find((n) => n.mac === l.value.mac)?.ip);
  // One etcd revision per transaction: far fewer than one per lease.
  assert.ok(txns >= 2 && txns <= 20, `200 leases took ${txns} transactions`);
  console.log(`# 200 concurrent commits: ${ms.toFixed(1)} ms, ${txns} etcd transactions`);
});

test('DHCP backend: 300 new machines at once are allocated in batches, unique, while another allocator competes', async () => {
  await state.put(keys.config, { ...defaultConfig, network: '10.0.0.0/16', ranges: { ...defaultConfig.ranges, compute: { start: '10.0.1.1', end: '10.0.2.200' } } });
  const cache = await newCache();
  const backend = new EtcdDhcpBackend(state, cache, silentLogger);
  const t0 = performance.now();
  const [offers, rivals] = await Promise.all([
    Promise.all(Array.from({ length: 300 }, (_, i) => backend.offer({ mac: mac(i) }))),
    // A second allocator in another client makes some batch transactions lose: they fall back one by one.
    Promise.all(Array.from({ length: 10 }, (_, i) => allocateNode(other, { mac: mac(i, '02:00:00:01') }))),
  ]);
  const ms = performance.now() - t0;
  // Retransmitted DISCOVERs for the same MACs get the same answer.
  const again = await Promise.all(Array.from({ length: 300 }, (_, i) => backend.offer({ mac: mac(i) })));
  assert.deepEqual(again.map((b) => b.ip), offers.map((b) => b.ip));
  const all = [...offers.map((b) => [b.hostname, b.ip]), ...rivals.map((r) => [r.node.hostname, r.node.ip])];
  assert.equal(new Set(all.map((x) => x[0])).size, 310, 'host names unique');
  assert.equal(new Set(all.map((x) => x[1])).size, 310, 'addresses unique');
  const nodes = await state.list(prefixes.nodes);
  assert.equal(nodes.entries.length, 310);
  for (const { value: n } of nodes.entries) assert.equal((await state.getValue(keys.nodeByIp(n.ip)))?.mac, n.mac);
  console.log(`300 new machines allocated in ${ms.toFixed(0)} ms (${(300_000 / ms).toFixed(0)}/s)`);
});

test('registration → resolvable: the cluster cache feeds the DNS zone within 100 ms at p90 (50 registrations)', async () => {
  const cache = await newCache();
  const zone = new Zone(defaultConfig.domain, clusterZoneRecords(cache.nodes(), cache.config()), { reverseCidrs: [defaultConfig.network] });
  cache.onChange(() => zone.replace(clusterZoneRecords(cache.nodes(), cache.config())));
  const resolvable = (name: string, ip: string): boolean => {
    const a = zone.view().lookup(`${name}.${defaultConfig.domain}`, RType.A);
    return Array.isArray(a) && a[0]?.data === ip;
  };
  const waitResolvable = (name: string, ip: string): Promise<void> =>
    new Promise((resolve, reject) => {
      if (resolvable(name, ip)) return resolve();
      const timer = setTimeout(() => {
        off();
        reject(new Error(`${name} not resolvable after 2 s`));
      }, 2000);
      const off = cache.onChange(() => {
        if (!resolvable(name, ip)) return;
        clearTimeout(timer);
        off();
        resolve();
      });
    });
  await state.put(keys.config, { ...defaultConfig, ranges: { ...defaultConfig.ranges, compute: { start: '10.0.0.101', end: '10.0.0.160' } } });
  const ms: number[] = [];
  const total: number[] = [];
  for (let i = 1; i <= 50; i++) {
    const t0 = performance.now();
    // Another client registers the node, as `ycluster node add` or an agent does; the clock for
    // "resolvable" starts when the registration is committed (allocateNode resolved).
    const { node } = await allocateNode(other, { mac: mac(i, '02:00:00:02') });
    const t1 = performance.now();
    await waitResolvable(node.hostname, node.ip);
    const t2 = performance.now();
    ms.push(t2 - t1);
    total.push(t2 - t0);
    const ptr = zone.view().lookup(`${node.ip.split('.').reverse().join('.')}.in-addr.arpa`, RType.PTR);
    assert.ok(Array.isArray(ptr) && ptr[0]?.data === `${node.hostname}.${defaultConfig.domain}`, `PTR of ${node.ip}`);
  }
  console.log(`# registration committed→resolvable over ${ms.length}: p50 ${percentile(ms, 50).toFixed(1)} ms, p90 ${percentile(ms, 90).toFixed(1)} ms, max ${Math.max(...ms).toFixed(1)} ms`);
  console.log(`# including the allocation transaction: p50 ${percentile(total, 50).toFixed(1)} ms, max ${Math.max(...total).toFixed(1)} ms`);
  // Typically under 10 ms. On this shared 2-core machine (load average 10–30 while other suites run) a
  // single watch delivery was seen at 163 ms, so the bound is on p90, with a looser cap on every one.
  assert.ok(percentile(ms, 90) < 100, `p90 ${percentile(ms, 90).toFixed(1)} ms`);
  for (const [i, v] of ms.entries()) assert.ok(v < 250, `registration ${i + 1} took ${v.toFixed(1)} ms`);
});

test('boot lookup: a clear error before boot configure; join tokens stored hashed, a new one replaces the old', async () => {
  const cache = await newCache();
  const lookup = new EtcdBootLookup(state, cache, 'http://10.0.0.11:8081');
  await assert.rejects(lookup.bootConfig(), (err) => isYcError(err, 'UNAVAILABLE') && /ycluster boot configure/.test(err.message));
  const t1 = await lookup.issueJoinToken(mac(1));
  const t2 = await lookup.issueJoinToken(mac(1));
  assert.notEqual(t1, t2);
  const stored = await other.getValue(keys.joinToken(mac(1)));
  const sha = (t: string): string => createHash('sha256').update(t).digest('hex');
  assert.equal(stored?.sha256, sha(t2), 'the newest token is the valid one');
  const raw = (await state.etcd.get(keys.joinToken(mac(1)).key).string()) ?? '';
  assert.ok(!raw.includes(t1) && !raw.includes(t2), 'no token in clear');
  const unknown = await lookup.registerUnknown(mac(2));
  assert.equal(unknown?.hostname, 'c1');
  assert.equal(await lookup.installState(mac(2)), 'install');
  await markInstalled(state, mac(2));
  assert.equal(await lookup.installState(mac(2)), 'installed', 'an agent that registered marks its node installed');
});

interface Captured {
  code: number;
  out: string;
  err: string;
}
async function cli(args: string[]): Promise<Captured> {
  let out = '';
  let err = '';
  const code = await runCli([...args, '--etcd', etcd.endpoints.join(',')], { out: (t) => (out += t), err: (t) => (err += t) }, {}, {});
  return { code, out, err };
}

test('CLI: dhcp leases|allocations|release, dns lookup, boot configure|show|installed|reinstall, and bad input', async () => {
  const s1 = (await allocateNode(state, { mac: mac(1), operatorType: 'core' })).node;
  const c1 = (await allocateNode(state, { mac: mac(2) })).node;
  const backend = new EtcdDhcpBackend(state, await newCache(), silentLogger);
  await backend.commit(c1.mac, c1.ip, 600);
  await state.put(keys.dhcpLease(mac(3)), { mac: mac(3), ip: '10.0.0.60', hostname: 'c9', expiresAt: new Date(Date.now() - 1000).toISOString() });

  const leases = await cli(['dhcp', 'leases', '--json']);
  assert.equal(leases.code, 0, leases.err);
  assert.deepEqual((JSON.parse(leases.out) as { mac: string; expired: boolean }[]).map((l) => [l.mac, l.expired]), [[mac(2), false], [mac(3), true]]);
  const allocs = await cli(['dhcp', 'allocations']);
  assert.match(allocs.out, new RegExp(`^c1 +compute +${c1.ip} +${mac(2)}`, 'm'));
  assert.match(allocs.out, /^s1 +core +10\.0\.0\.11/m);
  assert.equal((await cli(['dhcp', 'release', mac(2)])).code, 0);
  assert.equal(await other.getValue(keys.dhcpLease(mac(2))), undefined);
  assert.equal((await other.getValue(keys.nodeByMac(mac(2))))?.ip, c1.ip);
  const noLease = await cli(['dhcp', 'release', mac(2)]);
  assert.equal(noLease.code, 1);
  assert.match(noLease.err, /no DHCP lease for 02:00:00:00:00:02/);
  assert.match((await cli(['dhcp', 'release', 'nope'])).err, /malformed MAC/);

  const a = JSON.parse((await cli(['dns', 'lookup', 'c1', '--json'])).out) as { rcode: string; answers: { data: string }[] };
  assert.deepEqual([a.rcode, a.answers[0]?.data], ['NOERROR', c1.ip]);
  const ptr = await cli(['dns', 'lookup', s1.ip, '--type', 'ptr']);
  assert.match(ptr.out, /s1\.cluster\.local/);
  const srv = JSON.parse((await cli(['dns', 'lookup', '_etcd-client._tcp.cluster.local', '--type', 'SRV', '--json'])).out) as { answers: { data: { target: string } }[] };
  assert.deepEqual(srv.answers.map((x) => x.data.target), ['s1.cluster.local']);
  const nx = await cli(['dns', 'lookup', 'nobody']);
  assert.equal(nx.code, 1);
  assert.match(nx.out, /NXDOMAIN/);
  assert.match((await cli(['dns', 'lookup', 'example.com'])).err, /outside the cluster's zones/);
  assert.match((await cli(['dns', 'lookup', 'c1', '--type', 'MX'])).err, /unknown record type "MX"/);

  const notConfigured = await cli(['boot', 'show', c1.mac]);
  assert.equal(notConfigured.code, 3);
  assert.match(notConfigured.err, /boot settings are not configured/);
  const bad = await cli(['boot', 'configure', '--kernel', 'ftp://x/vmlinuz', '--initrd', 'http://10.0.0.250/initrd', '--iso', 'http://10.0.0.250/u.iso']);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /--kernel.*not http or https/);
  assert.match((await cli(['boot', 'configure', '--kernel', 'http://10.0.0.250/vmlinuz'])).err, /--initrd \(installerInitrdUrl\): Required/);
  assert.match((await cli(['boot', 'configure', '--kernel', 'http://10.0.0.250/k', '--initrd', 'http://10.0.0.250/i', '--iso', 'http://10.0.0.250/u.iso', '--ssh-key', 'not a key'])).err, /--ssh-key/);
  assert.equal(await other.getValue(keys.bootSettings), undefined, 'nothing written on bad input');
  const ok = await cli(['boot', 'configure', '--kernel', 'http://10.0.0.250/ubuntu/vmlinuz', '--initrd', 'http://10.0.0.250/ubuntu/initrd', '--iso', 'http://10.0.0.250/ubuntu.iso', '--ssh-key', 'ssh-ed25519 AAAAC3Nz op@laptop']);
  assert.equal(ok.code, 0, ok.err);
  assert.deepEqual((await other.getValue(keys.bootSettings))?.sshAuthorizedKeys, ['ssh-ed25519 AAAAC3Nz op@laptop']);
  assert.equal((await cli(['boot', 'configure', '--proxy', 'http://10.0.0.250:3128'])).code, 0, 'a later configure changes only what it names');
  assert.equal((await other.getValue(keys.bootSettings))?.installerKernelUrl, 'http://10.0.0.250/ubuntu/vmlinuz');

  const show = JSON.parse((await cli(['boot', 'show', c1.mac, '--json'])).out) as { plan: { action: string; kernelUrl: string; seedUrl: string }; script: string };
  assert.equal(show.plan.action, 'install');
  assert.equal(show.plan.kernelUrl, 'http://10.0.0.250/ubuntu/vmlinuz');
  assert.match(show.plan.seedUrl, /^http:\/\/10\.0\.0\.11:8081\/autoinstall\//, 'served by a core node when no DHCP leader is known');
  assert.match(show.script, /^#!ipxe/);
  const unknownShow = await cli(['boot', 'show', mac(77)]);
  assert.match(unknownShow.out, /discover/);
  assert.equal(await other.getValue(keys.nodeByMac(mac(77))), undefined, 'boot show registers nothing');
  assert.equal((await cli(['boot', 'installed', c1.mac])).code, 0);
  assert.match((await cli(['boot', 'show', c1.mac])).out, /local/);
  assert.equal((await cli(['boot', 'reinstall', c1.mac])).code, 0);
  assert.equal((await other.getValue(keys.installState(c1.mac)))?.state, 'install');
  const noNode = await cli(['boot', 'reinstall', mac(77)]);
  assert.equal(noNode.code, 1);
  assert.match(noNode.err, /no node with MAC/);
  assert.match((await cli(['boot', 'frobnicate'])).err, /unknown boot command/);
  assert.match((await cli(['boot', 'configure', '--kernal', 'x'])).err, /Unknown option '--kernal'/);
});

test('admin API: the same operations, 4xx JSON {error, reason} on bad input', async () => {
  const c1 = (await allocateNode(state, { mac: mac(2) })).node;
  await state.put(keys.dhcpLease(c1.mac), { mac: c1.mac, ip: c1.ip, hostname: c1.hostname, expiresAt: new Date(Date.now() + 60_000).toISOString() });
  const router = new Router();
  addProvisionRoutes(router, state, silentLogger);
  const call = async (method: string, url: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await router.dispatch(method, url, body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body));
    return { status: r.status, body: r.body as Record<string, unknown> };
  };
  assert.equal(((await call('GET', '/api/dhcp/leases')).body.leases as unknown[]).length, 1);
  assert.equal(((await call('GET', '/api/dhcp/allocations')).body.allocations as { leaseExpiresAt: string }[])[0]!.leaseExpiresAt !== null, true);
  assert.equal((await call('DELETE', `/api/dhcp/leases/${c1.mac}`)).status, 200);
  const again = await call('DELETE', `/api/dhcp/leases/${c1.mac}`);
  assert.deepEqual([again.status, again.body.error], [404, 'NOT_FOUND']);
  assert.equal((await call('DELETE', '/api/dhcp/leases/zz')).status, 400);

  const look = await call('GET', '/api/dns/lookup?name=c1.cluster.local&type=A');
  assert.deepEqual((look.body.answers as { data: string }[]).map((x) => x.data), [c1.ip]);
  const badType = await call('GET', '/api/dns/lookup?name=c1&type=TXT');
  assert.equal(badType.status, 400);
  assert.match(String(badType.body.reason), /unknown record type/);
  assert.equal((await call('GET', '/api/dns/lookup')).status, 400);

  assert.equal((await call('GET', `/api/boot/${c1.mac}`)).status, 503, 'boot settings not configured yet');
  const badSettings = await call('PUT', '/api/boot/settings', { installerKernelUrl: 'http://x/k', installerInitrdUrl: 'http://x/i', isoUrl: 'not a url' });
  assert.equal(badSettings.status, 400);
  assert.match(String(badSettings.body.reason), /isoUrl/);
  assert.equal((await call('PUT', '/api/boot/settings', { kernel: 'http://x/k' })).status, 400, 'unknown fields are refused');
  assert.equal((await call('PUT', '/api/boot/settings', '{nope')).status, 400);
  const put = await call('PUT', '/api/boot/settings', { installerKernelUrl: 'http://x/k', installerInitrdUrl: 'http://x/i', isoUrl: 'http://x/u.iso' });
  assert.equal(put.status, 200);
  assert.equal(((await call('GET', '/api/boot/settings')).body as { isoUrl: string }).isoUrl, 'http://x/u.iso');
  assert.equal(((await call('GET', `/api/boot/${c1.mac}`)).body.plan as { action: string }).action, 'install');
  assert.equal((await call('PUT', `/api/boot/${c1.mac}/install-state`, { state: 'installed' })).status, 200);
  assert.equal(((await call('GET', `/api/boot/${c1.mac}`)).body.plan as { action: string }).action, 'local');
  assert.equal((await call('PUT', `/api/boot/${c1.mac}/install-state`, { state: 'maybe' })).status, 400);
  assert.equal((await call('GET', '/api/boot/not-a-mac')).status, 400);
});
