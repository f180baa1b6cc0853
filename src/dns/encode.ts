/** DNS message encoding with name compression, and truncation to a size limit (TC). */
import { parseIpv4 } from '../lib/net.js';
import { MAX_LABEL, asciiLower, nameToLabels } from './names.js';
import { RType, type DnsMessage, type DnsRecord, type MxData, type RData, type SoaData, type SrvData } from './types.js';

export interface EncodeOptions {
  /** Largest message to produce; a bigger one is sent with empty sections and TC set. */
  maxSize?: number;
}

const MAX = 65535;
// Encoding is synchronous, so one scratch buffer serves every call.
const scratch = Buffer.alloc(MAX + 512);

class Writer {
  pos = 0;
  private readonly offsets = new Map<string, number>();

  u8(v: number): void {
    this.room(1);
    scratch[this.pos++] = v;
  }
  u16(v: number): void {
    this.room(2);
    scratch.writeUInt16BE(v & 0xffff, this.pos);
    this.pos += 2;
  }
  u32(v: number): void {
    this.room(4);
    scratch.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    scratch.set(b, this.pos);
    this.pos += b.length;
  }
  latin1(s: string): void {
    this.room(s.length);
    this.pos += scratch.write(s, this.pos, 'latin1');
  }
  patch16(at: number, v: number): void {
    scratch.writeUInt16BE(v, at);
  }
  /** Writes a name, pointing at an earlier copy of its longest known suffix (compared case-insensitively). */
  name(name: string, compress: boolean): void {
    const labels = nameToLabels(name);
    for (let i = 0; i < labels.length; i++) {
      // Keyed by wire form so a label containing a dot cannot collide with two labels.
      const key = asciiLower(labels.slice(i).map((l) => String.fromCharCode(l.length) + l).join(''));
      const at = this.offsets.get(key);
      if (compress && at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.pos < 0x3fff && !this.offsets.has(key)) this.offsets.set(key, this.pos);
      const l = labels[i]!;
      if (l.length > MAX_LABEL) throw new Error(`label too long in "${name}"`);
      this.u8(l.length);
      this.latin1(l);
    }
    this.u8(0);
  }
  private room(n: number): void {
    if (this.pos + n > MAX) throw new RangeError('DNS message exceeds 65535 bytes');
  }
}

/** Encodes a message; with maxSize, an oversized one loses its records and gets TC (the client retries over TCP). */
export function encodeMessage(msg: DnsMessage, opts: EncodeOptions = {}): Buffer {
  const full = encodeInto(msg, false);
  if (opts.maxSize === undefined || full.length <= opts.maxSize) return full;
  return encodeInto(msg, true);
}

function encodeInto(msg: DnsMessage, truncate: boolean): Buffer {
  const w = new Writer();
  const rcode = msg.rcode;
  if (rcode > 15 && !msg.edns) throw new Error(`rcode ${rcode} needs EDNS`);
  w.u16(msg.id);
  w.u8((msg.qr ? 0x80 : 0) | ((msg.opcode & 0x0f) << 3) | (msg.aa ? 0x04 : 0) | (msg.tc || truncate ? 0x02 : 0) | (msg.rd ? 0x01 : 0));
  w.u8((msg.ra ? 0x80 : 0) | (msg.ad ? 0x20 : 0) | (msg.cd ? 0x10 : 0) | (rcode & 0x0f));
  const an = truncate ? [] : msg.answers;
  const ns = truncate ? [] : msg.authority;
  const ar = truncate ? [] : msg.additional;
  w.u16(msg.questions.length);
  w.u16(an.length);
  w.u16(ns.length);
  w.u16(ar.length + (msg.edns ? 1 : 0));
  for (const q of msg.questions) {
    w.name(q.name, true);
    w.u16(q.type);
    w.u16(q.class);
  }
  for (const r of an) writeRecord(w, r);
  for (const r of ns) writeRecord(w, r);
  for (const r of ar) writeRecord(w, r);
  if (msg.edns) {
    w.u8(0);
    w.u16(RType.OPT);
    w.u16(msg.edns.udpSize);
    w.u8(rcode >> 4);
    w.u8(msg.edns.version);
    w.u16(msg.edns.dnssecOk ? 0x8000 : 0);
    const lenAt = w.pos;
    w.u16(0);
    for (const o of msg.edns.options) {
      w.u16(o.code);
      w.u16(o.data.length);
      w.bytes(o.data);
    }
    w.patch16(lenAt, w.pos - lenAt - 2);
  }
  return Buffer.from(scratch.subarray(0, w.pos));
}

function writeRecord(w: Writer, r: DnsRecord): void {
  w.name(r.name, true);
  w.u16(r.type);
  w.u16(r.class);
  w.u32(r.ttl);
  const lenAt = w.pos;
  w.u16(0);
  writeRData(w, r.type, r.data);
  w.patch16(lenAt, w.pos - lenAt - 2);
}

function writeRData(w: Writer, type: number, data: RData): void {
  const wrong = (): Error => new TypeError(`record data does not fit type ${type}`);
  switch (type) {
    case RType.A:
      if (typeof data !== 'string') throw wrong();
      w.u32(parseIpv4(data));
      return;
    case RType.AAAA:
      if (typeof data !== 'string') throw wrong();
      w.bytes(ipv6Bytes(data));
      return;
    case RType.NS:
    case RType.CNAME:
    case RType.PTR:
      if (typeof data !== 'string') throw wrong();
      w.name(data, true);
      return;
    case RType.MX: {
      const mx = data as MxData;
      if (typeof mx !== 'object' || typeof mx.exchange !== 'string') throw wrong();
      w.u16(mx.preference);
      w.name(mx.exchange, true);
      return;
    }
    case RType.SRV: {
      const srv = data as SrvData;
      if (typeof srv !== 'object' || typeof srv.target !== 'string') throw wrong();
      w.u16(srv.priority);
      w.u16(srv.weight);
      w.u16(srv.port);
      w.name(srv.target, false); // RFC 2782: the target is never compressed
      return;
    }
    case RType.SOA: {
      const soa = data as SoaData;
      if (typeof soa !== 'object' || typeof soa.mname !== 'string' || typeof soa.rname !== 'string') throw wrong();
      w.name(soa.mname, true);
      w.name(soa.rname, true);
      for (const v of [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum]) w.u32(v);
      return;
    }
    case RType.TXT: {
      if (!Array.isArray(data) || data.length === 0) throw wrong();
      for (const s of data) {
        if (typeof s !== 'string' || s.length > 255) throw wrong();
        w.u8(s.length);
        w.latin1(s);
      }
      return;
    }
    default:
      if (!(data instanceof Uint8Array)) throw wrong();
      w.bytes(data);
  }
}

function ipv6Bytes(text: string): Uint8Array {
  const [head = '', tail, extra] = text.split('::');
  if (extra !== undefined) throw new TypeError(`malformed IPv6 address "${text}"`);
  const hs = head === '' ? [] : head.split(':');
  const ts = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? 0 : 8 - hs.length - ts.length;
  const groups = [...hs, ...Array<string>(Math.max(0, fill)).fill('0'), ...ts];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) throw new TypeError(`malformed IPv6 address "${text}"`);
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}
