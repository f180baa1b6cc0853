/**
 * A pool of UDP worker processes for the DNS server. Node 20 has no SO_REUSEPORT, so the server
 * binds each UDP socket once and hands the bound socket to every worker over the fork IPC channel;
 * all processes then read the same socket and the kernel gives each datagram to one of them.
 * Workers answer from their own copy of the zone, sent at start and on every zone.replace.
 * One pool can serve several sockets (one per bind address), so N workers cost N processes in all.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { backoffMs, monoMs } from '../lib/time.js';
import type { Upstream } from './forwarder.js';
import type { Zone } from './records.js';
import { addCounters, type Counters } from './responder.js';
import { tagOf, type FromWorker, type ToWorker } from './worker-protocol.js';

export interface DnsWorkerPoolOptions {
  count: number;
  zone: Zone;
  upstreams: Upstream[];
  forwardTimeoutMs?: number;
  logger: Logger;
  /** How often a worker pushes its counters, when they changed (default 1000 ms). */
  statsIntervalMs?: number;
  /** Restart delay: exponential from `restartBaseMs` (100) up to `restartCapMs` (5000). */
  restartBaseMs?: number;
  restartCapMs?: number;
  /** A worker slot is given up after this many exits in a row, each within 30 s of its start (default 10). */
  maxRestarts?: number;
  /** Bound on a worker's start and on every acknowledgement waited for (default 10 s). */
  timeoutMs?: number;
}

interface Slot {
  index: number;
  child: ChildProcess | undefined;
  ready: boolean;
  /** The newest zone generation this worker acknowledged. */
  gen: number;
  startedAt: number;
  failures: number;
  stats: Record<string, Counters>;
  statsSeq: number;
  attached: Set<string>;
  /** Sockets sent to the worker and not yet confirmed either way: it may hold them. */
  inFlight: Set<string>;
  timer: NodeJS.Timeout | undefined;
}

const HERE = import.meta.url;
// tsc emits udp-worker.js beside workers.js in dist/; under tsx (tests, bench) the sources run as .ts.
const ENTRY = fileURLToPath(new URL(HERE.endsWith('.ts') ? './udp-worker.ts' : './udp-worker.js', HERE));
const QUICK_EXIT_MS = 30_000;

/** The parent's loader flags (tsx), without test-runner or inspector flags a worker must not inherit. */
function workerExecArgv(): string[] {
  const out: string[] = [];
  const a = process.execArgv;
  for (let i = 0; i < a.length; i++) {
    const arg = a[i]!;
    if (['--import', '--require', '-r', '--loader', '--experimental-loader'].includes(arg) && i + 1 < a.length) out.push(arg, a[++i]!);
    else if (/^--(import|require|loader|experimental-loader)=/.test(arg) || arg === '--enable-source-maps') out.push(arg);
  }
  if (ENTRY.endsWith('.ts') && !out.some((x) => x.includes('tsx'))) out.push('--import', 'tsx');
  // A worker holds one zone and a few buffers: keep its heap small so idle memory stays low.
  out.push('--max-old-space-size=96');
  return out;
}

export class DnsWorkerPool {
  private readonly slots: Slot[] = [];
  private readonly sockets = new Map<string, dgram.Socket>();
  private readonly retired: Record<string, Counters> = {};
  private readonly waiters = new Set<() => void>();
  private readonly listeners = new Set<() => void>();
  private readonly exits = new Map<number, Promise<void>>();
  private gen = 0;
  private restarts = 0;
  private closing = false;
  private readonly unsubscribe: () => void;
  private readonly timeoutMs: number;

  private constructor(private readonly opts: DnsWorkerPoolOptions) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.unsubscribe = opts.zone.onReplace(() => this.sendZone());
    for (let i = 0; i < opts.count; i++) {
      this.slots.push({ index: i, child: undefined, ready: false, gen: -1, startedAt: 0, failures: 0, stats: {}, statsSeq: 0, attached: new Set(), inFlight: new Set(), timer: undefined });
    }
  }

  /** Forks `count` workers and resolves when every one has built the zone. */
  static async start(opts: DnsWorkerPoolOptions): Promise<DnsWorkerPool> {
    if (!Number.isInteger(opts.count) || opts.count < 1 || opts.count > 64) throw new Error(`DNS UDP workers: count ${opts.count} is not 1..64`);
    const pool = new DnsWorkerPool(opts);
    try {
      for (const s of pool.slots) pool.spawn(s);
      await pool.until('DNS workers ready', () => pool.slots.every((s) => s.ready));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /** Hands a bound UDP socket to every worker; resolves when each serves it. */
  async attach(id: string, udp: dgram.Socket): Promise<void> {
    if (this.closing) throw new Error('DNS worker pool is closed');
    if (this.sockets.has(id)) throw new Error(`DNS worker pool already serves ${id}`);
    this.sockets.set(id, udp);
    for (const s of this.slots) if (s.ready) this.sendSocket(s, id, udp);
    await this.until(`DNS workers serving ${id}`, () => this.live().every((s) => s.attached.has(id)));
  }

  /**
   * Workers close their copy of the socket; resolves once none holds it, so the address can be bound
   * again. A worker that does not confirm in time is killed (and restarted without it).
   */
  async detach(id: string): Promise<void> {
    if (!this.sockets.delete(id)) return;
    for (const s of this.live()) this.post(s, { t: 'detach', id });
    const holds = (s: Slot): boolean => s.child !== undefined && (s.attached.has(id) || s.inFlight.has(id));
    try {
      await this.until(`DNS workers releasing ${id}`, () => !this.slots.some(holds));
    } catch (err) {
      const killed: Promise<void>[] = [];
      for (const s of this.slots.filter(holds)) {
        this.opts.logger.warn('DNS worker did not release a socket: killing it', { pid: s.child?.pid, socket: id, error: errorMessage(err) });
        const exit = s.child?.pid !== undefined ? this.exits.get(s.child.pid) : undefined;
        if (exit) killed.push(exit);
        s.child?.kill('SIGKILL');
      }
      await Promise.all(killed);
    }
  }

  /** Counters of one socket summed over the workers, including workers that have exited. */
  stats(id: string): Counters {
    const sum: Counters = { ...this.retired[id] };
    for (const s of this.slots) {
      const c = s.stats[id];
      if (c) addCounters(sum, c);
    }
    return sum;
  }

  /** Pool-wide figures for the server's stats. */
  info(): { udp_workers: number; udp_worker_restarts: number } {
    return { udp_workers: this.live().length, udp_worker_restarts: this.restarts };
  }

  /** Each worker's state and its last reported counters for socket `id`. */
  perWorker(id: string): { pid: number; ready: boolean; gen: number; counters: Counters }[] {
    return this.slots.flatMap((s) => (s.child?.pid !== undefined ? [{ pid: s.child.pid, ready: s.ready, gen: s.gen, counters: { ...s.stats[id] } }] : []));
  }

  /** How many workers serve socket `id` now. */
  serving(id: string): number {
    return this.slots.filter((s) => s.child && s.attached.has(id)).length;
  }

  /** `fn` runs whenever a worker starts or stops serving a socket. */
  onChange(fn: () => void): void {
    this.listeners.add(fn);
  }

  offChange(fn: () => void): void {
    this.listeners.delete(fn);
  }

  pids(): number[] {
    return this.slots.flatMap((s) => (s.child?.pid !== undefined ? [s.child.pid] : []));
  }

  /** Asks every ready worker for its counters now, for a stats() that includes the last queries. */
  async refreshStats(): Promise<void> {
    const want = this.live().map((s) => [s, s.statsSeq] as const);
    for (const [s] of want) this.post(s, { t: 'stats?' });
    await this.until('DNS worker stats', () => want.every(([s, seq]) => s.statsSeq > seq || !s.ready));
  }

  /** Resolves when every ready worker answers from the zone as it is now. */
  async synced(): Promise<void> {
    const gen = this.gen;
    await this.until('DNS workers on the current zone', () => this.live().every((s) => s.gen >= gen));
  }

  /** Stops every worker by PID and waits for each to exit (SIGKILL after 3 s). */
  async close(): Promise<void> {
    this.closing = true;
    this.unsubscribe();
    for (const s of this.slots) clearTimeout(s.timer);
    for (const s of this.slots) {
      const c = s.child;
      if (!c?.pid || c.exitCode !== null || c.signalCode !== null) continue;
      c.kill('SIGTERM');
      const kill = setTimeout(() => c.kill('SIGKILL'), 3000);
      void this.exits.get(c.pid)?.then(() => clearTimeout(kill));
    }
    await Promise.all([...this.exits.values()]);
    this.sockets.clear();
  }

  private live(): Slot[] {
    return this.slots.filter((s) => s.ready && s.child !== undefined);
  }

  private post(s: Slot, m: ToWorker): void {
    const c = s.child;
    if (!c?.connected) return;
    // A worker that died meanwhile is handled by its exit event.
    c.send(m, (err) => {
      if (err) this.opts.logger.debug('DNS worker message not delivered', { pid: c.pid, tag: m.t, error: err.message });
    });
  }

  private sendSocket(s: Slot, id: string, udp: dgram.Socket): void {
    const c = s.child;
    if (!c?.connected) return;
    const m: ToWorker = { t: 'socket', id };
    s.inFlight.add(id);
    c.send(m, udp, (err) => {
      if (!err) return;
      this.opts.logger.debug('DNS worker socket not delivered', { pid: c.pid, socket: id, error: err.message });
      if (s.child !== c) return;
      s.inFlight.delete(id);
      for (const w of this.waiters) w();
    });
  }

  private sendZone(): void {
    this.gen++;
    const zone = this.opts.zone.spec();
    for (const s of this.slots) if (s.child) this.post(s, { t: 'zone', gen: this.gen, zone });
  }

  private spawn(s: Slot): void {
    s.timer = undefined;
    if (this.closing) return;
    const child = fork(ENTRY, [], { execArgv: workerExecArgv(), stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    s.child = child;
    s.ready = false;
    s.gen = -1;
    s.stats = {};
    s.statsSeq = 0;
    s.attached = new Set();
    s.inFlight = new Set();
    s.startedAt = monoMs();
    const pid = child.pid;
    if (pid === undefined) {
      // fork failed (its 'error' event follows): treat as an exit.
      child.once('error', (err) => this.onExit(s, child, null, null, err.message));
      return;
    }
    this.exits.set(pid, new Promise((resolve) => child.once('exit', (code, signal) => {
      this.exits.delete(pid);
      this.onExit(s, child, code, signal);
      resolve();
    })));
    child.on('error', (err) => this.opts.logger.warn('DNS worker process error', { pid, error: err.message }));
    child.on('message', (m: unknown) => this.onMessage(s, child, m));
    this.post(s, {
      t: 'init',
      init: { upstreams: this.opts.upstreams, forwardTimeoutMs: this.opts.forwardTimeoutMs, statsIntervalMs: this.opts.statsIntervalMs ?? 1000 },
      gen: this.gen,
      zone: this.opts.zone.spec(),
    });
  }

  private onMessage(s: Slot, child: ChildProcess, raw: unknown): void {
    if (s.child !== child) return;
    const m = raw as FromWorker;
    switch (tagOf(raw)) {
      case 'ready': {
        s.ready = true;
        s.gen = Math.max(s.gen, (m as Extract<FromWorker, { t: 'ready' }>).gen);
        for (const [id, udp] of this.sockets) this.sendSocket(s, id, udp);
        break;
      }
      case 'zone-ack':
        s.gen = Math.max(s.gen, (m as Extract<FromWorker, { t: 'zone-ack' }>).gen);
        break;
      case 'attached': {
        const id = (m as Extract<FromWorker, { t: 'attached' }>).id;
        s.attached.add(id);
        s.inFlight.delete(id);
        // Detached while the socket was on its way: take it back.
        if (!this.sockets.has(id)) this.post(s, { t: 'detach', id });
        this.changed();
        break;
      }
      case 'detached':
        s.attached.delete((m as Extract<FromWorker, { t: 'detached' }>).id);
        s.inFlight.delete((m as Extract<FromWorker, { t: 'detached' }>).id);
        this.changed();
        break;
      case 'stats':
        s.stats = (m as Extract<FromWorker, { t: 'stats' }>).sockets;
        s.statsSeq++;
        break;
      case 'log': {
        const l = m as Extract<FromWorker, { t: 'log' }>;
        const level = (['debug', 'info', 'warn', 'error'] as const).find((x) => x === l.level) ?? 'warn';
        this.opts.logger[level](String(l.msg), { ...l.fields, worker: child.pid });
        break;
      }
      default:
        this.opts.logger.warn('DNS worker sent an unknown message', { pid: child.pid });
    }
    for (const w of this.waiters) w();
  }

  private onExit(s: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null, error?: string): void {
    if (s.child !== child) return;
    for (const [id, c] of Object.entries(s.stats)) this.retired[id] = addCounters(this.retired[id] ?? {}, c);
    s.child = undefined;
    s.ready = false;
    s.stats = {};
    s.attached = new Set();
    s.inFlight = new Set();
    for (const w of this.waiters) w();
    this.changed();
    if (this.closing) return;
    if (monoMs() - s.startedAt > QUICK_EXIT_MS) s.failures = 0;
    s.failures++;
    const max = this.opts.maxRestarts ?? 10;
    if (s.failures > max) {
      this.opts.logger.error('DNS worker keeps exiting: not restarting it', { pid: child.pid, code, signal, error, exits: s.failures });
      return;
    }
    const delay = backoffMs(s.failures - 1, this.opts.restartBaseMs ?? 100, this.opts.restartCapMs ?? 5000);
    this.opts.logger.warn('DNS worker exited: restarting', { pid: child.pid, code, signal, error, inMs: delay, exits: s.failures });
    this.restarts++;
    s.timer = setTimeout(() => this.spawn(s), delay);
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }

  /** Resolves when `ok()` holds, checked on every worker message and exit; rejects after the timeout. */
  private until(what: string, ok: () => boolean): Promise<void> {
    if (ok()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!ok()) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${this.timeoutMs} ms waiting for ${what}`));
      }, this.timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }
}
