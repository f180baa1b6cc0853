import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { silentLogger } from '../lib/log.js';
import { waitFor } from '../lib/time.js';
import { BOOTREPLY, decode, encode } from './codec.js';
import type { DhcpHandler } from './handler.js';
import { startDhcpServer } from './server.js';
import { request } from './testing.js';

test('server answers through the handler\'s destination and counts malformed packets', async (t) => {
  const client = dgram.createSocket('udp4');
  t.after(() => client.close());
  client.bind(0, '127.0.0.1');
  await once(client, 'listening');
  const clientPort = client.address().port;
  // The real handler replies to ports 67/68; this one points the reply at our test socket.
  const handler: DhcpHandler = (req) => Promise.resolve({
    kind: 'reply', note: 'test', to: { address: '127.0.0.1', port: clientPort },
    reply: { ...req, op: BOOTREPLY, yiaddr: '10.0.0.7' },
  });
  const server = await startDhcpServer({ handler, port: 0, bindAddress: '127.0.0.1', logger: silentLogger });
  t.after(() => server.close());
  assert.equal(server.address.address, '127.0.0.1');
  const send = (b: Buffer): void => client.send(b, server.address.port, '127.0.0.1');

  send(Buffer.from('garbage'));
  send(Buffer.alloc(2000));
  const got = once(client, 'message') as Promise<[Buffer]>;
  send(encode(request({ xid: 42 })));
  const [msg] = await got;
  const reply = decode(msg);
  assert.equal(reply.op, BOOTREPLY);
  assert.equal(reply.xid, 42);
  assert.equal(reply.yiaddr, '10.0.0.7');
  const stats = await waitFor('stats', () => (server.stats().received === 3 ? server.stats() : undefined), { timeoutMs: 2000 });
  assert.deepEqual(stats, { received: 3, replied: 1, handled: 0, dropped: 2, sendErrors: 0, 'drop.too-short': 1, 'drop.oversized': 1, 'drop.kernel-receive-buffer': 0 });
});

test('startDhcpServer rejects an interface that does not exist', async () => {
  await assert.rejects(startDhcpServer({ handler: () => Promise.resolve({ kind: 'drop', reason: 'x' }), port: 0, bindAddress: '127.0.0.1', interfaceName: 'nosuchif0', logger: silentLogger }), /nosuchif0/);
});
