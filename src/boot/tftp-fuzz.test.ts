import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../lib/log.js';
import { waitFor } from '../lib/time.js';
import { decodePacket, encodeAck, encodeData, encodeError, encodeOack, encodeRequest, TftpDecodeError } from './tftp-codec.js';
import { classifyRequest } from './tftp-request.js';
import { ReadSession } from './tftp-session.js';
import { negotiate } from './tftp-options.js';
import { startTftpServer } from './tftp-server.js';
import { prng } from '../lib/prng.js';


const templates = [
  encodeRequest('RRQ', 'pxelinux.0', 'octet', { blksize: '1468', tsize: '0', windowsize: '8', timeout: '3' }),
  encodeRequest('RRQ', 'ipxe.efi', 'netascii'),
  encodeRequest('WRQ', 'x', 'octet'),
  encodeAck(7),
  encodeData(3, Buffer.alloc(100, 0x41)),
  encodeError(1, 'file not found'),
  encodeOack({ blksize: '512' }),
];

function mutate(rand: () => number): Buffer {
  const pick = Math.floor(rand() * 6);
  const base = templates[Math.floor(rand() * templates.length)]!;
  const int = (n: number): number => Math.floor(rand() * n);
  switch (pick) {
    case 0: // truncated
      return base.subarray(0, int(base.length));
    case 1: {
      // bytes flipped
      const b = Buffer.from(base);
      for (let i = 0, n = 1 + int(4); i < n; i++) b[int(b.length)] = int(256);
      return b;
    }
    case 2: // random garbage
      return Buffer.from(Array.from({ length: int(600) }, () => int(256)));
    case 3: {
      // oversized: beyond the largest legal packet, or an over-long request
      const b = Buffer.alloc(rand() < 0.5 ? 65469 + int(100) : 1025 + int(3000), 0x61);
      b.writeUInt16BE(1 + int(6), 0);
      return b;
    }
    case 4: {
      // NULs removed or duplicated
      const b = Buffer.from(base);
      return rand() < 0.5 ? Buffer.from(b.filter((x) => x !== 0)) : Buffer.concat([b, Buffer.alloc(int(5))]);
    }
    default: {
      // a request with hostile strings
      const names = ['../../etc/shadow', '/', '', '\\..\\x', 'a'.repeat(600), 'blksize', '\u00ff\u0001'];
      const opts: Record<string, string> = {};
      for (let i = 0, n = int(20); i < n; i++) opts[names[int(names.length)]! + String(i % 3)] = names[int(names.length)]!;
      return encodeRequest(rand() < 0.8 ? 'RRQ' : 'WRQ', names[int(names.length)]!, ['octet', 'OCTET', 'mail', 'bogus', ''][int(5)]!, opts);
    }
  }
}

test('100,000 malformed packets: only TftpDecodeError escapes the decoder, the request path never throws', () => {
  const rand = prng(0x5eed);
  const started = Date.now();
  const drops = new Map<string, number>();
  let decoded = 0;
  let packets = 0;
  for (; packets < 100_000 && Date.now() - started < 20_000; packets++) {
    const buf = mutate(rand);
    try {
      const p = decodePacket(buf);
      decoded++;
      // Whatever decodes must survive option negotiation and a session fed with its numbers.
      if (p.op === 'RRQ' || p.op === 'WRQ') {
        const { params } = negotiate(p.options, buf.length * 1000, { timeoutMs: 1000 });
        assert.ok(params.blksize >= 8 && params.blksize <= 65464 && params.windowsize >= 1 && params.windowsize <= 64);
      }
      if (p.op === 'ACK' || p.op === 'DATA') {
        const s = new ReadSession(100_000, { blksize: 512, windowsize: 4, timeoutMs: 1000 }, false, 3);
        s.start();
        const a = s.onAck(p.block);
        assert.ok(['send-blocks', 'done', 'none'].includes(a.type));
      }
    } catch (err) {
      if (!(err instanceof TftpDecodeError)) throw err;
    }
    const d = classifyRequest(buf);
    if (d.kind === 'drop') drops.set(d.reason, (drops.get(d.reason) ?? 0) + 1);
  }
  assert.equal(packets, 100_000, 'the loop hit its time bound');
  const dropped = [...drops.values()].reduce((a, b) => a + b, 0);
  assert.ok(dropped > 50_000, `dropped ${dropped}`);
  assert.ok(decoded > 1_000, `decoded ${decoded}`);
  for (const reason of ['too-short', 'too-long', 'bad-opcode', 'unterminated-string', 'bad-mode', 'unexpected-opcode']) {
    assert.ok((drops.get(reason) ?? 0) > 0, `no drop for ${reason}`);
  }
});

test('a live server counts every malformed datagram and still serves afterwards', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'yc-tftp-fuzz-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'f'), 'ok');
  const server = await startTftpServer({ root: dir, port: 0, bindAddress: '127.0.0.1', logger: silentLogger });
  t.after(() => server.close());
  const sock = createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  t.after(() => sock.close());
  const rand = prng(42);
  let sent = 0;
  for (let i = 0; i < 20_000 && sent < 2_000; i++) {
    const buf = mutate(rand);
    // Only what the server must drop silently, so nothing answers and the count is exact.
    if (buf.length > 65507 || classifyRequest(buf).kind !== 'drop') continue;
    await new Promise<void>((resolve, reject) => sock.send(buf, server.port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
    sent++;
    // Let the server's receive loop run, so the kernel buffer never overflows and the count is exact.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const droppedTotal = (): number =>
    Object.entries(server.stats()).filter(([k]) => k.startsWith('drop.')).reduce((a, [, v]) => a + v, 0);
  await waitFor('all drops counted', () => (droppedTotal() === sent ? true : undefined), { timeoutMs: 5000 });
  assert.equal(sent, 2_000);

  const reply = new Promise<Buffer>((resolve) => sock.once('message', (m) => resolve(m)));
  sock.send(encodeRequest('RRQ', 'f', 'octet'), server.port, '127.0.0.1');
  const data = decodePacket(await reply);
  assert.equal(data.op, 'DATA');
  assert.equal(data.op === 'DATA' && data.data.toString(), 'ok');
});
