/** What the server does with a datagram on its well-known port: pure, never throws for bad input. */
import { decodePacket, TftpDecodeError, TftpErrorCode } from './tftp-codec.js';
import { splitRequestPath } from './tftp-fs.js';

export type RequestDecision =
  | { kind: 'read'; filename: string; mode: string; options: Record<string, string> }
  | { kind: 'refuse'; code: number; message: string; counter: string }
  | { kind: 'drop'; reason: string };

export function classifyRequest(buf: Buffer): RequestDecision {
  let packet;
  try {
    packet = decodePacket(buf);
  } catch (err) {
    if (err instanceof TftpDecodeError) return { kind: 'drop', reason: err.reason };
    throw err;
  }
  switch (packet.op) {
    case 'WRQ':
      return { kind: 'refuse', code: TftpErrorCode.ACCESS_VIOLATION, message: 'read-only server', counter: 'wrq-refused' };
    case 'RRQ':
      if (packet.mode === 'mail') {
        return { kind: 'refuse', code: TftpErrorCode.ILLEGAL_OPERATION, message: 'mail mode not supported', counter: 'mode-refused' };
      }
      if (!splitRequestPath(packet.filename)) {
        return { kind: 'refuse', code: TftpErrorCode.ACCESS_VIOLATION, message: 'access violation', counter: 'path-refused' };
      }
      return { kind: 'read', filename: packet.filename, mode: packet.mode, options: packet.options };
    default:
      // DATA, ACK, ERROR and OACK belong on a transfer's own port, never on the server port.
      return { kind: 'drop', reason: 'unexpected-opcode' };
  }
}
