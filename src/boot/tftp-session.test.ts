import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePacket, encodeAck, encodeData, encodeError, encodeOack, encodeRequest, TftpDecodeError } from './tftp-codec.js';
import { negotiate } from './tftp-options.js';
import { ReadSession } from './tftp-session.js';
import { splitRequestPath } from './tftp-fs.js';

test('codec round-trips every packet kind', () => {
  const rrq = decodePacket(encodeRequest('RRQ', 'a/b', 'OCTET', { BlkSize: '1024' }));
  // Options live in a null-prototype object, so a requested "__proto__" is just a name.
  assert.deepEqual({ ...rrq, options: rrq.op === 'RRQ' ? { ...rrq.options } : {} }, {
    op: 'RRQ', filename: 'a/b', mode: 'octet', options: { blksize: '1024' },
  });
  assert.deepEqual(decodePacket(encodeAck(65535)), { op: 'ACK', block: 65535 });
  assert.deepEqual(decodePacket(encodeData(70000, Buffer.from('x'))), { op: 'DATA', block: 70000 & 0xffff, data: Buffer.from('x') });
  assert.deepEqual(decodePacket(encodeError(1, 'nope')), { op: 'ERROR', code: 1, message: 'nope' });
  assert.equal(decodePacket(encodeOack({ tsize: '5' })).op, 'OACK');
  const reasons = (buf: Buffer): string => {
    try {
      decodePacket(buf);
      return 'ok';
    } catch (e) {
      assert.ok(e instanceof TftpDecodeError);
      return e.reason;
    }
  };
  assert.equal(reasons(Buffer.from([0, 1, 0])), 'too-short');
  assert.equal(reasons(Buffer.from([0, 9, 0, 0])), 'bad-opcode');
  assert.equal(reasons(Buffer.from('\x00\x01file\x00octet', 'latin1')), 'unterminated-string');
  assert.equal(reasons(encodeRequest('RRQ', 'f', 'octet', { a: '1', A: '2' })), 'duplicate-option');
  assert.equal(reasons(encodeRequest('RRQ', 'f', 'binary')), 'bad-mode');
  assert.equal(reasons(Buffer.concat([encodeAck(1), Buffer.from([0])])), 'trailing-bytes');
});

test('negotiation clamps or ignores out-of-range options', () => {
  assert.deepEqual(negotiate({ blksize: '100000', windowsize: '1000', timeout: '0', tsize: '0' }, 42, { timeoutMs: 1000 }), {
    params: { blksize: 65464, windowsize: 64, timeoutMs: 1000 },
    oack: { blksize: '65464', windowsize: '64', tsize: '42' },
  });
  assert.deepEqual(negotiate({ blksize: '7', timeout: '5', x: 'y' }, 0, { timeoutMs: 1000 }), {
    params: { blksize: 512, windowsize: 1, timeoutMs: 5000 },
    oack: { timeout: '5' },
  });
});

test('session: exact multiple of blksize ends with an empty block; duplicate ACKs do not resend', () => {
  const s = new ReadSession(1024, { blksize: 512, windowsize: 1, timeoutMs: 1 }, false, 2);
  assert.equal(s.totalBlocks, 3);
  assert.deepEqual(s.start(), { type: 'send-blocks', blocks: [1] });
  assert.deepEqual(s.onAck(1), { type: 'send-blocks', blocks: [2] });
  assert.equal(s.onAck(1).type, 'none');
  assert.deepEqual(s.onAck(2), { type: 'send-blocks', blocks: [3] });
  assert.deepEqual(s.blockRange(3), { offset: 1024, length: 0 });
  assert.deepEqual(s.onAck(3), { type: 'done' });
  assert.ok(s.finished);
});

test('session: OACK, windows, partial-window ACK, 16-bit rollover and bounded retries', () => {
  const s = new ReadSession(70_000 * 8, { blksize: 8, windowsize: 4, timeoutMs: 1 }, true, 2);
  assert.deepEqual(s.start(), { type: 'send-oack' });
  assert.deepEqual(s.onTimeout(), { type: 'send-oack' });
  assert.equal(s.onAck(5).type, 'none');
  assert.deepEqual(s.onAck(0), { type: 'send-blocks', blocks: [1, 2, 3, 4] });
  // The client lost block 3: it acknowledges 2, and the next window starts at 3.
  assert.deepEqual(s.onAck(2), { type: 'send-blocks', blocks: [3, 4, 5, 6] });
  let last = 6;
  for (let i = 0; i < 20_000 && last < 65_534; i++) {
    const a = s.onAck(last & 0xffff);
    assert.equal(a.type, 'send-blocks');
    last = a.type === 'send-blocks' ? a.blocks.at(-1)! : last;
  }
  const a = s.onAck(last & 0xffff);
  assert.ok(a.type === 'send-blocks' && a.blocks.some((b) => (b & 0xffff) === 0));
  const wrapped = a.type === 'send-blocks' ? a.blocks.at(-1)! : 0;
  assert.ok(wrapped > 65_535);
  assert.equal(s.onAck(wrapped & 0xffff).type, 'send-blocks');
  assert.equal(s.onTimeout().type, 'send-blocks');
  assert.equal(s.onTimeout().type, 'send-blocks');
  assert.equal(s.onTimeout().type, 'fail');
  assert.equal(s.retransmits, 3);
});

test('request paths: relative to the root, no ..', () => {
  assert.deepEqual(splitRequestPath('/boot//x/./y'), ['boot', 'x', 'y']);
  assert.deepEqual(splitRequestPath('\\boot\\ipxe.efi'), ['boot', 'ipxe.efi']);
  assert.equal(splitRequestPath('a/../../b'), undefined);
  assert.equal(splitRequestPath('..\\x'), undefined);
  assert.equal(splitRequestPath('/'), undefined);
});
