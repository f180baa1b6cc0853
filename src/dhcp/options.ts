/** Option codes and typed accessors over DhcpPacket.options. A value with the wrong shape throws DhcpDecodeError. */
import { formatIpv4 } from '../lib/net.js';
import { DhcpDecodeError } from './codec.js';

export const Opt = {
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS_SERVERS: 6,
  HOST_NAME: 12,
  DOMAIN_NAME: 15,
  NTP_SERVERS: 42,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAM_REQUEST_LIST: 55,
  MESSAGE: 56,
  T1: 58,
  T2: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER: 66,
  BOOTFILE: 67,
  USER_CLASS: 77,
  CLIENT_ARCH: 93,
  IPXE: 175,
} as const;

export const MsgType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;

export const msgTypeName = (t: number): string =>
  Object.entries(MsgType).find(([, v]) => v === t)?.[0] ?? `type-${t}`;

type Options = Map<number, Buffer>;

function bad(code: number): DhcpDecodeError {
  return new DhcpDecodeError(`bad-option-${code}`);
}

export function getU8(o: Options, code: number): number | undefined {
  const v = o.get(code);
  if (v === undefined) return undefined;
  if (v.length !== 1) throw bad(code);
  return v[0];
}

export function getU32(o: Options, code: number): number | undefined {
  const v = o.get(code);
  if (v === undefined) return undefined;
  if (v.length !== 4) throw bad(code);
  return v.readUInt32BE(0);
}

export function getIp(o: Options, code: number): string | undefined {
  const n = getU32(o, code);
  return n === undefined ? undefined : formatIpv4(n);
}

export function getIps(o: Options, code: number): string[] | undefined {
  const v = o.get(code);
  if (v === undefined) return undefined;
  if (v.length === 0 || v.length % 4 !== 0) throw bad(code);
  const out: string[] = [];
  for (let i = 0; i < v.length; i += 4) out.push(formatIpv4(v.readUInt32BE(i)));
  return out;
}

/** Text options; trailing NULs (sent by some clients) are stripped, and an empty value counts as absent. */
export function getString(o: Options, code: number): string | undefined {
  const v = o.get(code);
  const s = v?.toString('latin1').replace(/\0+$/, '');
  return s === '' ? undefined : s;
}

export const messageType = (o: Options): number | undefined => getU8(o, Opt.MESSAGE_TYPE);
export const requestedIp = (o: Options): string | undefined => getIp(o, Opt.REQUESTED_IP);
export const serverId = (o: Options): string | undefined => getIp(o, Opt.SERVER_ID);
export const leaseTime = (o: Options): number | undefined => getU32(o, Opt.LEASE_TIME);
export const hostName = (o: Options): string | undefined => getString(o, Opt.HOST_NAME);
export const vendorClass = (o: Options): string | undefined => getString(o, Opt.VENDOR_CLASS);
export const clientId = (o: Options): Buffer | undefined => o.get(Opt.CLIENT_ID);

export function paramRequestList(o: Options): number[] {
  const v = o.get(Opt.PARAM_REQUEST_LIST);
  return v === undefined ? [] : [...v];
}

/** First architecture type of option 93 (RFC 4578: a list of 16-bit values). */
export function clientArch(o: Options): number | undefined {
  const v = o.get(Opt.CLIENT_ARCH);
  if (v === undefined) return undefined;
  if (v.length < 2 || v.length % 2 !== 0) throw bad(Opt.CLIENT_ARCH);
  return v.readUInt16BE(0);
}

/**
 * User classes (option 77). RFC 3004 frames each class with a length byte, but iPXE and
 * others send one bare string; both readings are returned so either form matches.
 */
export function userClasses(o: Options): string[] {
  const v = o.get(Opt.USER_CLASS);
  if (v === undefined || v.length === 0) return [];
  const framed: string[] = [];
  let i = 0;
  while (i < v.length) {
    const len = v[i]!;
    if (len === 0 || i + 1 + len > v.length) break;
    framed.push(v.subarray(i + 1, i + 1 + len).toString('latin1'));
    i += 1 + len;
  }
  const bare = v.toString('latin1').replace(/\0+$/, '');
  return i === v.length ? [...framed, bare] : [bare];
}

export function u8(n: number): Buffer {
  return Buffer.from([n & 255]);
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export function ips(list: readonly string[]): Buffer {
  return Buffer.concat(list.map(ipBytes));
}

export function ipBytes(ip: string): Buffer {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`bad IPv4 address "${ip}"`);
  return Buffer.from(parts);
}

export function text(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}
