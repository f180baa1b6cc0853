import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isYcError } from '../lib/errors.js';
import { interfaceByMac, redeemJoin } from './join-client.js';

const boot = { mac: '02:00:00:00:01:01', joinToken: 't'.repeat(32), apiUrls: ['http://a:8080', 'http://b:8080/'] };
const grant = { mac: '02:00:00:00:01:01', hostname: 's4', fqdn: 's4.cluster.local', ip: '10.0.0.14', type: 'storage', domain: 'cluster.local', gatewayVip: '10.0.0.254', etcdEndpoints: ['10.0.0.11:2379'], joinedAt: 'now' };

/** A fetch that answers from a script of (url → status or 'down'), recording every call. */
function fakeFetch(answers: Record<string, (number | 'down')[]>, body: (status: number) => unknown = (s) => (s === 200 ? grant : { error: 'X', reason: `status ${s}` })) {
  const calls: string[] = [];
  const f: typeof fetch = (url, init) => {
    const u = url as string;
    calls.push(u);
    assert.deepEqual(JSON.parse(init?.body as string), { mac: boot.mac, token: boot.joinToken });
    const next = answers[u]?.shift() ?? 'down';
    if (next === 'down') return Promise.reject(new TypeError('fetch failed'));
    return Promise.resolve(new Response(JSON.stringify(body(next)), { status: next }));
  };
  return { f, calls };
}

test('the first admin API that answers grants; unreachable ones are skipped', async () => {
  const { f, calls } = fakeFetch({ 'http://b:8080/api/join': [200] });
  assert.equal((await redeemJoin(boot, { fetch: f, rounds: 1 })).hostname, 's4');
  assert.deepEqual(calls, ['http://a:8080/api/join', 'http://b:8080/api/join']);
});

test('a refusal (403) ends at once with the server\'s reason; a 409 or 5xx is asked again, bounded', async () => {
  const refused = fakeFetch({ 'http://a:8080/api/join': [403] });
  await assert.rejects(redeemJoin(boot, { fetch: refused.f, rounds: 3 }), (e: unknown) => isYcError(e, 'BAD_INPUT') && /403\): status 403/.test(e.message));
  assert.equal(refused.calls.length, 1);

  const raced = fakeFetch({ 'http://a:8080/api/join': [409, 200], 'http://b:8080/api/join': [503] });
  assert.equal((await redeemJoin(boot, { fetch: raced.f, rounds: 2 })).ip, '10.0.0.14');
  assert.equal(raced.calls.length, 3);

  const down = fakeFetch({});
  await assert.rejects(redeemJoin(boot, { fetch: down.f, rounds: 1 }), (e: unknown) => isYcError(e, 'UNAVAILABLE') && /after 1 rounds/.test(e.message));
  assert.equal(down.calls.length, 2);
});

test('a 200 that is not a grant for this MAC is an error, not a join', async () => {
  const odd = fakeFetch({ 'http://a:8080/api/join': [200] }, () => ({ ...grant, mac: '02:00:00:00:09:09' }));
  await assert.rejects(redeemJoin(boot, { fetch: odd.f, rounds: 1 }), /answered for MAC 02:00:00:00:09:09/);
  const junk = fakeFetch({ 'http://a:8080/api/join': [200] }, () => ({ hello: 1 }));
  await assert.rejects(redeemJoin(boot, { fetch: junk.f, rounds: 1 }), /unexpected body/);
});

test('interfaceByMac finds the interface by its address in /sys/class/net', () => {
  const sys = mkdtempSync(join(tmpdir(), 'yc-sysnet-'));
  try {
    for (const [dev, addr] of [['lo', '00:00:00:00:00:00'], ['ens3', '02:00:00:00:01:01'], ['bond0', 'junk']] as const) {
      mkdirSync(join(sys, dev));
      writeFileSync(join(sys, dev, 'address'), `${addr}\n`);
    }
    mkdirSync(join(sys, 'noaddr'));
    assert.equal(interfaceByMac('02-00-00-00-01-01', sys), 'ens3');
    assert.equal(interfaceByMac('02:00:00:00:01:02', sys), undefined);
    assert.equal(interfaceByMac('02:00:00:00:01:01', join(sys, 'missing')), undefined);
  } finally {
    rmSync(sys, { recursive: true, force: true });
  }
});
