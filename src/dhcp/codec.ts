/** DHCPv4 wire format (RFC 2131 / 2132 / 3396): a packet is a BOOTP header, the magic cookie and options. */

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
    ciaddr: ipAt(buf, 12),
    yiaddr: ipAt(buf, 16),
    siaddr: ipAt(buf, 20),
    giaddr: ipAt(buf, 24),
    // Views into the datagram, not copies: node:dgram hands every message its own buffer.
    chaddr: buf.subarray(28, 28 + hlen),
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
    into.set(code, prev ? Buffer.concat([prev, value]) : value);
    i += 2 + len;
  }
  // A missing end option is tolerated: several embedded clients omit it when the options fill the packet.
}

/** Dotted quad of the 4 bytes at `at`; the hot path's cheaper formatIpv4 (no array, no join). */
function ipAt(buf: Buffer, at: number): string {
  const a = buf[at]!, b = buf[at + 1]!, c = buf[at + 2]!, d = buf[at + 3]!;
  return a === 0 && b === 0 && c === 0 && d === 0 ? ZERO_IP : `${a}.${b}.${c}.${d}`;
}

const ZERO_IP = '0.0.0.0';

function cString(field: Buffer): string {
  if (field[0] === 0) return '';
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? field.length : nul).toString('latin1');
}

/**
 * A dotted quad as a number, or -1 when it is not one (up to 3 digits per part, each at most 255).
 * The hot path's parseIpv4: no split, no regular expression, no exception.
 */
export function ipNumber(ip: string): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i <= ip.length; i++) {
    const c = i < ip.length ? ip.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || part > 255 || dots > 3) return -1;
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + (c - 48);
      digits++;
    } else return -1;
  }
  return dots === 4 ? n : -1;
}

function writeIp(buf: Buffer, offset: number, ip: string): void {
  if (ip === ZERO_IP) return; // the buffer is zero-filled
  const n = ipNumber(ip);
  if (n < 0) throw new Error(`cannot encode DHCP packet: bad IPv4 address "${ip}"`);
  buf.writeUInt32BE(n, offset);
}

function writeString(buf: Buffer, offset: number, size: number, value: string, what: string): void {
  if (value === '') return;
  const n = Buffer.byteLength(value, 'latin1');
  if (n >= size) throw new Error(`cannot encode DHCP packet: ${what} longer than ${size - 1} bytes`);
  buf.write(value, offset, n, 'latin1');
}

function writeOption(out: Buffer, at: number, code: number, value: Buffer): number {
  if (code === OPT_PAD || code === OPT_END || code > 255 || code < 0) throw new Error(`cannot encode DHCP option code ${code}`);
  let off = 0;
  do {
    const len = Math.min(255, value.length - off);
    if (at + 2 + len > MAX_PACKET_LEN - 1) throw new Error(`cannot encode DHCP packet: options exceed ${MAX_PACKET_LEN} bytes`);
    out[at] = code;
    out[at + 1] = len;
    value.copy(out, at + 2, off, off + len);
    at += 2 + len;
    off += 255;
  } while (off < value.length);
  return at;
}

/** Encodes options in insertion order, with message type (53) first; long values are split (RFC 3396). */
export function encode(p: DhcpPacket): Buffer {
  if (p.chaddr.length > 16) throw new Error('cannot encode DHCP packet: chaddr longer than 16 bytes');
  // One buffer of the largest size from Node's pool (no zeroing, no allocation of its own), written in
  // place and cut to length; only the header and the padding to 300 bytes need zeros.
  const out = Buffer.allocUnsafe(MAX_PACKET_LEN).fill(0, 0, MIN_LEN);
  out[0] = p.op;
  out[1] = p.htype;
  out[2] = p.hlen;
  out[3] = p.hops;
  out.writeUInt32BE(p.xid >>> 0, 4);
  out.writeUInt16BE(p.secs, 8);
  out.writeUInt16BE(p.flags, 10);
  writeIp(out, 12, p.ciaddr);
  writeIp(out, 16, p.yiaddr);
  writeIp(out, 20, p.siaddr);
  writeIp(out, 24, p.giaddr);
  p.chaddr.copy(out, 28);
  writeString(out, 44, 64, p.sname, 'sname');
  writeString(out, 108, 128, p.file, 'file');
  out.writeUInt32BE(COOKIE, HEADER_LEN);
  let at = MIN_LEN;
  const type = p.options.get(53);
  if (type !== undefined) at = writeOption(out, at, 53, type);
  for (const [code, value] of p.options) if (code !== 53) at = writeOption(out, at, code, value);
  out[at++] = OPT_END;
  if (at < MIN_REPLY_LEN) out.fill(0, at, MIN_REPLY_LEN);
  return out.subarray(0, Math.max(at, MIN_REPLY_LEN));
}
