/** The DNS daemon's sockets: UDP and TCP on one port, answering from the zone and forwarding the rest. */
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import { RateLimitedLog, type Logger } from '../lib/log.js';
import { Forwarder, type Upstream } from './forwarder.js';
import type { Zone } from './records.js';
import { CacheHolder, Responder, addCounters } from './responder.js';
import { setReceiving } from './udp-internals.js';
import { DnsWorkerPool } from './workers.js';

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
  /**
   * UDP worker processes that read the UDP socket alongside this process (see workers.ts): a count
   * starts a pool of this server's own, a pool is shared with other servers (its owner closes it).
   * Default 0: this process answers everything. The pool must serve the same zone. TCP stays here.
   */
  udpWorkers?: number | DnsWorkerPool;
  /**
   * With workers, this process keeps reading the UDP socket too (default false: it reads only while no
   * worker serves it, leaving its event loop to TCP and the agent; bench/dns.ts measured that faster).
   */
  udpParentReads?: boolean;
  /** Stats push interval of an own worker pool (default 1000 ms). */
  workerStatsIntervalMs?: number;
}

export interface DnsServer {
  stats(): Record<string, number>;
  close(): Promise<void>;
  udpPort: number;
  tcpPort: number;
  /** The worker pool reading this server's UDP socket, if any. */
  workers?: DnsWorkerPool;
}

export async function startDnsServer(opts: DnsServerOptions): Promise<DnsServer> {
  const log = opts.logger;
  const drops = new RateLimitedLog(log);
  const cache = new CacheHolder(() => opts.zone.view());
  const unsubscribe = opts.zone.onReplace(() => void cache.current());
  const forwarder = await Forwarder.create({ upstreams: opts.upstreams, timeoutMs: opts.forwardTimeoutMs, logger: log });
  const responder = new Responder(cache, forwarder, log, drops);
  const counters = responder.counters;

  const address = opts.bindAddress ?? '0.0.0.0';
  const { udp, tcp, port } = await bindBoth(opts.port ?? 53, address);
  udp.on('message', responder.udpListener(udp));
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
          counters.dropped!++;
          counters['dropped_tcp-length'] = (counters['dropped_tcp-length'] ?? 0) + 1;
          sock.destroy();
          return;
        }
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        counters.queries_tcp!++;
        responder.handle(msg, 'tcp', from, (reply) => {
          if (sock.destroyed) return;
          const head = Buffer.allocUnsafe(2);
          head.writeUInt16BE(reply.length);
          sock.write(Buffer.concat([head, reply]));
        });
      }
    });
  });

  const closeSockets = async (): Promise<void> => {
    unsubscribe();
    forwarder.close();
    for (const c of conns) c.destroy();
    await Promise.all([
      new Promise<void>((r) => udp.close(() => r())),
      new Promise<void>((r) => tcp.close(() => r())),
    ]);
  };

  let pool: DnsWorkerPool | undefined;
  let stopFollowing = (): void => undefined;
  let closing: Promise<void> | undefined;
  const ownPool = typeof opts.udpWorkers === 'number' && opts.udpWorkers > 0;
  const socketId = `udp:${address}:${port}`;
  try {
    if (ownPool) {
      pool = await DnsWorkerPool.start({
        count: opts.udpWorkers as number, zone: opts.zone, upstreams: opts.upstreams, forwardTimeoutMs: opts.forwardTimeoutMs,
        logger: log, statsIntervalMs: opts.workerStatsIntervalMs,
      });
    } else if (opts.udpWorkers instanceof DnsWorkerPool) pool = opts.udpWorkers;
    await pool?.attach(socketId, udp);
    if (pool && !opts.udpParentReads) {
      // Workers read the socket; this process reads it only while none does (all restarting).
      const p = pool;
      const follow = (): void => {
        if (!setReceiving(udp, p.serving(socketId) === 0)) p.offChange(follow);
      };
      p.onChange(follow);
      follow();
      stopFollowing = () => p.offChange(follow);
    }
  } catch (err) {
    if (ownPool) await pool?.close();
    await closeSockets();
    throw err;
  }
  log.info('DNS server listening', { port, bindAddress: address, records: cache.current().size, upstreams: opts.upstreams.length, udpWorkers: pool?.pids().length ?? 0 });

  return {
    udpPort: port,
    tcpPort: port,
    workers: pool,
    stats: () => {
      const out: Record<string, number> = { ...counters };
      if (pool) Object.assign(addCounters(out, pool.stats(socketId)), pool.info());
      out.precomputed = cache.current().size;
      return out;
    },
    // Idempotent: a second close waits for the first.
    close: () => (closing ??= (async () => {
      stopFollowing();
      // Workers let go of the UDP socket first, so the address is free once this resolves.
      if (pool && ownPool) await pool.close();
      else await pool?.detach(socketId);
      await closeSockets();
    })()),
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
