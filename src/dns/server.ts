/** The DNS daemon's sockets: UDP and TCP on one port, answering from the zone and forwarding the rest. */
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import { errorMessage } from '../lib/errors.js';
import { RateLimitedLog, type Logger } from '../lib/log.js';
import { AnswerCache } from './answers.js';
import { Forwarder, type Upstream } from './forwarder.js';
import { handlePacket, type Transport } from './handler.js';
import type { Zone } from './records.js';

export interface DnsServerOptions {
  zone: Zone;
  upstreams: Upstream[];
  /** Default 53; 0 picks a free port, the same for UDP and TCP. */
  port?: number;
  bindAddress?: string;
  logger: Logger;
  forwardTimeoutMs?: number;
  tcpIdleMs?: number;
  maxTcpConnections?: number;
}

export interface DnsServer {
  stats(): Record<string, number>;
  close(): Promise<void>;
  udpPort: number;
  tcpPort: number;
}

export async function startDnsServer(opts: DnsServerOptions): Promise<DnsServer> {
  const log = opts.logger;
  const drops = new RateLimitedLog(log);
  const counters: Record<string, number> = {
    queries_udp: 0, queries_tcp: 0, answered_fast: 0, answered: 0, truncated: 0, forwarded: 0, forward_failed: 0, dropped: 0,
  };
  const count = (key: string): void => {
    counters[key] = (counters[key] ?? 0) + 1;
  };
  let cache = AnswerCache.build(opts.zone.view());
  const current = (): AnswerCache => {
    const view = opts.zone.view();
    if (cache.view !== view) cache = AnswerCache.build(view);
    return cache;
  };
  const unsubscribe = opts.zone.onReplace(() => void current());
  const forwarder = await Forwarder.create({ upstreams: opts.upstreams, timeoutMs: opts.forwardTimeoutMs, logger: log });

  /** Handles one message; `send` is called now or when the upstream answers. */
  const onMessage = (msg: Buffer, transport: Transport, from: string, send: (reply: Buffer) => void): void => {
    let h;
    try {
      h = handlePacket(msg, current(), transport);
    } catch (err) {
      h = { kind: 'drop' as const, reason: 'internal-error' };
      log.error('DNS handler failed', { error: errorMessage(err) });
    }
    if (h.kind === 'reply') {
      count(h.fast ? 'answered_fast' : 'answered');
      if ((h.data[2]! & 0x02) !== 0) count('truncated');
      send(h.data);
    } else if (h.kind === 'forward') {
      count('forwarded');
      void forwarder.forward(msg, h.query, transport).then(({ reply, ok }) => {
        if (!ok) count('forward_failed');
        send(reply);
      });
    } else {
      count('dropped');
      count(`dropped_${h.reason}`);
      drops.warn(`drop:${h.reason}`, 'dropped DNS packet', { reason: h.reason, from, transport, bytes: msg.length });
    }
  };

  const { udp, tcp, port } = await bindBoth(opts.port ?? 53, opts.bindAddress ?? '0.0.0.0');
  udp.on('message', (msg, rinfo) => {
    counters.queries_udp!++;
    // The common case inline: no closure, no result object, no allocation, one send.
    let fast;
    const c = current();
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
    onMessage(msg, 'udp', rinfo.address, (reply) => udp.send(reply, rinfo.port, rinfo.address));
  });
  udp.on('error', (err) => log.warn('DNS UDP socket error', { error: err.message }));

  const conns = new Set<net.Socket>();
  tcp.maxConnections = opts.maxTcpConnections ?? 256;
  tcp.on('connection', (sock) => {
    conns.add(sock);
    sock.on('close', () => conns.delete(sock));
    sock.on('error', () => sock.destroy());
    sock.setTimeout(opts.tcpIdleMs ?? 10_000, () => sock.destroy());
    const from = sock.remoteAddress ?? '?';
    let buf: Buffer = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      // Several queries may arrive in one segment, or one across several.
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (len < 12) {
          count('dropped');
          count('dropped_tcp-length');
          sock.destroy();
          return;
        }
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        counters.queries_tcp!++;
        onMessage(msg, 'tcp', from, (reply) => {
          if (sock.destroyed) return;
          const head = Buffer.allocUnsafe(2);
          head.writeUInt16BE(reply.length);
          sock.write(Buffer.concat([head, reply]));
        });
      }
    });
  });
  log.info('DNS server listening', { port, bindAddress: opts.bindAddress ?? '0.0.0.0', records: cache.size, upstreams: opts.upstreams.length });

  return {
    udpPort: port,
    tcpPort: port,
    stats: () => ({ ...counters, precomputed: cache.size }),
    close: async () => {
      unsubscribe();
      forwarder.close();
      for (const c of conns) c.destroy();
      await Promise.all([
        new Promise<void>((r) => udp.close(() => r())),
        new Promise<void>((r) => tcp.close(() => r())),
      ]);
    },
  };
}

/** Binds UDP then TCP on the same port; with port 0, retries until a free port is free for both. */
async function bindBoth(port: number, address: string): Promise<{ udp: dgram.Socket; tcp: net.Server; port: number }> {
  for (let attempt = 0; ; attempt++) {
    // Replies go to the literal address a query came from: resolve it synchronously rather than
    // through dns.lookup, which costs a nextTick on every send.
    const udp = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20, lookup: literalLookup });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, address, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    const actual = udp.address().port;
    const tcp = net.createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(actual, address, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      return { udp, tcp, port: actual };
    } catch (err) {
      udp.close();
      if (port !== 0 || attempt >= 20) throw err;
    }
  }
}

/** A dgram `lookup` that answers IPv4 literals (every reply address) at once; names go to dns.lookup as before. */
function literalLookup(address: string, opts: dns.LookupOneOptions, cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  if (net.isIPv4(address)) cb(null, address, 4);
  else dns.lookup(address, opts, cb);
}
