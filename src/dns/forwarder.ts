/**
 * Forwards queries outside our zones to upstream servers, in order: each gets `timeoutMs`,
 * SERVFAIL/REFUSED or silence moves on to the next. UDP queries carry a fresh random ID on
 * one shared socket and answers are matched by ID, source and question, then get the
 * client's ID back. Over TCP each attempt uses its own connection.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import type { Logger } from '../lib/log.js';
import { encodeMessage } from './encode.js';
import { normalizeName, readName } from './names.js';
import { responseTo } from './resolver.js';
import { Rcode, type DnsMessage } from './types.js';

export interface Upstream { host: string; port: number }

export interface ForwarderOptions {
  upstreams: Upstream[];
  timeoutMs?: number;
  /** Queries in flight over UDP; beyond it new ones get SERVFAIL at once. */
  maxPending?: number;
  logger: Logger;
}

interface Pending {
  upstream: Upstream;
  question: string;
  resolve: (reply: Buffer | undefined) => void;
  timer: NodeJS.Timeout;
}

export class Forwarder {
  private readonly pending = new Map<number, Pending>();
  private readonly timeoutMs: number;
  private readonly maxPending: number;

  private constructor(private readonly opts: ForwarderOptions, private readonly socket: dgram.Socket) {
    this.timeoutMs = opts.timeoutMs ?? 1500;
    this.maxPending = opts.maxPending ?? 4096;
    socket.on('message', (msg, rinfo) => this.onReply(msg, rinfo));
    socket.on('error', (err) => opts.logger.warn('forwarder socket error', { error: err.message }));
  }

  static async create(opts: ForwarderOptions): Promise<Forwarder> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new Forwarder(opts, socket);
  }

  /** The upstream's answer with the client's ID, or SERVFAIL (REFUSED without upstreams). Never rejects. */
  async forward(wire: Buffer, query: DnsMessage, transport: 'udp' | 'tcp'): Promise<{ reply: Buffer; ok: boolean }> {
    if (this.opts.upstreams.length === 0) return { reply: encodeMessage(responseTo(query, Rcode.REFUSED)), ok: false };
    let fallback: Buffer | undefined;
    for (const upstream of this.opts.upstreams) {
      const reply = transport === 'udp' ? await this.viaUdp(wire, query, upstream) : await this.viaTcp(wire, upstream);
      if (!reply) continue;
      reply.writeUInt16BE(query.id, 0);
      const rcode = reply[3]! & 0x0f;
      if (rcode === Rcode.SERVFAIL || rcode === Rcode.REFUSED) {
        fallback = reply;
        continue;
      }
      return { reply, ok: true };
    }
    return { reply: fallback ?? encodeMessage(responseTo(query, Rcode.SERVFAIL)), ok: false };
  }

  close(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.resolve(undefined);
    }
    this.pending.clear();
    this.socket.close();
  }

  private viaUdp(wire: Buffer, query: DnsMessage, upstream: Upstream): Promise<Buffer | undefined> {
    if (this.pending.size >= this.maxPending) return Promise.resolve(undefined);
    let id = randomInt(0x10000);
    for (let i = 0; i < 16 && this.pending.has(id); i++) id = randomInt(0x10000);
    if (this.pending.has(id)) return Promise.resolve(undefined);
    const out = Buffer.from(wire);
    out.writeUInt16BE(id, 0);
    const q = query.questions[0]!;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, this.timeoutMs);
      this.pending.set(id, { upstream, question: `${normalizeName(q.name)}/${q.type}/${q.class}`, resolve, timer });
      this.socket.send(out, upstream.port, upstream.host, (err) => {
        if (!err) return;
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(undefined);
      });
    });
  }

  private onReply(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 12) return;
    const id = msg.readUInt16BE(0);
    const p = this.pending.get(id);
    if (!p || rinfo.port !== p.upstream.port || rinfo.address !== p.upstream.host) return;
    // An answer must be for the question we asked, or it may be spoofed.
    try {
      if (msg.readUInt16BE(4) !== 1) return;
      const { name, end } = readName(msg, 12);
      if (end + 4 > msg.length) return;
      if (`${normalizeName(name)}/${msg.readUInt16BE(end)}/${msg.readUInt16BE(end + 2)}` !== p.question) return;
    } catch {
      return;
    }
    clearTimeout(p.timer);
    this.pending.delete(id);
    p.resolve(msg);
  }

  private viaTcp(wire: Buffer, upstream: Upstream): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const sock = net.connect({ host: upstream.host, port: upstream.port });
      let buf = Buffer.alloc(0);
      const done = (reply: Buffer | undefined): void => {
        clearTimeout(timer);
        sock.destroy();
        resolve(reply);
      };
      const timer = setTimeout(() => done(undefined), this.timeoutMs);
      sock.on('error', () => done(undefined));
      sock.on('close', () => done(undefined));
      sock.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(Buffer.from(buf.subarray(2, 2 + buf.readUInt16BE(0))));
      });
      const len = Buffer.alloc(2);
      len.writeUInt16BE(wire.length);
      sock.write(Buffer.concat([len, wire]));
    });
  }
}
