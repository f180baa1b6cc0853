import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { literalLookup, setReceiving } from './udp-internals.js';

test('a socket stops and resumes reading; queued datagrams arrive on resume', async (t) => {
  const server = dgram.createSocket('udp4');
  const client = dgram.createSocket('udp4');
  t.after(() => {
    server.close();
    client.close();
  });
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
  const got: string[] = [];
  let onMsg = (): void => undefined;
  server.on('message', (m) => {
    got.push(m.toString());
    onMsg();
  });
  assert.equal(setReceiving(server, false), true, 'this Node lets us stop reading (see udp-internals.ts)');
  await new Promise<void>((r, j) => client.send('one', server.address().port, '127.0.0.1', (e) => (e ? j(e) : r())));
  // A negative: nothing may arrive while stopped; 200 ms is ample on loopback.
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(got, []);
  const arrived = new Promise<void>((r) => (onMsg = r));
  assert.equal(setReceiving(server, true), true);
  await arrived;
  assert.deepEqual(got, ['one']);
});

test('replies to literal addresses skip dns.lookup and still arrive', async (t) => {
  const a = dgram.createSocket('udp4');
  const b = dgram.createSocket('udp4');
  t.after(() => {
    a.close();
    b.close();
  });
  await new Promise<void>((r) => a.bind(0, '127.0.0.1', r));
  await new Promise<void>((r) => b.bind(0, '127.0.0.1', r));
  assert.equal(literalLookup(a), true, 'this Node lets us patch the lookup (see udp-internals.ts)');
  const got = new Promise<string>((resolve) => b.once('message', (m) => resolve(m.toString())));
  let sentSync = false;
  // The send callback runs after the datagram went out; the lookup itself no longer waits a tick.
  const sent = new Promise<void>((r, j) => a.send('literal', b.address().port, '127.0.0.1', (e) => (e ? j(e) : r())));
  sentSync = a.getSendQueueCount() === 0;
  await sent;
  assert.equal(await got, 'literal');
  assert.ok(sentSync, 'the datagram left within send(), not after a dns.lookup tick');
});
