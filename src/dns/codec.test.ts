import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsDecodeError, decodeMessage, encodeMessage } from './codec.js';
import { readName } from './names.js';
import { RClass, RType, type DnsMessage } from './types.js';

function msg(over: Partial<DnsMessage> = {}): DnsMessage {
  return {
    id: 0x1234, qr: true, opcode: 0, aa: true, tc: false, rd: true, ra: true, ad: false, cd: false, rcode: 0,
    questions: [{ name: 'n1.Cluster.test', type: RType.A, class: RClass.IN }],
    answers: [], authority: [], additional: [], ...over,
  };
}

test('round-trips every supported record type', () => {
  const m = msg({
    questions: [{ name: 'n1.cluster.test', type: RType.A, class: RClass.IN }],
    answers: [
      { name: 'n1.cluster.test', type: RType.A, class: 1, ttl: 30, data: '10.0.0.11' },
      { name: 'n1.cluster.test', type: RType.AAAA, class: 1, ttl: 30, data: 'fd00:0:0:0:0:0:0:1' },
      { name: '11.0.0.10.in-addr.arpa', type: RType.PTR, class: 1, ttl: 30, data: 'n1.cluster.test' },
      { name: 'api.cluster.test', type: RType.CNAME, class: 1, ttl: 30, data: 'vip.cluster.test' },
      { name: '_etcd._tcp.cluster.test', type: RType.SRV, class: 1, ttl: 30, data: { priority: 1, weight: 2, port: 2379, target: 'n1.cluster.test' } },
      { name: 'cluster.test', type: RType.MX, class: 1, ttl: 30, data: { preference: 10, exchange: 'mail.cluster.test' } },
      { name: 'cluster.test', type: RType.TXT, class: 1, ttl: 30, data: ['a b', 'c'] },
      { name: 'cluster.test', type: 99, class: 1, ttl: 30, data: new Uint8Array([1, 2, 3]) },
    ],
    authority: [{ name: 'cluster.test', type: RType.SOA, class: 1, ttl: 30, data: { mname: 'ns.cluster.test', rname: 'hostmaster.cluster.test', serial: 4000000000, refresh: 1, retry: 2, expire: 3, minimum: 4 } }],
    additional: [{ name: 'cluster.test', type: RType.NS, class: 1, ttl: 60, data: 'n1.cluster.test' }],
    edns: { udpSize: 1232, version: 0, dnssecOk: true, options: [{ code: 10, data: new Uint8Array(8).fill(7) }] },
  });
  assert.deepEqual(decodeMessage(encodeMessage(m)), m);
});

test('compresses repeated names, case-insensitively, and keeps the question case', () => {
  const answers = Array.from({ length: 5 }, (_, i) => ({ name: 'n1.cluster.test', type: RType.A, class: 1, ttl: 30, data: `10.0.0.${i}` }));
  const wire = encodeMessage(msg({ answers }));
  // header 12 + question (17 + 4) + 5 answers of (2 pointer + 10 + 4)
  assert.equal(wire.length, 12 + 21 + 5 * 16);
  assert.equal(wire.subarray(12, 29).toString('latin1'), '\x02n1\x07Cluster\x04test\x00');
  const back = decodeMessage(wire);
  assert.equal(back.answers[4]!.name, 'n1.Cluster.test');
});

test('EDNS: decodes payload size, version, DO and the extended rcode', () => {
  const back = decodeMessage(encodeMessage(msg({ rcode: 16, edns: { udpSize: 4096, version: 1, dnssecOk: false, options: [] } })));
  assert.equal(back.rcode, 16);
  assert.deepEqual(back.edns, { udpSize: 4096, version: 1, dnssecOk: false, options: [] });
  assert.throws(() => encodeMessage(msg({ rcode: 16 })), /needs EDNS/);
});

test('escapes odd label bytes and round-trips them', () => {
  const m = msg({ questions: [{ name: 'a\\.b\\032c\\\\.test', type: 1, class: 1 }] });
  const wire = encodeMessage(m);
  assert.equal(wire[12], 6);
  assert.equal(decodeMessage(wire).questions[0]!.name, 'a\\.b\\032c\\\\.test');
});

test('truncates to maxSize with TC and no records', () => {
  const answers = Array.from({ length: 40 }, (_, i) => ({ name: 'n1.cluster.test', type: RType.A, class: 1, ttl: 30, data: `10.0.0.${i}` }));
  const wire = encodeMessage(msg({ answers }), { maxSize: 512 });
  const back = decodeMessage(wire);
  assert.equal(back.tc, true);
  assert.equal(back.answers.length, 0);
  assert.equal(back.questions.length, 1);
});

function reason(buf: Uint8Array): string {
  try {
    decodeMessage(buf);
  } catch (err) {
    assert.ok(err instanceof DnsDecodeError);
    return err.reason;
  }
  return 'ok';
}

test('rejects malformed input with a typed reason', () => {
  const good = encodeMessage(msg({ answers: [{ name: 'n1.cluster.test', type: 1, class: 1, ttl: 1, data: '1.2.3.4' }] }));
  assert.equal(reason(good), 'ok');
  assert.equal(reason(good.subarray(0, 5)), 'short-header');
  assert.equal(reason(good.subarray(0, good.length - 1)), 'truncated');
  assert.equal(reason(Buffer.concat([good, Buffer.from([0])])), 'trailing-data');
  assert.equal(reason(Buffer.alloc(70000)), 'too-large');
  const counts = Buffer.from(good);
  counts.writeUInt16BE(5000, 6);
  assert.equal(reason(counts), 'bad-count');
  const badA = Buffer.from(good);
  badA.writeUInt16BE(5, badA.length - 6);
  assert.notEqual(reason(badA), 'ok');
});

test('compression pointers: loops, forward pointers and label types are rejected', () => {
  const self = Buffer.from([0xc0, 0x00]);
  assert.throws(() => readName(self, 0), (e: DnsDecodeError) => e.reason === 'bad-pointer');
  // two names pointing at each other
  const loop = Buffer.from([0x01, 0x61, 0xc0, 0x04, 0x01, 0x62, 0xc0, 0x00]);
  assert.throws(() => readName(loop, 4), (e: DnsDecodeError) => e.reason === 'bad-pointer');
  assert.deepEqual(readName(Buffer.from([0x01, 0x61, 0x00, 0x01, 0x62, 0xc0, 0x00]), 3), { name: 'b.a', end: 7 });
  assert.throws(() => readName(Buffer.from([0x41, 0x00]), 0), (e: DnsDecodeError) => e.reason === 'label-type');
  const long = Buffer.concat([...Array.from({ length: 5 }, () => Buffer.from([63, ...Buffer.alloc(63, 0x61)])), Buffer.from([0])]);
  assert.throws(() => readName(long, 0), (e: DnsDecodeError) => e.reason === 'name-too-long');
});

test('rejects a second OPT and OPT outside additional', () => {
  const base = msg({ edns: { udpSize: 1232, version: 0, dnssecOk: false, options: [] } });
  const wire = encodeMessage(base);
  const opt = wire.subarray(wire.length - 11);
  const two = Buffer.concat([wire, opt]);
  two.writeUInt16BE(2, 10);
  assert.equal(reason(two), 'bad-opt');
  const inAnswer = Buffer.from(wire);
  inAnswer.writeUInt16BE(1, 6);
  inAnswer.writeUInt16BE(0, 10);
  assert.equal(reason(inAnswer), 'bad-opt');
});
