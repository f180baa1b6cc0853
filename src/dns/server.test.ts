import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { run } from '../lib/exec.js';
import { silentLogger } from '../lib/log.js';
import { waitFor } from '../lib/time.js';
import { Zone } from './records.js';
import { startDnsServer, type DnsServer } from './server.js';
import { TEST_DOMAIN, bigRecords, testRecords } from './testzone.js';

// Every query names @127.0.0.1 and a port: dig never falls back to the system resolver.
async function dig(port: number, ...args: string[]): Promise<string> {
  const r = await run('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', ...args], { timeoutMs: 10_000, allowFailure: true });
  return r.stdout;
}

async function withServers(fn: (main: DnsServer, upstream: DnsServer) => Promise<void>): Promise<void> {
  const upstream = await startDnsServer({
    zone: new Zone('upstream.test', [{ name: 'www.upstream.test', type: 'A', ttl: 60, data: '192.0.2.7' }]),
    upstreams: [], port: 0, bindAddress: '127.0.0.1', logger: silentLogger,
  });
  let main: DnsServer | undefined;
  try {
    const deadUdp = dgram.createSocket('udp4');
    // A bound socket that never answers: the forwarder must time out and move on.
    await new Promise<void>((r) => deadUdp.bind(0, '127.0.0.1', r));
    try {
      main = await startDnsServer({
        zone: new Zone(TEST_DOMAIN, [...testRecords(), ...bigRecords()], { reverseCidrs: ['10.0.0.0/24'] }),
        upstreams: [{ host: '127.0.0.1', port: deadUdp.address().port }, { host: '127.0.0.1', port: upstream.udpPort }],
        port: 0, bindAddress: '127.0.0.1', logger: silentLogger, forwardTimeoutMs: 300,
      });
      await fn(main, upstream);
    } finally {
      deadUdp.close();
    }
  } finally {
    await main?.close();
    await upstream.close();
  }
}

test('dig over UDP and TCP, TC fallback, forwarding, drops', async () => {
  await withServers(async (main, upstream) => {
    const port = main.udpPort;
    assert.equal(main.tcpPort, port);
    assert.equal((await dig(port, 'n1.cluster.test', 'A', '+short')).trim(), '10.0.0.11');
    assert.equal((await dig(port, 'N2.Cluster.TEST', 'A', '+short', '+tcp')).trim(), '10.0.0.12');
    assert.equal((await dig(port, '-x', '10.0.0.13', '+short')).trim(), 'n3.cluster.test.');
    assert.equal((await dig(port, 'api.cluster.test', 'A', '+short')).trim(), 'vip.cluster.test.\n10.0.0.100');
    assert.match(await dig(port, 'nope.cluster.test', 'A'), /status: NXDOMAIN/);

    const before = main.stats();
    const big = await dig(port, 'big.cluster.test', 'A', '+noedns');
    assert.match(big, /Truncated, retrying in TCP mode/);
    assert.match(big, /ANSWER: 60,/);
    const after = main.stats();
    assert.equal(after.truncated! - before.truncated!, 1);
    assert.equal(after.queries_tcp! - before.queries_tcp!, 1);

    assert.equal((await dig(port, 'www.upstream.test', 'A', '+short')).trim(), '192.0.2.7');
    assert.equal((await dig(port, 'www.upstream.test', 'A', '+short', '+tcp')).trim(), '192.0.2.7');
    // The upstream has no upstreams itself: REFUSED, which the forwarder passes on after trying all.
    assert.match(await dig(port, 'elsewhere.example', 'A'), /status: REFUSED/);
    assert.match(await dig(upstream.udpPort, 'elsewhere.example', 'A'), /status: REFUSED/);
    assert.ok(main.stats().forwarded! >= 3);

    const client = dgram.createSocket('udp4');
    try {
      const dropped = main.stats().dropped!;
      for (const bad of [Buffer.from([1, 2, 3]), Buffer.alloc(40, 0xff)]) {
        await new Promise<void>((r, j) => client.send(bad, port, '127.0.0.1', (e) => (e ? j(e) : r())));
      }
      await waitFor('drops counted', () => (main.stats().dropped === dropped + 2 ? true : undefined), { timeoutMs: 3000 });
      assert.equal(main.stats()['dropped_short-header'], 1);
    } finally {
      client.close();
    }
    // Still serving after the garbage.
    assert.equal((await dig(port, 'n1.cluster.test', 'A', '+short')).trim(), '10.0.0.11');
  });
});

test('all upstreams silent: SERVFAIL; zone replace is served at once', async (t) => {
  const zone = new Zone(TEST_DOMAIN, testRecords(), { reverseCidrs: ['10.0.0.0/24'] });
  const silent = dgram.createSocket('udp4');
  t.after(() => silent.close());
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
  const server = await startDnsServer({
    zone, upstreams: [{ host: '127.0.0.1', port: silent.address().port }], port: 0, bindAddress: '127.0.0.1', logger: silentLogger, forwardTimeoutMs: 200,
  });
  try {
    assert.match(await dig(server.udpPort, 'elsewhere.example', 'A'), /status: SERVFAIL/);
    assert.equal(server.stats().forward_failed, 1);
    zone.replace([{ name: `moved.${TEST_DOMAIN}`, type: 'A', ttl: 5, data: '10.0.0.42' }]);
    assert.equal((await dig(server.udpPort, `moved.${TEST_DOMAIN}`, '+short')).trim(), '10.0.0.42');
    assert.match(await dig(server.udpPort, 'n1.cluster.test'), /status: NXDOMAIN/);
  } finally {
    await server.close();
  }
});
