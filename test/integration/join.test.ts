// Join-token redemption and MAC-prefix rules over real etcd on 127.0.0.1: POST /api/join (success, reuse,
// expiry, wrong token, wrong MAC, malformed input, a race), the joining client (`ycluster join`, the agent's
// first start) against a real HTTP server, and `ycluster rules` with /api/rules.
import { test, after, before, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { StateClient } from '../../src/state/client.js';
import { keys, ROOT } from '../../src/state/keys.js';
import { allocateNode, removeNode } from '../../src/inventory/allocate.js';
import { silentLogger } from '../../src/lib/log.js';
import { isYcError } from '../../src/lib/errors.js';
import { ClusterCache } from '../../src/provision/cluster-cache.js';
import { EtcdBootLookup } from '../../src/provision/boot-lookup.js';
import { ensureJoined } from '../../src/provision/join-client.js';
import { agentBootstrapConfig } from '../../src/boot/autoinstall.js';
import { AgentConfigSchema } from '../../src/agent/config.js';
import { Router, startHttpServer } from '../../src/api/http.js';
import { addProvisionRoutes } from '../../src/api/routes-provision.js';
import { runCli } from '../../src/cli/index.js';

let etcd: TestEtcd;
let state: StateClient;
let cache: ClusterCache | undefined;
let server: Server;
let apiUrl: string;
const router = new Router();
const dir = mkdtempSync(join(tmpdir(), 'yc-join-'));

before(async () => {
  etcd = await startEtcd(1);
  state = new StateClient({ endpoints: etcd.endpoints });
  addProvisionRoutes(router, state, silentLogger);
  server = await startHttpServer(router, 0, '127.0.0.1', silentLogger);
  apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await cache?.stop();
  await new Promise<void>((r) => server.close(() => r()));
  server.closeAllConnections();
  state.close();
  await etcd.stop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await cache?.stop();
  await state.etcd.delete().prefix(ROOT);
  const c = new ClusterCache(state, silentLogger);
  await c.start();
  cache = c;
});

const call = async (method: string, url: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
  const r = await router.dispatch(method, url, body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body));
  return { status: r.status, body: r.body as Record<string, unknown> };
};
const join_ = (mac: string, token: string): ReturnType<typeof call> => call('POST', '/api/join', { mac, token });

/** Three core nodes and one storage node; returns the storage node and a token issued the way user-data does. */
async function cluster(): Promise<{ mac: string; hostname: string; ip: string; token: string; lookup: EtcdBootLookup }> {
  for (let i = 1; i <= 3; i++) await allocateNode(state, { mac: `02:00:00:00:00:0${i}`, operatorType: 'core' });
  const n = (await allocateNode(state, { mac: '02:00:00:00:01:01', operatorType: 'storage' })).node;
  await waitForCache(n.mac);
  const lookup = new EtcdBootLookup(state, cache!, 'http://10.0.0.11:8081');
  return { mac: n.mac, hostname: n.hostname, ip: n.ip, token: await lookup.issueJoinToken(n.mac), lookup };
}
async function waitForCache(mac: string): Promise<void> {
  for (let i = 0; i < 200 && !cache!.nodeByMac(mac); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cache!.nodeByMac(mac), 'cache saw the node');
}

test('a valid token joins once: grant with name, address and etcd endpoints; token deleted and node installed in one step', async () => {
  const n = await cluster();
  const r = await join_(n.mac.toUpperCase(), n.token);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(
    [r.body.mac, r.body.hostname, r.body.ip, r.body.type, r.body.fqdn, r.body.etcdEndpoints],
    [n.mac, n.hostname, n.ip, 'storage', `${n.hostname}.cluster.local`, ['10.0.0.11:2379', '10.0.0.12:2379', '10.0.0.13:2379']],
  );
  assert.equal(await state.get(keys.joinToken(n.mac)), undefined, 'the token is gone');
  assert.equal((await state.getValue(keys.installState(n.mac)))?.state, 'installed');

  const again = await join_(n.mac, n.token);
  assert.deepEqual([again.status, again.body.error], [403, 'JOIN_REFUSED']);
  assert.match(String(again.body.reason), /never issued, or has been used already/);
});

test('an expired token, a wrong token and a token presented for another MAC are refused; a wrong guess does not burn the token', async () => {
  const n = await cluster();
  const wrong = await join_(n.mac, 'x'.repeat(32));
  assert.deepEqual([wrong.status, wrong.body.error], [403, 'JOIN_REFUSED']);
  assert.match(String(wrong.body.reason), /wrong join token/);

  // Another machine's MAC with this machine's token: that MAC has a token of its own, or none.
  const other = (await allocateNode(state, { mac: '02:00:00:00:01:02' })).node;
  assert.match(String((await join_(other.mac, n.token)).body.reason), /no join token on record for 02:00:00:00:01:02/);
  const otherToken = await n.lookup.issueJoinToken(other.mac);
  assert.match(String((await join_(other.mac, n.token)).body.reason), /wrong join token/);
  assert.equal((await join_(n.mac, otherToken)).status, 403);

  assert.equal((await join_(n.mac, n.token)).status, 200, 'the right token still works after wrong guesses');

  const expired = 'e'.repeat(32);
  await state.put(keys.joinToken(other.mac), { sha256: createHash('sha256').update(expired).digest('hex'), expiresAt: new Date(Date.now() - 1000).toISOString() });
  const e = await join_(other.mac, expired);
  assert.deepEqual([e.status, e.body.error], [403, 'JOIN_REFUSED']);
  assert.match(String(e.body.reason), /expired at/);
  assert.notEqual((await state.getValue(keys.installState(other.mac)))?.state, 'installed', 'a refusal writes nothing');
});

test('malformed requests are 400 and change nothing; a node removed after its token was issued is 404', async () => {
  const n = await cluster();
  for (const body of [{ mac: 'zz:zz', token: n.token }, { mac: n.mac, token: 'short' }, { mac: n.mac, token: `${n.token}'; rm -rf /` }, { mac: n.mac }, { mac: n.mac, token: n.token, extra: 1 }, { mac: 5, token: n.token }, 'not json', null]) {
    const r = await call('POST', '/api/join', body);
    assert.deepEqual([r.status, r.body.error], [400, 'BAD_INPUT'], `body ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
  }
  assert.ok(await state.get(keys.joinToken(n.mac)), 'the token survives malformed requests');
  assert.equal((await call('GET', '/api/join')).status, 405);

  await removeNode(state, n.mac);
  const gone = await join_(n.mac, n.token);
  assert.deepEqual([gone.status, gone.body.error], [404, 'NOT_FOUND']);
});

test('racing redemptions of one token: exactly one joins', async () => {
  const n = await cluster();
  const results = await Promise.all(Array.from({ length: 8 }, () => join_(n.mac, n.token)));
  const statuses = results.map((r) => r.status).sort();
  assert.equal(statuses.filter((s) => s === 200).length, 1, `statuses ${statuses.join(',')}`);
  assert.ok(statuses.every((s) => s === 200 || s === 403 || s === 409), `statuses ${statuses.join(',')}`);
});

test('the joining agent: bootstrap config → POST /api/join over HTTP (a dead URL first) → agent config without the token; once only', async () => {
  const n = await cluster();
  const boot = agentBootstrapConfig({ mac: n.mac, hostname: n.hostname, ip: n.ip, type: 'storage' }, {
    serverBaseUrl: 'http://10.0.0.11:8081', installerKernelUrl: 'http://x/k', installerInitrdUrl: 'http://x/i', isoUrl: 'http://x/iso',
    sshAuthorizedKeys: [], domain: 'cluster.local', gatewayVip: '10.0.0.254', dnsServers: [], prefixLength: 24, joinToken: n.token,
    // Port 9 on loopback refuses at once: the client goes on to the next URL.
    adminApiUrls: ['http://127.0.0.1:9', apiUrl],
  });
  assert.deepEqual(boot.apiUrls, ['http://127.0.0.1:9', apiUrl]);
  const path = join(dir, 'agent.json');
  writeFileSync(path, JSON.stringify(boot), { mode: 0o600 });
  const r = await ensureJoined(path, { dataDir: join(dir, 'data'), sysNet: join(dir, 'no-sys'), rounds: 1 });
  assert.ok(r.joined);
  const written = readFileSync(path, 'utf8');
  assert.ok(!written.includes(n.token), 'the spent token is not kept');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const cfg = AgentConfigSchema.parse(JSON.parse(written));
  assert.deepEqual([cfg.mac, cfg.hostname, cfg.ip, cfg.reportedType, cfg.etcdEndpoints], [n.mac, n.hostname, n.ip, 'storage', ['10.0.0.11:2379', '10.0.0.12:2379', '10.0.0.13:2379']]);
  assert.deepEqual(await ensureJoined(path, { rounds: 1 }), { joined: false }, 'an agent config is left alone');

  // The same bootstrap again (token spent): refused with the server's reason, file untouched.
  writeFileSync(path, JSON.stringify(boot), { mode: 0o600 });
  await assert.rejects(ensureJoined(path, { rounds: 1 }), (e: unknown) => isYcError(e, 'BAD_INPUT') && /403.*used already/.test(e.message));
  assert.equal(readFileSync(path, 'utf8'), JSON.stringify(boot));

  // `ycluster join` is the same, by hand.
  const fresh = await n.lookup.issueJoinToken(n.mac);
  writeFileSync(path, JSON.stringify({ ...boot, joinToken: fresh }), { mode: 0o600 });
  const out = await cli(['join', '--config', path, '--data-dir', join(dir, 'data')], false);
  assert.equal(out.code, 0, out.err);
  assert.match(out.out, new RegExp(`^joined as ${n.hostname} \\(storage, ${n.ip.replace(/\./g, '\\.')}\\); etcd 10\\.0\\.0\\.11:2379`));
  assert.match((await cli(['join', '--config', path], false)).out, /already an agent config/);
  const bad = await cli(['join'], false);
  assert.deepEqual([bad.code, /--config FILE is required/.test(bad.err)], [1, true]);
});

async function cli(args: string[], withEtcd = true): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli([...args, ...(withEtcd ? ['--etcd', etcd.endpoints.join(',')] : [])], { out: (t) => (out += t), err: (t) => (err += t) }, {}, {});
  return { code, out, err };
}

test('ycluster rules list|add|remove: JSON, replacing a rule, clear errors, nothing written on bad input; new machines follow the rule', async () => {
  const empty = await cli(['rules', 'list', '--json']);
  assert.deepEqual([empty.code, JSON.parse(empty.out)], [0, []]);
  const add = await cli(['rules', 'add', '52-54-00', 'storage', '--json']);
  assert.equal(add.code, 0, add.err);
  assert.deepEqual(JSON.parse(add.out), { rule: { prefix: '52:54:00', type: 'storage' }, previous: null });
  assert.match((await cli(['rules', 'add', '52:54:00:AB', 'frontend'])).out, /new machines with MAC 52:54:00:ab:… become frontend; existing nodes keep their type/);
  assert.match((await cli(['rules', 'add', '52:54:00', 'compute'])).out, /become compute \(was storage\)/);
  const list = await cli(['rules', 'list']);
  assert.equal(list.out, 'PREFIX       TYPE\n52:54:00:ab  frontend\n52:54:00     compute\n');

  for (const [args, re] of [
    [['rules', 'add', '52:54:0', 'storage'], /malformed MAC prefix "52:54:0"/],
    [['rules', 'add', '52:54:00:11:22:33:44', 'storage'], /malformed MAC prefix/],
    [['rules', 'add', '52-54:00', 'storage'], /malformed MAC prefix/],
    [['rules', 'add', '525400', 'storage'], /malformed MAC prefix/],
    [['rules', 'add', '02:00', 'gpu'], /unknown node type "gpu": expected one of core, storage, compute, macos, frontend/],
    [['rules', 'add', '02:00'], /rules add: wrong number of arguments/],
    [['rules', 'remove', '02:00'], /NOT_FOUND: no MAC-prefix rule for 02:00/],
    [['rules', 'frob'], /unknown rules command "frob"/],
    [['rules', 'list', '--jsn'], /Unknown option '--jsn'/],
  ] as [string[], RegExp][]) {
    const r = await cli(args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.err, re, args.join(' '));
    assert.equal(r.err.trim().split('\n')[0]!.startsWith('ycluster: '), true);
  }
  assert.deepEqual(JSON.parse((await cli(['rules', 'list', '--json'])).out), [{ prefix: '52:54:00:ab', type: 'frontend' }, { prefix: '52:54:00', type: 'compute' }], 'bad input wrote nothing');

  assert.equal((await allocateNode(state, { mac: '52:54:00:ab:00:01' })).node.type, 'frontend');
  assert.equal((await allocateNode(state, { mac: '52:54:00:01:00:01', reportedType: 'macos' })).node.type, 'compute');
  const rm = await cli(['rules', 'remove', '52:54:00:ab', '--json']);
  assert.deepEqual(JSON.parse(rm.out), { removed: { prefix: '52:54:00:ab', type: 'frontend' } });
  assert.match((await cli(['rules', 'remove', '52:54:00'])).out, /removed the rule for 52:54:00 \(compute\)/);
  assert.deepEqual(JSON.parse((await cli(['rules', 'list', '--json'])).out), []);
});

test('admin API /api/rules: the same, 4xx JSON on bad input; a corrupt rule is reported and can be replaced', async () => {
  const created = await call('POST', '/api/rules', { prefix: 'AA:BB', type: 'macos' });
  assert.deepEqual([created.status, created.body.rule], [201, { prefix: 'aa:bb', type: 'macos' }]);
  assert.equal((await call('POST', '/api/rules', { prefix: 'aa:bb', type: 'core' })).status, 200);
  assert.deepEqual((await call('GET', '/api/rules')).body.rules, [{ prefix: 'aa:bb', type: 'core' }]);
  for (const body of [{ prefix: 'aa:b', type: 'core' }, { prefix: 'aa:bb', type: 'gpu' }, { prefix: 'aa:bb' }, { prefix: 'aa:bb', type: 'core', x: 1 }]) {
    const r = await call('POST', '/api/rules', body);
    assert.deepEqual([r.status, r.body.error], [400, 'BAD_INPUT'], JSON.stringify(body));
    assert.equal(typeof r.body.reason, 'string');
  }
  assert.equal((await call('DELETE', '/api/rules/cc:dd')).status, 404);
  assert.equal((await call('DELETE', '/api/rules/nonsense')).status, 400);
  assert.deepEqual((await call('DELETE', '/api/rules/aa:bb')).body, { removed: { prefix: 'aa:bb', type: 'core' } });

  await state.etcd.put(`${ROOT}mac-rules/de:ad`).value('{"prefix":"de:ad","type":"gpu"}');
  const listed = await call('GET', '/api/rules');
  assert.equal((listed.body.corrupt as unknown[]).length, 1);
  assert.match((await cli(['rules', 'list'])).err, /mac-rules\/de:ad fails its schema/);
  assert.equal((await call('POST', '/api/rules', { prefix: 'de:ad', type: 'compute' })).status, 201);
  assert.deepEqual((await call('GET', '/api/rules')).body, { rules: [{ prefix: 'de:ad', type: 'compute' }], corrupt: [] });
});
