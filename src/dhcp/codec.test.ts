import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, DhcpDecodeError, encode, MAX_PACKET_LEN } from './codec.js';
import { clientArch, getIps, hostName, messageType, MsgType, Opt, paramRequestList, requestedIp, userClasses } from './options.js';
import { request } from './testing.js';

/** A DISCOVER as sent by busybox udhcpc, byte for byte (header fields, cookie and options). */
function knownDiscover(): Buffer {
  const b = Buffer.alloc(240);
  b.set([1, 1, 6, 0], 0);
  b.writeUInt32BE(0xdeadbeef, 4);
  b.writeUInt16BE(0x8000, 10);
  b.set([0x52, 0x54, 0x00, 0x12, 0x34, 0x56], 28);
  b.writeUInt32BE(0x63825363, 236);
  const opts = Buffer.from([
    53, 1, 1,
    61, 7, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56,
    50, 4, 10, 0, 0, 7,
    55, 4, 1, 3, 6, 12,
    12, 4, 0x62, 0x6f, 0x78, 0x31, // "box1"
    0, 0, // padding is skipped
    255,
  ]);
  return Buffer.concat([b, opts]);
}

test('decodes known bytes', () => {
  const p = decode(knownDiscover());
  assert.equal(p.op, 1);
  assert.equal(p.xid, 0xdeadbeef);
  assert.equal(p.flags, 0x8000);
  assert.equal(p.chaddr.toString('hex'), '525400123456');
  assert.equal(p.ciaddr, '0.0.0.0');
  assert.equal(messageType(p.options), MsgType.DISCOVER);
  assert.equal(requestedIp(p.options), '10.0.0.7');
  assert.deepEqual(paramRequestList(p.options), [1, 3, 6, 12]);
  assert.equal(hostName(p.options), 'box1');
  assert.deepEqual([...p.options.keys()], [53, 61, 50, 55, 12]);
});

test('encodes to known bytes: header, cookie, type first, end, padded to 300', () => {
  const p = request({ type: MsgType.REQUEST, mac: '52:54:00:12:34:56', xid: 1, prl: [1, 3], requestedIp: '10.0.0.9' });
  p.ciaddr = '10.0.0.9';
  const b = encode(p);
  assert.equal(b.length, 300);
  assert.deepEqual([...b.subarray(0, 4)], [1, 1, 6, 0]);
  assert.deepEqual([...b.subarray(12, 16)], [10, 0, 0, 9]);
  assert.equal(b.readUInt32BE(236), 0x63825363);
  assert.deepEqual([...b.subarray(240, 240 + 16)], [53, 1, 3, 50, 4, 10, 0, 0, 9, 55, 2, 1, 3, 255, 0, 0]);
});

test('round-trips every field', () => {
  const p = request({ type: MsgType.INFORM, ciaddr: '10.1.2.3', giaddr: '10.1.2.1', flags: 0x8000, prl: [1, 6, 42] });
  p.siaddr = '10.1.2.4';
  p.yiaddr = '10.1.2.5';
  p.sname = 'tftp.example';
  p.file = 'undionly.kpxe';
  p.hops = 2;
  p.secs = 7;
  p.options.set(Opt.DNS_SERVERS, Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]));
  const q = decode(encode(p));
  assert.deepEqual(q, p);
  assert.deepEqual(getIps(q.options, Opt.DNS_SERVERS), ['10.0.0.1', '10.0.0.2']);
});

test('long options are split on encode and concatenated on decode (RFC 3396)', () => {
  const p = request();
  const long = Buffer.alloc(600, 0x41);
  p.options.set(Opt.USER_CLASS, long);
  const q = decode(encode(p));
  assert.deepEqual(q.options.get(Opt.USER_CLASS), long);
});

test('option overload: options in file and sname are read', () => {
  const b = knownDiscover();
  const withOverload = Buffer.concat([b.subarray(0, b.length - 1), Buffer.from([52, 1, 3, 255])]);
  withOverload.set([93, 2, 0, 7, 255], 108); // file field
  withOverload.set([60, 9, ...Buffer.from('PXEClient'), 255], 44); // sname field
  const p = decode(withOverload);
  assert.equal(clientArch(p.options), 7);
  assert.equal(p.options.get(Opt.VENDOR_CLASS)?.toString(), 'PXEClient');
  assert.equal(p.file, '');
  assert.equal(p.sname, '');
});

test('user class: RFC 3004 framing and bare iPXE both read', () => {
  const bare = request({ options: [[Opt.USER_CLASS, 'iPXE']] });
  assert.ok(userClasses(bare.options).includes('iPXE'));
  const framed = request({ options: [[Opt.USER_CLASS, [4, ...Buffer.from('iPXE'), 3, ...Buffer.from('abc')]]] });
  assert.deepEqual(userClasses(framed.options).slice(0, 2), ['iPXE', 'abc']);
});

function reasonOf(buf: Buffer): string {
  try {
    decode(buf);
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof DhcpDecodeError);
    return err.reason;
  }
}

test('malformed input throws DhcpDecodeError with a short reason', () => {
  const good = knownDiscover();
  assert.equal(reasonOf(good), 'ok');
  assert.equal(reasonOf(good.subarray(0, 239)), 'too-short');
  assert.equal(reasonOf(Buffer.alloc(0)), 'too-short');
  assert.equal(reasonOf(Buffer.concat([good, Buffer.alloc(MAX_PACKET_LEN)])), 'oversized');
  const cookie = Buffer.from(good);
  cookie[236] = 0;
  assert.equal(reasonOf(cookie), 'bad-cookie');
  const hlen = Buffer.from(good);
  hlen[2] = 17;
  assert.equal(reasonOf(hlen), 'bad-hlen');
  assert.equal(reasonOf(Buffer.concat([good.subarray(0, 240), Buffer.from([53, 1])])), 'option-truncated');
  assert.equal(reasonOf(Buffer.concat([good.subarray(0, 240), Buffer.from([61])])), 'option-truncated');
  assert.equal(reasonOf(Buffer.concat([good.subarray(0, 240), Buffer.from([52, 1, 9, 255])])), 'bad-overload');
});

test('a missing end option is tolerated', () => {
  const good = knownDiscover();
  assert.equal(messageType(decode(good.subarray(0, good.length - 1)).options), MsgType.DISCOVER);
});

test('encode refuses what cannot be represented', () => {
  const p = request();
  p.file = 'x'.repeat(128);
  assert.throws(() => encode(p), /file longer/);
  const q = request();
  q.ciaddr = '10.0.0.256';
  assert.throws(() => encode(q), /bad IPv4/);
});
