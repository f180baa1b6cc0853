/**
 * What a DNS socket does with a message, shared by the server process and its UDP workers:
 * the allocation-free fast path for UDP, else decode → resolve → encode, forwarding and drops,
 * with counters per socket.
 */
import type dgram from 'node:dgram';
import { errorMessage } from '../lib/errors.js';
import type { Logger, RateLimitedLog } from '../lib/log.js';
import { AnswerCache } from './answers.js';
import type { Forwarder } from './forwarder.js';
import { handlePacket, type Transport } from './handler.js';
import type { ZoneView } from './records.js';

export type Counters = Record<string, number>;

export function newCounters(): Counters {
  return { queries_udp: 0, queries_tcp: 0, answered_fast: 0, answered: 0, truncated: 0, forwarded: 0, forward_failed: 0, dropped: 0 };
}

/** Adds `from` into `into`, key by key. */
export function addCounters(into: Counters, from: Readonly<Counters>): Counters {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
  return into;
}

/** The precomputed answers for the latest view, rebuilt only when the view changes. */
export class CacheHolder {
  private cache: AnswerCache;
  constructor(private readonly view: () => ZoneView) {
    this.cache = AnswerCache.for(view());
  }

  current(): AnswerCache {
    const v = this.view();
    if (this.cache.view !== v) this.cache = AnswerCache.for(v);
    return this.cache;
  }
}

export class Responder {
  readonly counters = newCounters();

  constructor(
    private readonly cache: CacheHolder,
    private readonly forwarder: Forwarder,
    private readonly log: Logger,
    private readonly drops: RateLimitedLog,
  ) {}

  private count(key: string): void {
    this.counters[key] = (this.counters[key] ?? 0) + 1;
  }

  /** Handles one message; `send` is called now or when the upstream answers. */
  handle(msg: Buffer, transport: Transport, from: string, send: (reply: Buffer) => void): void {
    let h;
    try {
      h = handlePacket(msg, this.cache.current(), transport);
    } catch (err) {
      h = { kind: 'drop' as const, reason: 'internal-error' };
      this.log.error('DNS handler failed', { error: errorMessage(err) });
    }
    if (h.kind === 'reply') {
      this.count(h.fast ? 'answered_fast' : 'answered');
      if ((h.data[2]! & 0x02) !== 0) this.count('truncated');
      send(h.data);
    } else if (h.kind === 'forward') {
      this.count('forwarded');
      void this.forwarder.forward(msg, h.query, transport).then(({ reply, ok }) => {
        if (!ok) this.count('forward_failed');
        send(reply);
      });
    } else {
      this.count('dropped');
      this.count(`dropped_${h.reason}`);
      this.drops.warn(`drop:${h.reason}`, 'dropped DNS packet', { reason: h.reason, from, transport, bytes: msg.length });
    }
  }

  /** The 'message' listener for a UDP socket. */
  udpListener(udp: dgram.Socket): (msg: Buffer, rinfo: dgram.RemoteInfo) => void {
    const counters = this.counters;
    const holder = this.cache;
    const log = this.log;
    return (msg, rinfo) => {
      counters.queries_udp!++;
      // The common case inline: no closure, no result object, no allocation, one send.
      let fast;
      const c = holder.current();
      try {
        fast = c.answerShared(msg);
      } catch (err) {
        log.error('DNS fast path failed', { error: errorMessage(err) });
      }
      if (fast) {
        counters.answered_fast!++;
        udp.send(fast, rinfo.port, rinfo.address);
        // The kernel took a copy unless the send was queued (socket buffer full): then the queued
        // buffer must stay as it is, and the next answer for this name gets a new one.
        if (udp.getSendQueueCount() !== 0) c.keepLastShared();
        return;
      }
      this.handle(msg, 'udp', rinfo.address, (reply) => udp.send(reply, rinfo.port, rinfo.address));
    };
  }
}
