import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnswerCache } from './answers.js';
import { DnsDecodeError, decodeMessage, encodeMessage } from './codec.js';
import { handlePacket } from './handler.js';
import { resolve } from './resolver.js';
import { testZone } from './testzone.js';
import { RClass, RType, type DnsMessage } from './types.js';
import { prng } from '../lib/prng.js';


function seeds(zone: ReturnType<typeof testZone>): Buffer[] {
  const q = (name: string, type: number, edns: boolean): DnsMessage => ({
    id: 1, qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, ad: false, cd: false, rcode: 0,
    questions: [{ name, type, class: RClass.IN }], answers: [], authority: [], additional: [],
    ...(edns ? { edns: { udpSize: 1232, version: 0, dnssecOk: false, options: [{ code: 10, data: new Uint8Array(8) }] } } : {}),
  });
  const out: Buffer[] = [];
  for (const [name, type] of [['n1.cluster.test', RType.A], ['api.cluster.test', RType.A], ['_etcd._tcp.cluster.test', RType.SRV], ['12.0.0.10.in-addr.arpa', RType.PTR], ['nope.cluster.test', RType.TXT], ['cluster.test', RType.SOA], ['example.org', RType.A]] as const) {
    for (const edns of [false, true]) {
      const query = q(name, type, edns);
      out.push(encodeMessage(query));
      const r = resolve(query, zone.view());
      if (r.kind === 'answer') out.push(encodeMessage(r.response));
    }
  }
  return out;
}

test('fuzz: 100,000 broken packets through decode, fast path and resolver', () => {
  const zone = testZone(10);
  const cache = AnswerCache.build(zone.view());
  const base = seeds(zone);
  const rnd = prng(0xd15ea5e);
  const int = (n: number): number => Math.floor(rnd() * n);
  const deadline = Date.now() + 20_000;
  let decodeErrors = 0;
  let notQueries = 0;
  let drops = 0;
  let n = 0;
  for (; n < 100_000 && Date.now() < deadline; n++) {
    const seed = base[int(base.length)]!;
    let pkt: Buffer;
    switch (int(6)) {
      case 0: // bit flips
        pkt = Buffer.from(seed);
        for (let i = 1 + int(4); i > 0; i--) pkt[int(pkt.length)]! ^= 1 << int(8);
        break;
      case 1: // truncation
        pkt = Buffer.from(seed.subarray(0, int(seed.length)));
        break;
      case 2: // random bytes in place, including pointers
        pkt = Buffer.from(seed);
        for (let i = 1 + int(3); i > 0; i--) pkt[12 + int(Math.max(1, pkt.length - 12))] = [0xc0, 0xff, 0x3f, 0, int(256)][int(5)]!;
        break;
      case 3: // pure noise
        pkt = Buffer.alloc(int(600));
        for (let i = 0; i < pkt.length; i++) pkt[i] = int(256);
        break;
      case 4: // counts and appended garbage
        pkt = Buffer.concat([seed, Buffer.alloc(int(20), int(256))]);
        pkt.writeUInt16BE(int(0x10000), 4 + 2 * int(4));
        break;
      default: // oversized, now and then
        pkt = n % 500 === 0 ? Buffer.alloc(65536 + int(1000)) : Buffer.from(seed.subarray(0, 12 + int(seed.length - 11)));
    }
    let decoded: DnsMessage | undefined;
    try {
      decoded = decodeMessage(pkt);
    } catch (err) {
      assert.ok(err instanceof DnsDecodeError, `non-decode error escaped: ${String(err)}`);
      decodeErrors++;
    }
    if (decoded?.qr) notQueries++;
    const h = handlePacket(pkt, cache, n % 2 ? 'udp' : 'tcp');
    if (h.kind === 'drop') drops++;
    if (h.kind === 'reply' && h.fast) assert.ok(decoded && !decoded.qr, 'fast path answered a packet the decoder rejects');
    if (h.kind === 'reply' && n % 2) assert.ok(h.data.length <= 1232);
  }
  assert.equal(n, 100_000, `only ${n} packets within the time bound`);
  assert.equal(drops, decodeErrors + notQueries);
  assert.ok(decodeErrors > 50_000, `only ${decodeErrors} decode errors: the mutations are too gentle`);
});
