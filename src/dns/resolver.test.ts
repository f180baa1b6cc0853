import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnswerCache } from './answers.js';
import { decodeMessage, encodeMessage } from './codec.js';
import { handlePacket } from './handler.js';
import { Zone, reverseZones } from './records.js';
import { resolve } from './resolver.js';
import { TEST_DOMAIN, bigRecords, testRecords, testZone } from './testzone.js';
import { RClass, Rcode, RType, type DnsMessage } from './types.js';

function query(name: string, type: number, over: Partial<DnsMessage> = {}): DnsMessage {
  return {
    id: 77, qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, ad: false, cd: false, rcode: 0,
    questions: [{ name, type, class: RClass.IN }], answers: [], authority: [], additional: [], ...over,
  };
}

function ask(zone: Zone, name: string, type: number, over: Partial<DnsMessage> = {}): DnsMessage {
  const r = resolve(query(name, type, over), zone.view());
  assert.equal(r.kind, 'answer');
  return (r as { response: DnsMessage }).response;
}

test('A, PTR, SRV with glue, TXT', () => {
  const z = testZone();
  const a = ask(z, 'n2.cluster.test', RType.A);
  assert.equal(a.aa, true);
  assert.equal(a.rcode, Rcode.NOERROR);
  assert.deepEqual(a.answers.map((r) => r.data), ['10.0.0.12']);
  assert.deepEqual(ask(z, '12.0.0.10.in-addr.arpa', RType.PTR).answers.map((r) => r.data), ['n2.cluster.test']);
  const srv = ask(z, '_etcd._tcp.cluster.test', RType.SRV);
  assert.equal(srv.answers.length, 1);
  assert.deepEqual(srv.additional.map((r) => [r.name, r.data]), [['n1.cluster.test', '10.0.0.11']]);
  assert.deepEqual(ask(z, 'info.cluster.test', RType.TXT).answers[0]!.data, ['hello', 'world']);
});

test('CNAME is followed inside our zones and stops at the zone edge', () => {
  const z = testZone();
  assert.deepEqual(ask(z, 'api.cluster.test', RType.A).answers.map((r) => r.data), ['vip.cluster.test', '10.0.0.100']);
  const ext = ask(z, 'ext.cluster.test', RType.A);
  assert.deepEqual(ext.answers.map((r) => r.data), ['example.org']);
  assert.equal(ext.authority.length, 0);
});

test('NXDOMAIN and NODATA carry the SOA with the negative TTL; empty non-terminals are NODATA', () => {
  const z = testZone();
  const nx = ask(z, 'nope.cluster.test', RType.A);
  assert.equal(nx.rcode, Rcode.NXDOMAIN);
  assert.equal(nx.aa, true);
  assert.equal(nx.authority[0]!.type, RType.SOA);
  assert.equal(nx.authority[0]!.name, 'cluster.test');
  const nodata = ask(z, 'n1.cluster.test', RType.TXT);
  assert.equal(nodata.rcode, Rcode.NOERROR);
  assert.equal(nodata.answers.length, 0);
  assert.equal(nodata.authority[0]!.type, RType.SOA);
  assert.equal(ask(z, '_tcp.cluster.test', RType.A).rcode, Rcode.NOERROR);
  const rev = ask(z, '99.0.0.10.in-addr.arpa', RType.PTR);
  assert.equal(rev.rcode, Rcode.NXDOMAIN);
  assert.equal(rev.authority[0]!.name, '0.0.10.in-addr.arpa');
});

test('names are case-insensitive and the question keeps its case', () => {
  const z = testZone();
  const r = ask(z, 'N1.CLUSTER.Test', RType.A);
  assert.deepEqual(r.answers.map((x) => x.data), ['10.0.0.11']);
  assert.equal(r.questions[0]!.name, 'N1.CLUSTER.Test');
});

test('apex SOA and NS', () => {
  const z = testZone();
  const soa = ask(z, 'cluster.test', RType.SOA);
  assert.equal(soa.answers.length, 1);
  assert.equal((soa.answers[0]!.data as { serial: number }).serial, 7);
  assert.equal((soa.answers[0]!.data as { mname: string }).mname, 'n1.cluster.test');
  const ns = ask(z, 'cluster.test', RType.NS);
  assert.deepEqual(ns.answers.map((r) => r.data), ['n1.cluster.test']);
  assert.deepEqual(ns.additional.map((r) => r.data), ['10.0.0.11']);
  assert.equal(ask(z, '0.0.10.in-addr.arpa', RType.SOA).answers.length, 1);
});

test('forward outside our zones; NOTIMP, FORMERR, REFUSED, BADVERS, drop responses', () => {
  const z = testZone();
  assert.deepEqual(resolve(query('example.org', RType.A), z.view()), { kind: 'forward' });
  assert.deepEqual(resolve(query('1.0.0.11.in-addr.arpa', RType.PTR), z.view()), { kind: 'forward' });
  assert.equal(ask(z, 'n1.cluster.test', RType.A, { opcode: 2 }).rcode, Rcode.NOTIMP);
  assert.equal(ask(z, 'n1.cluster.test', RType.A, { questions: [] }).rcode, Rcode.FORMERR);
  assert.equal(ask(z, 'cluster.test', RType.AXFR).rcode, Rcode.REFUSED);
  assert.equal(ask(z, 'cluster.test', RType.A, { questions: [{ name: 'cluster.test', type: 1, class: RClass.CH }] }).rcode, Rcode.REFUSED);
  assert.equal(ask(z, 'n1.cluster.test', RType.A, { edns: { udpSize: 1232, version: 1, dnssecOk: false, options: [] } }).rcode, Rcode.BADVERS);
  assert.deepEqual(resolve(query('n1.cluster.test', RType.A, { qr: true }), z.view()), { kind: 'drop', reason: 'not-a-query' });
});

test('truncation: a big answer over UDP gets TC, over TCP it is whole', () => {
  const z = new Zone(TEST_DOMAIN, [...testRecords(), ...bigRecords()], { reverseCidrs: ['10.0.0.0/24'] });
  const cache = AnswerCache.build(z.view());
  const wire = encodeMessage(query('big.cluster.test', RType.A));
  const udp = handlePacket(wire, cache, 'udp');
  assert.equal(udp.kind, 'reply');
  const u = decodeMessage((udp as { data: Buffer }).data);
  assert.equal(u.tc, true);
  assert.equal(u.answers.length, 0);
  const tcp = decodeMessage((handlePacket(wire, cache, 'tcp') as { data: Buffer }).data);
  assert.equal(tcp.tc, false);
  assert.equal(tcp.answers.length, 60);
  // With EDNS 1232 the 60 records (about 1000 bytes) fit in UDP.
  const edns = encodeMessage(query('big.cluster.test', RType.A, { edns: { udpSize: 4096, version: 0, dnssecOk: false, options: [] } }));
  assert.equal(decodeMessage((handlePacket(edns, cache, 'udp') as { data: Buffer }).data).answers.length, 60);
});

test('fast path answers byte-for-byte like the full path', () => {
  const z = testZone(20);
  const cache = AnswerCache.build(z.view());
  assert.ok(cache.size > 40);
  const names = ['n3.CLUSTER.test', 'Api.cluster.test', '13.0.0.10.In-Addr.Arpa', '_etcd._tcp.cluster.test', 'cluster.test', 'n1.cluster.test'];
  const types = [RType.A, RType.PTR, RType.SRV, RType.AAAA, RType.NS, RType.SOA];
  const ednsVariants: (DnsMessage['edns'])[] = [undefined, { udpSize: 4096, version: 0, dnssecOk: true, options: [{ code: 10, data: new Uint8Array(8) }] }];
  let fast = 0;
  for (const name of names) for (const type of types) for (const edns of ednsVariants) for (const cd of [false, true]) {
    const q = query(name, type, edns ? { edns, cd } : { cd });
    const wire = encodeMessage(q);
    const viaCache = cache.answer(wire, true);
    const r = resolve(decodeMessage(wire), z.view());
    assert.equal(r.kind, 'answer');
    const full = encodeMessage((r as { response: DnsMessage }).response);
    if (viaCache) {
      fast++;
      assert.deepEqual(viaCache, full, `${name} ${type}`);
    }
  }
  assert.ok(fast >= 30, `only ${fast} fast answers`);
});

test('replace swaps the whole view; bad records throw and keep the old one', () => {
  const z = testZone();
  const before = z.view();
  let seen = 0;
  z.onReplace(() => seen++);
  z.replace([{ name: 'new.cluster.test', type: 'A', ttl: 1, data: '10.0.0.5' }]);
  assert.equal(seen, 1);
  assert.notEqual(z.view(), before);
  assert.equal(z.view().lookup('n1.cluster.test', RType.A), 'nxdomain');
  assert.ok(Array.isArray(before.lookup('n1.cluster.test', RType.A)));
  assert.throws(() => z.replace([{ name: 'x.other.org', type: 'A', ttl: 1, data: '1.2.3.4' }]), /outside the zones/);
  assert.throws(() => z.replace([{ name: 'x.cluster.test', type: 'A', ttl: 1, data: '1.2.3' }]), /IPv4/);
  assert.throws(() => z.replace([
    { name: 'x.cluster.test', type: 'A', ttl: 1, data: '1.2.3.4' },
    { name: 'x.cluster.test', type: 'CNAME', ttl: 1, data: 'y.cluster.test' },
  ]), /CNAME and other data/);
  assert.ok(Array.isArray(z.view().lookup('new.cluster.test', RType.A)));
});

test('reverse zones per octet boundary', () => {
  assert.deepEqual(reverseZones('10.0.0.0/24'), ['0.0.10.in-addr.arpa']);
  assert.deepEqual(reverseZones('10.1.0.0/16'), ['1.10.in-addr.arpa']);
  assert.deepEqual(reverseZones('10.0.4.0/22'), ['4.0.10.in-addr.arpa', '5.0.10.in-addr.arpa', '6.0.10.in-addr.arpa', '7.0.10.in-addr.arpa']);
  assert.equal(reverseZones('10.16.0.0/12').length, 16);
});
