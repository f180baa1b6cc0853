/** DNS message decoding; encoding lives in encode.ts and is re-exported here. */
import { DnsDecodeError } from './errors.js';
import { readName } from './names.js';
import { RType, type DnsMessage, type DnsQuestion, type DnsRecord, type Edns, type EdnsOption, type RData } from './types.js';

export { DnsDecodeError, type DecodeReason } from './errors.js';
export { encodeMessage, type EncodeOptions } from './encode.js';

export const MAX_MESSAGE = 65535;
const HEADER = 12;

/** Decodes a query or response; anything malformed, truncated or oversized throws DnsDecodeError. */
export function decodeMessage(buf: Uint8Array): DnsMessage {
  if (buf.length > MAX_MESSAGE) throw new DnsDecodeError('too-large', `${buf.length} bytes`);
  if (buf.length < HEADER) throw new DnsDecodeError('short-header', `${buf.length} bytes`);
  const u16 = (p: number): number => (buf[p]! << 8) | buf[p + 1]!;
  const f1 = buf[2]!;
  const f2 = buf[3]!;
  const qd = u16(4);
  const an = u16(6);
  const ns = u16(8);
  const ar = u16(10);
  // A question takes at least 5 bytes, a record at least 11: reject impossible counts before looping.
  if (HEADER + qd * 5 + (an + ns + ar) * 11 > buf.length) throw new DnsDecodeError('bad-count', 'section counts exceed the message');
  const msg: DnsMessage = {
    id: u16(0),
    qr: (f1 & 0x80) !== 0,
    opcode: (f1 >> 3) & 0x0f,
    aa: (f1 & 0x04) !== 0,
    tc: (f1 & 0x02) !== 0,
    rd: (f1 & 0x01) !== 0,
    ra: (f2 & 0x80) !== 0,
    ad: (f2 & 0x20) !== 0,
    cd: (f2 & 0x10) !== 0,
    rcode: f2 & 0x0f,
    questions: [],
    answers: [],
    authority: [],
    additional: [],
  };
  let pos = HEADER;
  for (let i = 0; i < qd; i++) {
    const q = readQuestion(buf, pos);
    msg.questions.push(q.question);
    pos = q.end;
  }
  for (let i = 0; i < an; i++) pos = readRecordInto(buf, pos, msg.answers, null);
  for (let i = 0; i < ns; i++) pos = readRecordInto(buf, pos, msg.authority, null);
  for (let i = 0; i < ar; i++) pos = readRecordInto(buf, pos, msg.additional, msg);
  if (pos !== buf.length) throw new DnsDecodeError('trailing-data', `${buf.length - pos} bytes after the last record`);
  return msg;
}

function readQuestion(buf: Uint8Array, offset: number): { question: DnsQuestion; end: number } {
  const { name, end } = readName(buf, offset);
  if (end + 4 > buf.length) throw new DnsDecodeError('truncated', 'question runs past the end');
  return {
    question: { name, type: (buf[end]! << 8) | buf[end + 1]!, class: (buf[end + 2]! << 8) | buf[end + 3]! },
    end: end + 4,
  };
}

/** Reads one record; an OPT record is only legal once, in the additional section (`msg` given). */
function readRecordInto(buf: Uint8Array, offset: number, out: DnsRecord[], msg: DnsMessage | null): number {
  const { name, end } = readName(buf, offset);
  if (end + 10 > buf.length) throw new DnsDecodeError('truncated', 'record header runs past the end');
  const type = (buf[end]! << 8) | buf[end + 1]!;
  const klass = (buf[end + 2]! << 8) | buf[end + 3]!;
  const ttl = ((buf[end + 4]! << 24) | (buf[end + 5]! << 16) | (buf[end + 6]! << 8) | buf[end + 7]!) >>> 0;
  const rdlen = (buf[end + 8]! << 8) | buf[end + 9]!;
  const start = end + 10;
  const stop = start + rdlen;
  if (stop > buf.length) throw new DnsDecodeError('truncated', 'record data runs past the end');
  if (type === RType.OPT) {
    if (!msg) throw new DnsDecodeError('bad-opt', 'OPT outside the additional section');
    if (msg.edns) throw new DnsDecodeError('bad-opt', 'more than one OPT record');
    if (name !== '') throw new DnsDecodeError('bad-opt', 'OPT owner is not the root');
    msg.edns = readEdns(buf, klass, ttl, start, stop);
    msg.rcode |= (ttl >>> 24) << 4;
    return stop;
  }
  out.push({ name, type, class: klass, ttl, data: readRData(buf, type, start, stop) });
  return stop;
}

function readEdns(buf: Uint8Array, udpSize: number, ttl: number, start: number, stop: number): Edns {
  const options: EdnsOption[] = [];
  let p = start;
  while (p < stop) {
    if (p + 4 > stop) throw new DnsDecodeError('bad-opt', 'option header runs past the record');
    const code = (buf[p]! << 8) | buf[p + 1]!;
    const len = (buf[p + 2]! << 8) | buf[p + 3]!;
    if (p + 4 + len > stop) throw new DnsDecodeError('bad-opt', 'option data runs past the record');
    options.push({ code, data: new Uint8Array(buf.subarray(p + 4, p + 4 + len)) });
    p += 4 + len;
  }
  return { udpSize, version: (ttl >>> 16) & 0xff, dnssecOk: (ttl & 0x8000) !== 0, options };
}

function readRData(buf: Uint8Array, type: number, start: number, stop: number): RData {
  const len = stop - start;
  const u16 = (p: number): number => (buf[p]! << 8) | buf[p + 1]!;
  const u32 = (p: number): number => ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
  // A name inside RDATA must end exactly where the RDATA (or its fixed tail) does.
  const nameAt = (p: number, mustEnd: number): { name: string; end: number } => {
    const r = readName(buf.subarray(0, stop), p);
    if (r.end > mustEnd) throw new DnsDecodeError('bad-rdata', 'name runs past the record data');
    return r;
  };
  const exact = (end: number): void => {
    if (end !== stop) throw new DnsDecodeError('bad-rdata', `record data length mismatch for type ${type}`);
  };
  switch (type) {
    case RType.A:
      if (len !== 4) throw new DnsDecodeError('bad-rdata', 'A record is not 4 bytes');
      return `${buf[start]}.${buf[start + 1]}.${buf[start + 2]}.${buf[start + 3]}`;
    case RType.AAAA: {
      if (len !== 16) throw new DnsDecodeError('bad-rdata', 'AAAA record is not 16 bytes');
      const groups: string[] = [];
      for (let i = 0; i < 16; i += 2) groups.push(u16(start + i).toString(16));
      return groups.join(':');
    }
    case RType.NS:
    case RType.CNAME:
    case RType.PTR: {
      const r = nameAt(start, stop);
      exact(r.end);
      return r.name;
    }
    case RType.MX: {
      if (len < 3) throw new DnsDecodeError('bad-rdata', 'MX record too short');
      const r = nameAt(start + 2, stop);
      exact(r.end);
      return { preference: u16(start), exchange: r.name };
    }
    case RType.SRV: {
      if (len < 7) throw new DnsDecodeError('bad-rdata', 'SRV record too short');
      const r = nameAt(start + 6, stop);
      exact(r.end);
      return { priority: u16(start), weight: u16(start + 2), port: u16(start + 4), target: r.name };
    }
    case RType.SOA: {
      const m = nameAt(start, stop);
      const r = nameAt(m.end, stop);
      exact(r.end + 20);
      const p = r.end;
      return { mname: m.name, rname: r.name, serial: u32(p), refresh: u32(p + 4), retry: u32(p + 8), expire: u32(p + 12), minimum: u32(p + 16) };
    }
    case RType.TXT: {
      const parts: string[] = [];
      let p = start;
      while (p < stop) {
        const l = buf[p]!;
        if (p + 1 + l > stop) throw new DnsDecodeError('bad-rdata', 'TXT string runs past the record data');
        parts.push(Buffer.from(buf.buffer, buf.byteOffset + p + 1, l).toString('latin1'));
        p += 1 + l;
      }
      if (parts.length === 0) throw new DnsDecodeError('bad-rdata', 'empty TXT record');
      return parts;
    }
    default:
      return new Uint8Array(buf.subarray(start, stop));
  }
}
