/** One packet in, one decision out: reply bytes, forward, or drop with a reason. No sockets. */
import type { AnswerCache } from './answers.js';
import { DnsDecodeError, decodeMessage, encodeMessage } from './codec.js';
import { resolve } from './resolver.js';
import { CLASSIC_UDP_SIZE, EDNS_UDP_SIZE, type DnsMessage } from './types.js';

export type Transport = 'udp' | 'tcp';

export type Handled =
  | { kind: 'reply'; data: Buffer; fast: boolean }
  | { kind: 'forward'; query: DnsMessage }
  | { kind: 'drop'; reason: string };

/** The largest UDP response a client accepts: 512 without EDNS, else its size capped at ours. */
export function udpLimit(query: DnsMessage): number {
  if (!query.edns) return CLASSIC_UDP_SIZE;
  return Math.min(Math.max(query.edns.udpSize, CLASSIC_UDP_SIZE), EDNS_UDP_SIZE);
}

export function handlePacket(msg: Buffer, cache: AnswerCache, transport: Transport): Handled {
  const fast = cache.answer(msg, transport === 'udp');
  if (fast) return { kind: 'reply', data: fast, fast: true };
  let query: DnsMessage;
  try {
    query = decodeMessage(msg);
  } catch (err) {
    if (err instanceof DnsDecodeError) return { kind: 'drop', reason: err.reason };
    throw err;
  }
  const r = resolve(query, cache.view);
  if (r.kind === 'drop') return r;
  if (r.kind === 'forward') return { kind: 'forward', query };
  const maxSize = transport === 'udp' ? udpLimit(query) : 65535;
  return { kind: 'reply', data: encodeMessage(r.response, { maxSize }), fast: false };
}
