import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnswerCache } from './answers.js';
import { encodeMessage } from './codec.js';
import { testZone } from './testzone.js';
import { RClass, RType, type DnsMessage } from './types.js';

function wire(name: string, type: number, id: number, over: Partial<DnsMessage> = {}): Buffer {
  return encodeMessage({
    id, qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, ad: false, cd: false, rcode: 0,
    questions: [{ name, type, class: RClass.IN }], answers: [], authority: [], additional: [], ...over,
  });
}

const edns = { udpSize: 4096, version: 0, dnssecOk: true, options: [] };

test('answerShared gives the same bytes as answer, reusing one buffer per name, type and OPT', () => {
  const cache = AnswerCache.build(testZone(20).view());
  const queries = [
    wire('n3.cluster.test', RType.A, 1),
    wire('N3.Cluster.Test', RType.A, 2, { rd: false, cd: true }),
    wire('n3.cluster.test', RType.A, 3, { edns }),
    wire('n3.cluster.test', RType.A, 4, { edns: { ...edns, dnssecOk: false } }),
    wire('13.0.0.10.in-addr.arpa', RType.PTR, 5),
    wire('_etcd._tcp.cluster.test', RType.SRV, 6, { edns }),
  ];
  for (const q of queries) {
    const fresh = cache.answer(q, true);
    assert.ok(fresh);
    const shared = cache.answerShared(q);
    assert.deepEqual(shared, fresh);
    assert.notEqual(shared, fresh);
    const again = Buffer.from(q);
    again.writeUInt16BE(0xbeef, 0);
    const reused = cache.answerShared(again);
    assert.equal(reused, shared, 'not reused');
    assert.equal(reused.readUInt16BE(0), 0xbeef);
  }
  // The slow path stays the slow path.
  assert.equal(cache.answerShared(wire('nope.cluster.test', RType.A, 9)), undefined);
  assert.equal(cache.answerShared(wire('n1.cluster.test', RType.A, 9, { qr: true })), undefined);
});

test('keepLastShared leaves a queued reply untouched', () => {
  const cache = AnswerCache.build(testZone(5).view());
  const first = cache.answerShared(wire('n2.cluster.test', RType.A, 0x1111));
  assert.ok(first);
  const copy = Buffer.from(first);
  cache.keepLastShared();
  const second = cache.answerShared(wire('n2.cluster.test', RType.A, 0x2222));
  assert.ok(second);
  assert.notEqual(second, first);
  assert.deepEqual(first, copy, 'the kept reply was overwritten');
  assert.equal(second.readUInt16BE(0), 0x2222);
  // Without keepLastShared the buffer is reused and repatched.
  const third = cache.answerShared(wire('n2.cluster.test', RType.A, 0x3333));
  assert.equal(third, second);
  assert.equal(third.readUInt16BE(0), 0x3333);
});

test('the answers of one view are built once for every server in the process; a new view gets its own', () => {
  const zone = testZone(20);
  const first = AnswerCache.for(zone.view());
  assert.equal(AnswerCache.for(zone.view()), first, 'a second server of the same view shares the build');
  zone.replace(testZone(21).spec().records);
  const next = AnswerCache.for(zone.view());
  assert.notEqual(next, first);
  assert.ok(next.size > first.size, `${next.size} answers after adding a host, ${first.size} before`);
});
