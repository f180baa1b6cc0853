import { badInput } from './errors.js';

/** MAC addresses are kept lower-case, colon-separated: aa:bb:cc:dd:ee:ff. */
export function normalizeMac(input: string): string {
  const hex = input.trim().toLowerCase().replace(/[-:.]/g, '');
  if (!/^[0-9a-f]{12}$/.test(hex)) throw badInput(`malformed MAC address "${input}": expected 6 hex bytes like aa:bb:cc:dd:ee:ff`);
  return hex.match(/../g)!.join(':');
}

export function isMac(input: string): boolean {
  return /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(input);
}

export function macFromBytes(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

export function macToBytes(mac: string): Buffer {
  return Buffer.from(normalizeMac(mac).replace(/:/g, ''), 'hex');
}

export function parseIpv4(input: string): number {
  const parts = input.trim().split('.');
  if (parts.length !== 4) throw badInput(`malformed IPv4 address "${input}"`);
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw badInput(`malformed IPv4 address "${input}"`);
    n = n * 256 + Number(p);
  }
  return n;
}

export function isIpv4(input: string): boolean {
  try {
    parseIpv4(input);
    return true;
  } catch {
    return false;
  }
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  network: number;
  prefix: number;
}

export function parseCidr(input: string): Cidr {
  const [addr, prefixText, extra] = input.split('/');
  if (addr === undefined || prefixText === undefined || extra !== undefined || !/^\d{1,2}$/.test(prefixText) || Number(prefixText) > 32) {
    throw badInput(`malformed CIDR "${input}": expected like 10.0.0.0/24`);
  }
  const prefix = Number(prefixText);
  return { network: (parseIpv4(addr) & prefixMask(prefix)) >>> 0, prefix };
}

export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function cidrContains(cidr: Cidr, ip: number): boolean {
  return ((ip & prefixMask(cidr.prefix)) >>> 0) === cidr.network;
}

/** The in-addr.arpa name of an address, for PTR records. */
export function reverseName(ip: string): string {
  return ip.split('.').reverse().join('.') + '.in-addr.arpa';
}
