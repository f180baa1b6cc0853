import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isYcError } from '../lib/errors.js';
import { MemoryDhcpBackend } from './memory-backend.js';

function setup(): { b: MemoryDhcpBackend; clock: { t: number } } {
  const clock = { t: 1_000_000 };
  const b = new MemoryDhcpBackend({
    rangeStart: '10.0.0.100', rangeEnd: '10.0.0.101', offerHoldSeconds: 10, declineHoldSeconds: 100, leaseSeconds: 50,
    reservations: [{ mac: 'AA-BB-CC-00-00-01', ip: '10.0.0.11', hostname: 's1', nodeType: 'storage' }],
    now: () => clock.t,
  });
  return { b, clock };
}

test('reserved MACs always get their address and name; commit of another address is refused', async () => {
  const { b } = setup();
  assert.deepEqual(await b.offer({ mac: 'aa:bb:cc:00:00:01', requestedIp: '10.0.0.100' }), { mac: 'aa:bb:cc:00:00:01', ip: '10.0.0.11', hostname: 's1', nodeType: 'storage', leaseSeconds: 50 });
  assert.equal(await b.commit('aa:bb:cc:00:00:01', '10.0.0.100', 30), null);
  assert.equal((await b.commit('aa:bb:cc:00:00:01', '10.0.0.11', 30))?.leaseSeconds, 30);
  assert.equal((await b.lookup('aa:bb:cc:00:00:01'))?.ip, '10.0.0.11');
});

test('offers are held, then expire; bound leases expire after their lease time', async () => {
  const { b, clock } = setup();
  assert.equal((await b.offer({ mac: '02:00:00:00:00:01' })).ip, '10.0.0.100');
  assert.equal((await b.offer({ mac: '02:00:00:00:00:02' })).ip, '10.0.0.101');
  await assert.rejects(b.offer({ mac: '02:00:00:00:00:03' }), (e) => isYcError(e, 'RANGE_FULL'));
  assert.equal(await b.lookup('02:00:00:00:00:01'), null, 'an offer is not a binding');
  clock.t += 11_000;
  assert.equal((await b.offer({ mac: '02:00:00:00:00:03', requestedIp: '10.0.0.101' })).ip, '10.0.0.101');
  assert.equal((await b.commit('02:00:00:00:00:03', '10.0.0.101', 20))?.hostname, 'dyn-020000000003');
  assert.equal(await b.commit('02:00:00:00:00:04', '10.0.0.101', 20), null, 'held by another MAC');
  assert.equal(await b.commit('02:00:00:00:00:04', '10.0.0.11', 20), null, 'reserved');
  assert.equal(await b.commit('02:00:00:00:00:04', '10.0.0.99', 20), null, 'outside the range');
  clock.t += 21_000;
  assert.equal(await b.lookup('02:00:00:00:00:03'), null);
  assert.ok(await b.commit('02:00:00:00:00:04', '10.0.0.101', 20), 'expired lease is free');
});

test('release frees only the caller\'s own lease; decline holds the address', async () => {
  const { b, clock } = setup();
  await b.commit('02:00:00:00:00:01', '10.0.0.100', 50);
  await b.release('02:00:00:00:00:02', '10.0.0.100');
  assert.deepEqual(b.activeLeases(), [{ mac: '02:00:00:00:00:01', ip: '10.0.0.100' }]);
  await b.release('02:00:00:00:00:01', '10.0.0.100');
  assert.deepEqual(b.activeLeases(), []);
  await b.decline('02:00:00:00:00:01', '10.0.0.100');
  assert.equal((await b.offer({ mac: '02:00:00:00:00:05' })).ip, '10.0.0.101');
  clock.t += 101_000;
  assert.equal((await b.offer({ mac: '02:00:00:00:00:06' })).ip, '10.0.0.100');
});
