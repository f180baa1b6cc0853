import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../lib/log.js';
import { waitFor } from '../lib/time.js';
import { decodePacket, encodeAck, encodeRequest, type TftpPacket } from './tftp-codec.js';
import { startTftpServer, type TftpServer } from './tftp-server.js';

let dir: string;
let root: string;
let server: TftpServer;
const big = randomBytes(1_500_000 + 123);

function run(cmd: string, args: string[], input?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 20_000, cwd: dir }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: stdout + stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'yc-tftp-'));
  root = join(dir, 'root');
  await mkdir(join(root, 'sub'), { recursive: true });
  await mkdir(join(dir, 'outside'));
  await writeFile(join(root, 'big.bin'), big);
  await writeFile(join(root, 'sub', 'small.txt'), 'line one\nline two\n');
  await writeFile(join(root, 'exact.bin'), randomBytes(1024));
  await writeFile(join(dir, 'outside', 'secret'), 'secret');
  await symlink(join(dir, 'outside', 'secret'), join(root, 'escape'));
  await symlink(join(root, 'sub', 'small.txt'), join(root, 'inside-link'));
  server = await startTftpServer({ root, port: 0, bindAddress: '127.0.0.1', logger: silentLogger, timeoutMs: 300, maxRetries: 3 });
});

after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

test('tftp-hpa fetches a 1.5 MB file byte-identical (plain RFC 1350, block numbers past 2048)', async () => {
  const out = join(dir, 'hpa.bin');
  const r = await run('tftp', ['127.0.0.1', String(server.port), '-m', 'binary', '-c', 'get', 'big.bin', out]);
  assert.equal(r.code, 0, r.out);
  assert.ok((await readFile(out)).equals(big));
  assert.equal(server.stats()['last.blksize'], 512);
});

test('busybox tftp negotiates blksize 1468 and fetches byte-identical', async () => {
  const before = server.stats();
  const out = join(dir, 'bb.bin');
  const r = await run('busybox', ['tftp', '-g', '-r', 'big.bin', '-l', out, '-b', '1468', '127.0.0.1', String(server.port)]);
  assert.equal(r.code, 0, r.out);
  assert.ok((await readFile(out)).equals(big));
  const s = server.stats();
  assert.equal(s['last.blksize'], 1468);
  assert.equal((s['negotiated.blksize'] ?? 0) - (before['negotiated.blksize'] ?? 0), 1);
  const blocks = (s['blocks.sent'] ?? 0) - (before['blocks.sent'] ?? 0);
  assert.ok(blocks >= Math.floor(big.length / 1468) + 1 && blocks < Math.floor(big.length / 1468) + 20, `blocks ${blocks}`);
});

test('a symlink inside the root is followed; paths are relative to the root', async () => {
  const out = join(dir, 'link.txt');
  const r = await run('busybox', ['tftp', '-g', '-r', '/inside-link', '-l', out, '127.0.0.1', String(server.port)]);
  assert.equal(r.code, 0, r.out);
  assert.equal(await readFile(out, 'utf8'), 'line one\nline two\n');
});

test('netascii mode converts line endings', async () => {
  const out = join(dir, 'ascii.txt');
  // tftp-hpa converts back to LF locally, so the round trip is exact.
  const r = await run('tftp', ['127.0.0.1', String(server.port), '-m', 'netascii', '-c', 'get', 'sub/small.txt', out]);
  assert.equal(r.code, 0, r.out);
  assert.equal(await readFile(out, 'utf8'), 'line one\nline two\n');
});

test('traversal, absolute escape, symlink escape and missing files are refused', async () => {
  const cases: [string, RegExp][] = [
    ['../outside/secret', /Error code 2/],
    ['sub/../../outside/secret', /Error code 2/],
    ['/etc/passwd', /Error code 1/],
    ['escape', /Error code 2/],
    ['nope.bin', /Error code 1/],
    ['sub', /Error code 1/],
  ];
  for (const [name, expected] of cases) {
    const out = join(dir, 'refused.out');
    const r = await run('tftp', ['127.0.0.1', String(server.port), '-m', 'binary', '-c', 'get', name, out]);
    assert.match(r.out, expected, `${name}: ${r.out}`);
  }
  const bb = await run('busybox', ['tftp', '-g', '-r', '../outside/secret', '-l', join(dir, 'x'), '127.0.0.1', String(server.port)]);
  assert.notEqual(bb.code, 0);
  assert.match(bb.out, /access violation/i);
});

test('write requests are refused with access violation', async () => {
  await writeFile(join(dir, 'upload.txt'), 'data');
  const before = server.stats()['wrq-refused'] ?? 0;
  const r = await run('tftp', ['127.0.0.1', String(server.port), '-m', 'binary', '-c', 'put', join(dir, 'upload.txt'), 'upload.txt']);
  assert.match(r.out, /Error code 2/);
  const bb = await run('busybox', ['tftp', '-p', '-l', join(dir, 'upload.txt'), '-r', 'up2.txt', '127.0.0.1', String(server.port)]);
  assert.notEqual(bb.code, 0);
  assert.equal((server.stats()['wrq-refused'] ?? 0) - before, 2);
});

/** A minimal scripted client for what the real clients do not exercise: windowsize, lost ACKs, stray TIDs. */
class ScriptClient {
  readonly queue: { packet: TftpPacket; port: number }[] = [];
  private waiter: (() => void) | undefined;
  constructor(readonly sock: Socket) {
    sock.on('message', (msg, rinfo) => {
      this.queue.push({ packet: decodePacket(msg), port: rinfo.port });
      this.waiter?.();
    });
  }
  static async open(): Promise<ScriptClient> {
    const sock = createSocket('udp4');
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
    return new ScriptClient(sock);
  }
  send(buf: Buffer, port: number): Promise<void> {
    return new Promise((resolve, reject) => this.sock.send(buf, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  }
  async next(timeoutMs = 3000): Promise<{ packet: TftpPacket; port: number }> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no packet within timeout');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return this.queue.shift()!;
  }
  close(): void {
    this.sock.close();
  }
}

test('windowsize, tsize and blksize are acknowledged in the OACK; lost ACKs are retransmitted', async (t) => {
  const c = await ScriptClient.open();
  t.after(() => c.close());
  await c.send(encodeRequest('RRQ', 'big.bin', 'octet', { blksize: '8192', windowsize: '4', tsize: '0', foo: 'bar' }), server.port);
  const oack = await c.next();
  assert.equal(oack.packet.op, 'OACK');
  assert.deepEqual({ ...(oack.packet as { options: Record<string, string> }).options }, { blksize: '8192', windowsize: '4', tsize: String(big.length) });
  const tid = oack.port;
  assert.notEqual(tid, server.port);
  await c.send(encodeAck(0), tid);
  const got: Buffer[] = [];
  let next = 1;
  let done = false;
  let withheld = false;
  for (let round = 0; round < 1000 && !done; round++) {
    let inWindow = 0;
    // A whole window arrives before we acknowledge it; duplicates from a resend are skipped.
    for (let k = 0; k < 50 && inWindow < 4 && !done; k++) {
      const { packet } = await c.next();
      if (packet.op !== 'DATA') return assert.fail(`expected DATA, got ${packet.op}`);
      if (packet.block !== (next & 0xffff)) continue;
      got.push(packet.data);
      next++;
      inWindow++;
      done = packet.data.length < 8192;
    }
    if (!withheld && !done && next > 20) {
      withheld = true;
      // Withhold this ACK: after its timeout the server resends the window from its first block.
      const again = await c.next();
      assert.equal(again.packet.op, 'DATA');
      assert.equal((again.packet as { block: number }).block, (next - inWindow) & 0xffff);
    }
    await c.send(encodeAck((next - 1) & 0xffff), tid);
  }
  assert.ok(done);
  await waitFor('transfer end', () => (server.stats()['transfers.active'] === 0 ? true : undefined), { timeoutMs: 2000 });
  assert.equal(server.stats()['transfers.failed'] ?? 0, 0);
  assert.ok(Buffer.concat(got).equals(big));
  assert.ok((server.stats().timeouts ?? 0) >= 1);
});

test('a stray packet on a transfer port gets ERROR 5 and the transfer goes on; silence ends it after bounded retries', async (t) => {
  const c = await ScriptClient.open();
  const stray = await ScriptClient.open();
  t.after(() => {
    c.close();
    stray.close();
  });
  const before = server.stats();
  await c.send(encodeRequest('RRQ', 'exact.bin', 'octet'), server.port);
  const first = await c.next();
  assert.equal(first.packet.op, 'DATA');
  await stray.send(encodeAck(1), first.port);
  const err = await stray.next();
  assert.equal(err.packet.op, 'ERROR');
  assert.equal((err.packet as { code: number }).code, 5);
  // Never acknowledge: the server resends block 1 maxRetries (3) times, then gives up.
  for (let i = 0; i < 3; i++) {
    const again = await c.next(2000);
    assert.equal(again.packet.op, 'DATA');
    assert.equal((again.packet as { block: number }).block, 1);
  }
  await assert.rejects(c.next(800));
  const after = server.stats();
  assert.equal((after['transfers.failed'] ?? 0) - (before['transfers.failed'] ?? 0), 1);
  assert.equal((after['unknown-tid'] ?? 0) - (before['unknown-tid'] ?? 0), 1);
});
