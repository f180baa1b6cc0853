/** DHCPv4 wire format (RFC 2131 / 2132 / 3396): a packet is a BOOTP header, the magic cookie and options. */
import { formatIpv4 } from '../lib/net.js';

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
const HEADER_LEN = 236;
const COOKIE = 0x63825363;
const MIN_LEN = HEADER_LEN + 4;
/** Larger than any DHCP message on a 1500-byte link; anything bigger is not from a real client. */
export const MAX_PACKET_LEN = 1500;
/** BOOTP relays and old clients drop replies shorter than this. */
const MIN_REPLY_LEN = 300;
const OPT_PAD = 0;
const OPT_END = 255;
const OPT_OVERLOAD = 52;

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** The hardware address, hlen bytes long. */
  chaddr: Buffer;
  sname: string;
  file: string;
  /** Option code → value; repeated options are concatenated (RFC 3396). */
  options: Map<number, Buffer>;
}

export const FLAG_BROADCAST = 0x8000;

/** A packet that cannot be parsed; `reason` is short and fixed so it can key a drop counter. */
export class DhcpDecodeError extends Error {
  constructor(readonly reason: string, detail?: string) {
    super(detail ? `malformed DHCP packet: ${reason}: ${detail}` : `malformed DHCP packet: ${reason}`);
    this.name = 'DhcpDecodeError';
  }
}

export function decode(buf: Buffer): DhcpPacket {
  if (buf.length < MIN_LEN) throw new DhcpDecodeError('too-short', `${buf.length} bytes`);
  if (buf.length > MAX_PACKET_LEN) throw new DhcpDecodeError('oversized', `${buf.length} bytes`);
  if (buf.readUInt32BE(HEADER_LEN) !== COOKIE) throw new DhcpDecodeError('bad-cookie');
  const hlen = buf[2]!;
  if (hlen > 16) throw new DhcpDecodeError('bad-hlen', String(hlen));
  const options = new Map<number, Buffer>();
  parseOptions(buf.subarray(MIN_LEN), options, true);
  const overload = options.get(OPT_OVERLOAD);
  let sname = cString(buf.subarray(44, 108));
  let file = cString(buf.subarray(108, 236));
  if (overload !== undefined) {
    if (overload.length !== 1 || overload[0]! < 1 || overload[0]! > 3) throw new DhcpDecodeError('bad-overload');
    // RFC 2131: the file field is parsed before sname.
    if (overload[0]! & 1) {
      parseOptions(buf.subarray(108, 236), options, false);
      file = '';
    }
    if (overload[0]! & 2) {
      parseOptions(buf.subarray(44, 108), options, false);
      sname = '';
    }
  }
  return {
    op: buf[0]!,
    htype: buf[1]!,
    hlen,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: formatIpv4(buf.readUInt32BE(12)),
    yiaddr: formatIpv4(buf.readUInt32BE(16)),
    siaddr: formatIpv4(buf.readUInt32BE(20)),
    giaddr: formatIpv4(buf.readUInt32BE(24)),
    chaddr: Buffer.from(buf.subarray(28, 28 + hlen)),
    sname,
    file,
    options,
  };
}

function parseOptions(area: Buffer, into: Map<number, Buffer>, main: boolean): void {
  let i = 0;
  while (i < area.length) {
    const code = area[i]!;
    if (code === OPT_PAD) {
      i++;
      continue;
    }
    if (code === OPT_END) return;
    if (i + 1 >= area.length) throw new DhcpDecodeError('option-truncated', `option ${code}`);
    const len = area[i + 1]!;
    if (i + 2 + len > area.length) throw new DhcpDecodeError('option-truncated', `option ${code}`);
    const value = area.subarray(i + 2, i + 2 + len);
    if (code === OPT_OVERLOAD && !main) throw new DhcpDecodeError('bad-overload', 'nested');
    const prev = into.get(code);
    into.set(code, prev ? Buffer.concat([prev, value]) : Buffer.from(value));
    i += 2 + len;
  }
  // A missing end option is tolerated: several embedded clients omit it when the options fill the packet.
}

function cString(field: Buffer): string {
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? field.length : nul).toString('latin1');
}

function writeIp(buf: Buffer, offset: number, ip: string): void {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`cannot encode DHCP packet: bad IPv4 address "${ip}"`);
  }
  parts.forEach((p, k) => (buf[offset + k] = p));
}

function writeString(buf: Buffer, offset: number, size: number, value: string, what: string): void {
  const bytes = Buffer.from(value, 'latin1');
  if (bytes.length >= size) throw new Error(`cannot encode DHCP packet: ${what} longer than ${size - 1} bytes`);
  bytes.copy(buf, offset);
}

/** Encodes options in insertion order, with message type (53) first; long values are split (RFC 3396). */
export function encode(p: DhcpPacket): Buffer {
  if (p.chaddr.length > 16) throw new Error('cannot encode DHCP packet: chaddr longer than 16 bytes');
  const header = Buffer.alloc(MIN_LEN);
  header[0] = p.op;
  header[1] = p.htype;
  header[2] = p.hlen;
  header[3] = p.hops;
  header.writeUInt32BE(p.xid >>> 0, 4);
  header.writeUInt16BE(p.secs, 8);
  header.writeUInt16BE(p.flags, 10);
  writeIp(header, 12, p.ciaddr);
  writeIp(header, 16, p.yiaddr);
  writeIp(header, 20, p.siaddr);
  writeIp(header, 24, p.giaddr);
  p.chaddr.copy(header, 28);
  writeString(header, 44, 64, p.sname, 'sname');
  writeString(header, 108, 128, p.file, 'file');
  header.writeUInt32BE(COOKIE, HEADER_LEN);
  const parts: Buffer[] = [header];
  const codes = [...p.options.keys()].sort((a, b) => (a === 53 ? -1 : b === 53 ? 1 : 0));
  for (const code of codes) {
    if (code === OPT_PAD || code === OPT_END || code > 255 || code < 0) throw new Error(`cannot encode DHCP option code ${code}`);
    const value = p.options.get(code)!;
    let off = 0;
    do {
      const chunk = value.subarray(off, off + 255);
      parts.push(Buffer.from([code, chunk.length]), chunk);
      off += 255;
    } while (off < value.length);
  }
  parts.push(Buffer.from([OPT_END]));
  let out = Buffer.concat(parts);
  if (out.length < MIN_REPLY_LEN) out = Buffer.concat([out, Buffer.alloc(MIN_REPLY_LEN - out.length)]);
  if (out.length > MAX_PACKET_LEN) throw new Error(`cannot encode DHCP packet: ${out.length} bytes exceeds ${MAX_PACKET_LEN}`);
  return out;
}
