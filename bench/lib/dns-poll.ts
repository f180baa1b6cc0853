// One UDP socket that asks DNS servers the same question again and again until the expected record
// comes back: the probe of bench/dns-registration.ts, shared by every server it compares.
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { decodeMessage, encodeMessage } from '../../src/dns/codec.js';
import { RClass, type DnsMessage } from '../../src/dns/types.js';
import { sleep } from '../../src/lib/time.js';

export interface DnsTarget {
  host: string;
  port: number;
}

export interface PollResult {
  /** performance.now() ms from t0 to the arrival of the first answer holding the record; undefined on timeout. */
  ms: number | undefined;
  queries: number;
  /** Queries with no answer within perQueryMs (asked again at once). */
  lost: number;
}

export interface PollOptions {
  /** Pause after an answer without the record (0: ask again at once). */
  intervalMs: number;
  /** Give up this long after t0. */
  timeoutMs: number;
  /** An unanswered query is given up (and asked again) after this long. */
  perQueryMs?: number;
}

interface Pending {
  resolve: (a: { msg: DnsMessage; at: number } | undefined) => void;
  timer: NodeJS.Timeout;
}

export class DnsPoller {
  private nextId = Math.floor(Math.random() * 0xffff);
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  private constructor(private readonly sock: dgram.Socket) {
    sock.on('message', (buf) => {
      const at = performance.now();
      let msg: DnsMessage;
      try {
        msg = decodeMessage(buf);
      } catch {
        return; // not an answer we can read: the query times out and is asked again
      }
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      p.resolve({ msg, at });
    });
  }

  static async open(): Promise<DnsPoller> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, '127.0.0.1', () => resolve());
    });
    return new DnsPoller(sock);
  }

  /** One query; undefined when no answer came within timeoutMs. */
  query(to: DnsTarget, name: string, type: number, timeoutMs: number): Promise<{ msg: DnsMessage; at: number } | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    let id = (this.nextId = (this.nextId + 1) & 0xffff);
    // 65,536 ids and at most a handful in flight: skip any still pending.
    while (this.pending.has(id)) id = this.nextId = (this.nextId + 1) & 0xffff;
    const buf = encodeMessage({
      id, qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, ad: false, cd: false, rcode: 0,
      questions: [{ name, type, class: RClass.IN }], answers: [], authority: [], additional: [],
    });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.pending.set(id, { resolve, timer });
      this.sock.send(buf, to.port, to.host);
    });
  }

  /** Asks until an answer holds a record of `type` whose data is `expected` (case-insensitive), or t0 + timeoutMs. */
  async until(to: DnsTarget, name: string, type: number, expected: string, t0: number, o: PollOptions): Promise<PollResult> {
    const want = expected.toLowerCase();
    const deadline = t0 + o.timeoutMs;
    let queries = 0;
    let lost = 0;
    for (;;) {
      const left = deadline - performance.now();
      // Closed (cleanup after an interrupt): give up like a timeout instead of sending on a closed socket.
      if (left <= 0 || this.closed) return { ms: undefined, queries, lost };
      queries++;
      const got = await this.query(to, name, type, Math.max(1, Math.min(o.perQueryMs ?? 100, left)));
      if (!got) {
        lost++;
        continue;
      }
      if (got.msg.answers.some((r) => r.type === type && typeof r.data === 'string' && r.data.toLowerCase() === want)) {
        return { ms: got.at - t0, queries, lost };
      }
      if (o.intervalMs > 0) await sleep(o.intervalMs);
      else await new Promise((r) => setImmediate(r));
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.resolve(undefined);
    }
    this.pending.clear();
    this.sock.close();
  }
}
