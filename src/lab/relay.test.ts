import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { relayCommand } from './forward.js';
import { parseEndpoint, parseRelayArgs, startRelay } from './relay.js';

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

function roundTrip(port: number, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let got = '';
    sock.setEncoding('utf8').on('data', (d: string) => (got += d));
    sock.on('end', () => resolve(got));
    sock.on('error', reject);
    sock.end(msg);
  });
}

test('endpoint and argument parsing', () => {
  assert.deepEqual(parseEndpoint('tcp:10.0.0.11:2379'), { kind: 'tcp', host: '10.0.0.11', port: 2379 });
  assert.deepEqual(parseEndpoint('unix:/run/x.sock'), { kind: 'unix', path: '/run/x.sock' });
  for (const bad of ['tcp:host:1', 'tcp:1.2.3.4:70000', 'unix:', 'udp:1.2.3.4:5']) assert.throws(() => parseEndpoint(bad), bad);
  const a = parseRelayArgs(['--listen', 'unix:/s', '--connect', 'tcp:10.0.0.11:1', '--connect', 'tcp:10.0.0.12:1', '--connect-timeout', '300']);
  assert.equal(a.connect.length, 2);
  assert.equal(a.connectTimeoutMs, 300);
  assert.throws(() => parseRelayArgs(['--listen', 'unix:/s']));
  assert.throws(() => parseRelayArgs(['--listen', 'unix:/s', '--connect']));
  assert.throws(() => parseRelayArgs(['--bogus', 'x', '--listen', 'unix:/s', '--connect', 'unix:/t']));
});

test('tcp → unix → tcp chain with half-close, and failover past a dead target', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'yc-relay-'));
  const servers: net.Server[] = [];
  t.after(() => {
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // Echo server that answers only after the client half-closes, proving half-close crosses both relays.
  const echo = net.createServer({ allowHalfOpen: true }, (s) => {
    let buf = '';
    s.setEncoding('utf8').on('data', (d: string) => (buf += d));
    s.on('end', () => s.end(`echo:${buf}`));
  });
  servers.push(echo);
  const echoPort = await listen(echo);
  const dead = net.createServer();
  const deadPort = await listen(dead);
  await new Promise<void>((r) => dead.close(() => r()));

  const sock = join(dir, 'fwd.sock');
  const logs: string[] = [];
  servers.push(await startRelay({
    listen: { kind: 'unix', path: sock },
    connect: [{ kind: 'tcp', host: '127.0.0.1', port: deadPort }, { kind: 'tcp', host: '127.0.0.1', port: echoPort }],
    connectTimeoutMs: 500,
  }, (m) => logs.push(m)));
  const front = await startRelay({ listen: { kind: 'tcp', host: '127.0.0.1', port: 0 }, connect: [{ kind: 'unix', path: sock }], connectTimeoutMs: 500 }, () => undefined);
  servers.push(front);
  const port = (front.address() as net.AddressInfo).port;
  assert.equal(await roundTrip(port, 'hello'), 'echo:hello');
  assert.equal(logs.length, 1, 'the dead target was tried first, once');
  // The working target is now preferred: no new connect error.
  assert.equal(await roundTrip(port, 'again'), 'echo:again');
  assert.equal(logs.length, 1);
});

test('relayCommand starts a relay process that reports its port', async () => {
  const [node, ...args] = relayCommand();
  const child = spawn(node!, [...args, '--listen', 'tcp:127.0.0.1:0', '--connect', 'tcp:127.0.0.1:1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  try {
    const [line] = (await once(child.stdout.setEncoding('utf8'), 'data')) as [string];
    assert.match(line, /^READY \d+\n$/);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
});
