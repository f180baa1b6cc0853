/**
 * Precomputed responses per (name, type), built once per zone snapshot. A plain query for a
 * known name is answered by copying bytes and patching ID, flags, question case and OPT,
 * without decoding or allocating beyond the reply itself. Anything unusual returns undefined
 * and takes the full decode → resolve → encode path, which produced these bytes to begin with.
 */
import { encodeMessage } from './encode.js';
import { nameToWire } from './names.js';
import type { ZoneView } from './records.js';
import { resolve } from './resolver.js';
import { CLASSIC_UDP_SIZE, EDNS_UDP_SIZE, RClass, RType, type DnsMessage } from './types.js';

const OPT_LEN = 11;

/** One precomputed answer; `name` is the lower-case wire name, `next` chains hash collisions. */
interface Slot {
  name: Buffer;
  type: number;
  ready: Buffer;
  next: Slot | undefined;
  /** answerShared()'s reusable replies, without and with OPT. */
  plain?: Buffer | undefined;
  withOpt?: Buffer | undefined;
}

/**
 * FNV-1a over the wire name folded to lower case (ASCII only, as DNS compares names), then the
 * type: the lookup key is hashed from the packet's bytes without building a string.
 */
function hashQuestion(buf: Uint8Array, start: number, end: number, type: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    h = Math.imul(h ^ (b >= 0x41 && b <= 0x5a ? b | 0x20 : b), 0x01000193);
  }
  return Math.imul(h ^ type, 0x01000193) >>> 0;
}

const built = new WeakMap<ZoneView, AnswerCache>();

export class AnswerCache {
  private constructor(
    readonly view: ZoneView,
    private readonly table: (Slot | undefined)[],
    readonly size: number,
  ) {}

  /**
   * The answers of one view, built once per process however many servers answer from it (the agent has a socket
   * per address; building per socket tripled the delay before a new node resolved). Sharing is safe: a server
   * patches a shared reply, sends it and checks the send queue without yielding in between.
   */
  static for(view: ZoneView): AnswerCache {
    let cache = built.get(view);
    if (cache === undefined) {
      cache = AnswerCache.build(view);
      built.set(view, cache);
    }
    return cache;
  }

  static build(view: ZoneView): AnswerCache {
    const slots: Slot[] = [];
    for (const [name, types] of view.entries()) {
      const wire = nameToWire(name);
      // Lookups fold only ASCII case; names with other bytes (or escaped capitals) take the full path.
      if (wire.some((b) => b >= 0x80 || (b >= 0x41 && b <= 0x5a))) continue;
      for (const type of new Set([...types.keys(), RType.A, RType.AAAA])) {
        const r = resolve(plainQuery(name, type), view);
        if (r.kind === 'answer') slots.push({ name: wire, type, ready: encodeMessage(r.response), next: undefined });
      }
    }
    let cap = 16;
    while (cap < slots.length * 2) cap *= 2;
    const table = new Array<Slot | undefined>(cap).fill(undefined);
    for (const s of slots) {
      const i = hashQuestion(s.name, 0, s.name.length, s.type) & (cap - 1);
      s.next = table[i];
      table[i] = s;
    }
    return new AnswerCache(view, table, slots.length);
  }

  private find(msg: Buffer, nameEnd: number, type: number): Slot | undefined {
    const len = nameEnd - 12;
    let s = this.table[hashQuestion(msg, 12, nameEnd, type) & (this.table.length - 1)];
    for (; s; s = s.next) {
      if (s.type !== type || s.name.length !== len) continue;
      const name = s.name;
      let i = 0;
      for (; i < len; i++) {
        const b = msg[12 + i]!;
        if ((b >= 0x41 && b <= 0x5a ? b | 0x20 : b) !== name[i]) break;
      }
      if (i === len) return s;
    }
    return undefined;
  }

  /** A ready response, or undefined for the slow path; `udp` limits the size to what the client accepts. */
  answer(msg: Buffer, udp: boolean): Buffer | undefined {
    const s = this.match(msg, udp);
    if (!s) return undefined;
    const out = replyBase(s.ready, this.mOpt);
    patch(out, s.ready, msg, this.mNameEnd, this.mOpt, this.mDo);
    return out;
  }

  /**
   * Like answer() for UDP, but the bytes are the cache's own: the same buffer comes back, repatched,
   * for the next query of this name and type. Use it only when the reply is consumed at once (a send
   * that completed), and call keepLastShared() when it was not (a send left queued).
   */
  answerShared(msg: Buffer): Buffer | undefined {
    const s = this.match(msg, true);
    if (!s) return undefined;
    const opt = this.mOpt;
    let out = opt ? s.withOpt : s.plain;
    if (!out) {
      out = replyBase(s.ready, opt);
      if (opt) s.withOpt = out;
      else s.plain = out;
    }
    patch(out, s.ready, msg, this.mNameEnd, opt, this.mDo);
    this.lastSlot = s;
    this.lastOpt = opt;
    return out;
  }

  /** The last answerShared() buffer is still in use: its slot gets a new one next time. */
  keepLastShared(): void {
    const s = this.lastSlot;
    if (!s) return;
    if (this.lastOpt) s.withOpt = undefined;
    else s.plain = undefined;
    this.lastSlot = undefined;
  }

  // What match() found besides the slot, kept in fields so the hot path allocates no result object.
  private mNameEnd = 0;
  private mOpt = false;
  private mDo = false;
  private lastSlot: Slot | undefined;
  private lastOpt = false;

  /** Validates a plain query and finds its precomputed answer; undefined sends it down the full path. */
  private match(msg: Buffer, udp: boolean): Slot | undefined {
    const len = msg.length;
    if (len < 17 || (msg[2]! & 0xf8) !== 0) return undefined;
    if (msg[4] !== 0 || msg[5] !== 1 || msg[6] !== 0 || msg[7] !== 0 || msg[8] !== 0 || msg[9] !== 0 || msg[10] !== 0) return undefined;
    const ar = msg[11]!;
    if (ar > 1) return undefined;
    let p = 12;
    for (;;) {
      const l = msg[p]!;
      if (l === 0) break;
      if (l > 63) return undefined;
      p += l + 1;
      if (p - 12 > 254 || p >= len) return undefined;
    }
    const nameEnd = p + 1;
    if (nameEnd + 4 > len || msg[nameEnd + 2] !== 0 || msg[nameEnd + 3] !== RClass.IN) return undefined;
    const type = (msg[nameEnd]! << 8) | msg[nameEnd + 1]!;
    p = nameEnd + 4;
    let limit = CLASSIC_UDP_SIZE;
    let dnssecOk = false;
    if (ar === 1) {
      if (p + OPT_LEN > len || msg[p] !== 0 || msg[p + 1] !== 0 || msg[p + 2] !== RType.OPT || msg[p + 6] !== 0) return undefined;
      limit = Math.min(Math.max((msg[p + 3]! << 8) | msg[p + 4]!, CLASSIC_UDP_SIZE), EDNS_UDP_SIZE);
      dnssecOk = (msg[p + 7]! & 0x80) !== 0;
      const end = p + OPT_LEN + ((msg[p + 9]! << 8) | msg[p + 10]!);
      if (end !== len) return undefined;
      // Options (cookies, padding) are ignored, but they must be well formed as the decoder demands.
      for (let o = p + OPT_LEN; o < end; ) {
        if (o + 4 > end) return undefined;
        o += 4 + ((msg[o + 2]! << 8) | msg[o + 3]!);
        if (o > end) return undefined;
      }
    } else if (p !== len) return undefined;
    const s = this.find(msg, nameEnd, type);
    if (!s) return undefined;
    if (udp && s.ready.length + (ar === 1 ? OPT_LEN : 0) > limit) return undefined;
    this.mNameEnd = nameEnd;
    this.mOpt = ar === 1;
    this.mDo = dnssecOk;
    return s;
  }
}

/** The precomputed answer, with our OPT record appended when the query had one. */
function replyBase(ready: Buffer, opt: boolean): Buffer {
  if (!opt) return Buffer.from(ready);
  const out = Buffer.alloc(ready.length + OPT_LEN);
  out.set(ready);
  const arCount = ((out[10]! << 8) | out[11]!) + 1;
  out[10] = arCount >> 8;
  out[11] = arCount & 0xff;
  const o = ready.length;
  out[o + 2] = RType.OPT;
  out[o + 3] = EDNS_UDP_SIZE >> 8;
  out[o + 4] = EDNS_UDP_SIZE & 0xff;
  return out;
}

/** The per-query bytes: ID, RD and CD echoed, the question's case, the DO bit. */
function patch(out: Buffer, ready: Buffer, msg: Buffer, nameEnd: number, opt: boolean, dnssecOk: boolean): void {
  out[0] = msg[0]!;
  out[1] = msg[1]!;
  out[2] = (ready[2]! & 0xfe) | (msg[2]! & 0x01);
  out[3] = (ready[3]! & 0xef) | (msg[3]! & 0x10);
  for (let i = 12; i < nameEnd; i++) out[i] = msg[i]!;
  if (opt) out[ready.length + 7] = dnssecOk ? 0x80 : 0;
}

function plainQuery(name: string, type: number): DnsMessage {
  return {
    id: 0, qr: false, opcode: 0, aa: false, tc: false, rd: false, ra: false, ad: false, cd: false, rcode: 0,
    questions: [{ name, type, class: RClass.IN }], answers: [], authority: [], additional: [],
  };
}
