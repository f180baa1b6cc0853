/** Pure authoritative resolver: a decoded query and a record view in, an answer/forward/drop decision out. */
import { normalizeName } from './names.js';
import type { ZoneView } from './records.js';
import { EDNS_UDP_SIZE, OPCODE_QUERY, RClass, Rcode, RType, type DnsMessage, type DnsRecord } from './types.js';

export type ResolveResult =
  | { kind: 'answer'; response: DnsMessage }
  | { kind: 'forward' }
  | { kind: 'drop'; reason: string };

const MAX_CNAME_CHAIN = 8;

/** A response skeleton echoing the query's id, opcode, RD, CD, question and EDNS presence. */
export function responseTo(query: DnsMessage, rcode: number, aa = false): DnsMessage {
  const msg: DnsMessage = {
    id: query.id,
    qr: true,
    opcode: query.opcode,
    aa,
    tc: false,
    rd: query.rd,
    ra: true,
    ad: false,
    cd: query.cd,
    rcode,
    questions: query.opcode === OPCODE_QUERY ? query.questions.slice(0, 1) : [],
    answers: [],
    authority: [],
    additional: [],
  };
  if (query.edns) msg.edns = { udpSize: EDNS_UDP_SIZE, version: 0, dnssecOk: query.edns.dnssecOk, options: [] };
  return msg;
}

export function resolve(query: DnsMessage, zone: ZoneView): ResolveResult {
  if (query.qr) return { kind: 'drop', reason: 'not-a-query' };
  if (query.opcode !== OPCODE_QUERY) return answer(responseTo(query, Rcode.NOTIMP));
  if (query.edns && query.edns.version > 0) {
    const r = responseTo(query, Rcode.BADVERS);
    r.questions = [];
    return answer(r);
  }
  const q = query.questions[0];
  if (query.questions.length !== 1 || !q || query.answers.length > 0 || query.authority.length > 0) {
    return answer(responseTo(query, Rcode.FORMERR));
  }
  const name = normalizeName(q.name);
  const apex = zone.apexOf(name);
  if (apex === undefined) return { kind: 'forward' };
  if (q.class !== RClass.IN && q.class !== RClass.ANY) return answer(responseTo(query, Rcode.REFUSED));
  if (q.type === RType.AXFR || q.type === RType.IXFR || q.type === RType.OPT) return answer(responseTo(query, Rcode.REFUSED));
  return answer(authoritative(query, zone, name, q.type));
}

function answer(response: DnsMessage): ResolveResult {
  return { kind: 'answer', response };
}

function authoritative(query: DnsMessage, zone: ZoneView, qname: string, qtype: number): DnsMessage {
  const res = responseTo(query, Rcode.NOERROR, true);
  let name = qname;
  for (let hops = 0; hops <= MAX_CNAME_CHAIN; hops++) {
    const apex = zone.apexOf(name);
    // A CNAME leaving our zones ends the chain: the client's resolver follows it.
    if (apex === undefined) return res;
    const found = zone.lookup(name, qtype);
    if (Array.isArray(found)) {
      res.answers.push(...found);
      addGlue(res, zone, found);
      return res;
    }
    if (found === 'nodata' && qtype !== RType.CNAME) {
      const cname = zone.lookup(name, RType.CNAME);
      if (Array.isArray(cname) && cname[0]) {
        res.answers.push(cname[0]);
        name = cname[0].data as string;
        continue;
      }
    }
    if (found === 'nxdomain') res.rcode = Rcode.NXDOMAIN;
    res.authority.push(negativeSoa(zone.soa(apex)));
    return res;
  }
  return res;
}

/** Negative answers are cached for min(SOA TTL, SOA minimum) (RFC 2308). */
function negativeSoa(soa: DnsRecord): DnsRecord {
  const min = typeof soa.data === 'object' && 'minimum' in soa.data ? soa.data.minimum : soa.ttl;
  return { ...soa, ttl: Math.min(soa.ttl, min) };
}

/** Addresses of SRV/NS/MX targets we know, so clients need no second query. */
function addGlue(res: DnsMessage, zone: ZoneView, records: DnsRecord[]): void {
  const seen = new Set<string>();
  for (const r of records) {
    let target: string | undefined;
    if (r.type === RType.SRV || r.type === RType.NS) target = r.type === RType.NS ? (r.data as string) : (r.data as { target: string }).target;
    if (target === undefined || seen.has(target) || zone.apexOf(target) === undefined) continue;
    seen.add(target);
    const a = zone.lookup(target, RType.A);
    if (Array.isArray(a)) res.additional.push(...a);
  }
}
