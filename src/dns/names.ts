/** Domain names: presentation form ⇄ labels, wire reading with compression pointers. */
import { DnsDecodeError } from './errors.js';

export const MAX_NAME_WIRE = 255;
export const MAX_LABEL = 63;

/** Canonical key: lower-case (ASCII only, as DNS compares names) without the trailing dot. */
export function normalizeName(name: string): string {
  const n = name.endsWith('.') && !name.endsWith('\\.') ? name.slice(0, -1) : name;
  return asciiLower(n);
}

export function asciiLower(s: string): string {
  return /[A-Z]/.test(s) ? s.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : s;
}

/** Splits a presentation name into labels of raw bytes (latin1 strings); throws on invalid names. */
export function nameToLabels(name: string): string[] {
  const n = name.endsWith('.') && !name.endsWith('\\.') ? name.slice(0, -1) : name;
  if (n === '') return [];
  const labels: string[] = [];
  let wire = 1;
  let cur = '';
  for (let i = 0; i < n.length; i++) {
    const ch = n[i]!;
    if (ch === '.') {
      pushLabel();
      continue;
    }
    if (ch === '\\') {
      const d = /^\d{3}/.exec(n.slice(i + 1, i + 4));
      if (d) {
        const v = Number(d[0]);
        if (v > 255) throw new Error(`bad escape in name "${name}"`);
        cur += String.fromCharCode(v);
        i += 3;
      } else {
        if (i + 1 >= n.length) throw new Error(`dangling escape in name "${name}"`);
        cur += n[++i];
      }
      continue;
    }
    if (ch.charCodeAt(0) > 255) throw new Error(`non-latin1 character in name "${name}"`);
    cur += ch;
  }
  pushLabel();
  return labels;

  function pushLabel(): void {
    if (cur.length === 0 || cur.length > MAX_LABEL) throw new Error(`bad label length in name "${name}"`);
    wire += cur.length + 1;
    if (wire > MAX_NAME_WIRE) throw new Error(`name too long: "${name}"`);
    labels.push(cur);
    cur = '';
  }
}

/** Wire form without compression, e.g. for cache keys and the fast path. */
export function nameToWire(name: string): Buffer {
  const labels = nameToLabels(name);
  const out = Buffer.allocUnsafe(labels.reduce((n, l) => n + l.length + 1, 1));
  let p = 0;
  for (const l of labels) {
    out[p++] = l.length;
    p += out.write(l, p, 'latin1');
  }
  out[p] = 0;
  return out;
}

function labelText(buf: Uint8Array, start: number, len: number): string {
  let plain = true;
  for (let i = start; i < start + len; i++) {
    const b = buf[i]!;
    if (b <= 0x20 || b >= 0x7f || b === 0x2e || b === 0x5c) {
      plain = false;
      break;
    }
  }
  if (plain) return Buffer.from(buf.buffer, buf.byteOffset + start, len).toString('latin1');
  let s = '';
  for (let i = start; i < start + len; i++) {
    const b = buf[i]!;
    if (b === 0x2e || b === 0x5c) s += '\\' + String.fromCharCode(b);
    else if (b <= 0x20 || b >= 0x7f) s += '\\' + String(b).padStart(3, '0');
    else s += String.fromCharCode(b);
  }
  return s;
}

/**
 * Reads a possibly compressed name at `offset`. Every pointer must point strictly before the
 * previous jump target, so loops are impossible; the 255-byte limit bounds the rest.
 */
export function readName(buf: Uint8Array, offset: number): { name: string; end: number } {
  let pos = offset;
  let end = -1;
  let wire = 1;
  let limit = offset;
  let name = '';
  for (;;) {
    if (pos >= buf.length) throw new DnsDecodeError('truncated', 'name runs past the end');
    const len = buf[pos]!;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      return { name, end };
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= buf.length) throw new DnsDecodeError('truncated', 'pointer runs past the end');
      const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
      if (target >= limit) throw new DnsDecodeError('bad-pointer', 'compression pointer does not point backwards');
      if (end < 0) end = pos + 2;
      limit = target;
      pos = target;
      continue;
    }
    if (kind !== 0) throw new DnsDecodeError('label-type', 'unsupported label type');
    if (pos + 1 + len > buf.length) throw new DnsDecodeError('truncated', 'label runs past the end');
    wire += len + 1;
    if (wire > MAX_NAME_WIRE) throw new DnsDecodeError('name-too-long', 'name longer than 255 bytes');
    const text = labelText(buf, pos + 1, len);
    name = name === '' ? text : name + '.' + text;
    pos += len + 1;
  }
}
