/** TFTP wire format (RFC 1350, options RFC 2347). Decoding throws only TftpDecodeError. */

export const Opcode = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

export const TftpErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;

export type TftpPacket =
  | { op: 'RRQ' | 'WRQ'; filename: string; mode: string; options: Record<string, string> }
  | { op: 'DATA'; block: number; data: Buffer }
  | { op: 'ACK'; block: number }
  | { op: 'ERROR'; code: number; message: string }
  | { op: 'OACK'; options: Record<string, string> };

/** Why a packet was dropped; the reason doubles as a stats counter name. */
export type DecodeReason =
  | 'too-short'
  | 'too-long'
  | 'bad-opcode'
  | 'unterminated-string'
  | 'empty-filename'
  | 'bad-mode'
  | 'bad-option'
  | 'duplicate-option'
  | 'trailing-bytes';

export class TftpDecodeError extends Error {
  constructor(readonly reason: DecodeReason, message: string) {
    super(message);
    this.name = 'TftpDecodeError';
  }
}

/** Largest UDP payload a TFTP packet can have: 4 header bytes + the largest blksize (RFC 2348). */
export const MAX_PACKET = 4 + 65464;
const MAX_STRING = 512;
const MAX_OPTIONS = 16;
const MODES = new Set(['octet', 'netascii', 'mail']);

const fail = (reason: DecodeReason, message: string): never => {
  throw new TftpDecodeError(reason, message);
};

/** Reads NUL-terminated ASCII strings; the request must end exactly at the last NUL. */
function readStrings(buf: Buffer, start: number): string[] {
  const out: string[] = [];
  let pos = start;
  while (pos < buf.length) {
    const end = buf.indexOf(0, pos);
    if (end < 0) fail('unterminated-string', 'string not NUL-terminated');
    if (end - pos > MAX_STRING) fail('too-long', 'string longer than 512 bytes');
    out.push(buf.toString('latin1', pos, end));
    pos = end + 1;
  }
  return out;
}

function decodeRequest(op: 'RRQ' | 'WRQ', buf: Buffer): TftpPacket {
  if (buf.length > MAX_STRING * 2) fail('too-long', 'request longer than 1024 bytes');
  const parts = readStrings(buf, 2);
  const [filename, rawMode, ...rest] = parts;
  if (filename === undefined || rawMode === undefined) return fail('too-short', 'request lacks filename or mode');
  if (filename.length === 0) fail('empty-filename', 'empty filename');
  const mode = rawMode.toLowerCase();
  if (!MODES.has(mode)) fail('bad-mode', `unknown transfer mode "${rawMode}"`);
  // Some clients pad the request with a trailing NUL: tolerate one empty string at the end.
  if (rest.length % 2 === 1 && rest[rest.length - 1] === '') rest.pop();
  if (rest.length % 2 !== 0) fail('bad-option', 'option without a value');
  if (rest.length / 2 > MAX_OPTIONS) fail('bad-option', 'too many options');
  const options: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 0; i < rest.length; i += 2) {
    const name = rest[i]!.toLowerCase();
    if (name.length === 0) fail('bad-option', 'empty option name');
    if (name in options) fail('duplicate-option', `option "${name}" repeated`);
    options[name] = rest[i + 1]!;
  }
  return { op, filename, mode, options };
}

export function decodePacket(buf: Buffer): TftpPacket {
  if (buf.length < 4) fail('too-short', `packet of ${buf.length} bytes`);
  if (buf.length > MAX_PACKET) fail('too-long', `packet of ${buf.length} bytes`);
  const op = buf.readUInt16BE(0);
  switch (op) {
    case 1:
      return decodeRequest('RRQ', buf);
    case 2:
      return decodeRequest('WRQ', buf);
    case 3:
      return { op: 'DATA', block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case 4:
      if (buf.length !== 4) fail('trailing-bytes', 'ACK longer than 4 bytes');
      return { op: 'ACK', block: buf.readUInt16BE(2) };
    case 5: {
      const end = buf.indexOf(0, 4);
      if (end < 0) fail('unterminated-string', 'error message not NUL-terminated');
      return { op: 'ERROR', code: buf.readUInt16BE(2), message: buf.toString('latin1', 4, Math.min(end, 4 + MAX_STRING)) };
    }
    case 6: {
      const parts = readStrings(buf, 2);
      if (parts.length % 2 !== 0) fail('bad-option', 'option without a value');
      const options: Record<string, string> = Object.create(null) as Record<string, string>;
      for (let i = 0; i < parts.length; i += 2) options[parts[i]!.toLowerCase()] = parts[i + 1]!;
      return { op: 'OACK', options };
    }
    default:
      return fail('bad-opcode', `opcode ${op}`);
  }
}

const header = (op: number, n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(op, 0);
  b.writeUInt16BE(n & 0xffff, 2);
  return b;
};

const strings = (items: string[]): Buffer => Buffer.concat(items.flatMap((s) => [Buffer.from(s, 'latin1'), Buffer.alloc(1)]));

export function encodeData(block: number, data: Buffer): Buffer {
  return Buffer.concat([header(Opcode.DATA, block), data]);
}

export function encodeAck(block: number): Buffer {
  return header(Opcode.ACK, block);
}

export function encodeError(code: number, message: string): Buffer {
  return Buffer.concat([header(Opcode.ERROR, code), strings([message])]);
}

export function encodeOack(options: Record<string, string>): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(Opcode.OACK, 0);
  return Buffer.concat([b, strings(Object.entries(options).flat())]);
}

export function encodeRequest(op: 'RRQ' | 'WRQ', filename: string, mode: string, options: Record<string, string> = {}): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(op === 'RRQ' ? Opcode.RRQ : Opcode.WRQ, 0);
  return Buffer.concat([b, strings([filename, mode, ...Object.entries(options).flat()])]);
}
