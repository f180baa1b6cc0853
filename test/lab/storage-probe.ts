// Client-side probes of a lab's storage: psql and curl from a lab node's namespace (never from the host).
import { readFileSync } from 'node:fs';
import { run } from '../../src/lib/exec.js';
import { labPostgresPasswordFile } from '../../src/lab/lab.js';
import { nsName } from '../../src/lab/names.js';
import { monoMs, sleep } from '../../src/lib/time.js';

export const STORAGE_VIP = '10.0.0.100';
export const GATEWAY_VIP = '10.0.0.254';
export const STORAGE_NODES = ['s1', 's2', 's3', 's4'];

export async function inNode(lab: string, node: string, cmd: string, args: readonly string[], opts: { timeoutMs?: number; env?: Record<string, string>; input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
  const r = await run('ip', ['netns', 'exec', nsName(lab, node), 'env', ...env, cmd, ...args], { timeoutMs: opts.timeoutMs ?? 10_000, allowFailure: true, ...(opts.input !== undefined ? { input: opts.input } : {}) });
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** psql against host (default the storage VIP) from `from`; one statement, unaligned output. */
export async function psql(lab: string, sql: string, o: { from?: string; host?: string; timeoutS?: number } = {}): Promise<{ ok: boolean; out: string; err: string }> {
  const password = readFileSync(labPostgresPasswordFile(lab), 'utf8').trim();
  const t = o.timeoutS ?? 2;
  const r = await inNode(lab, o.from ?? 'c1', 'psql', ['-h', o.host ?? STORAGE_VIP, '-U', 'postgres', '-d', 'postgres', '-Atq', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
    env: { PGPASSWORD: password, PGCONNECT_TIMEOUT: String(t), PGOPTIONS: `-c statement_timeout=${t * 1000}` },
    timeoutMs: t * 1000 + 3000,
  });
  return { ok: r.code === 0, out: r.stdout.trim(), err: r.stderr.trim() };
}

/** Nodes whose eth0 carries `ip` right now. */
export async function holders(lab: string, ip: string, nodes = STORAGE_NODES): Promise<string[]> {
  const out: string[] = [];
  for (const n of nodes) {
    const r = await run('ip', ['-n', nsName(lab, n), '-4', '-o', 'addr', 'show'], { timeoutMs: 5000, allowFailure: true });
    if (r.stdout.includes(` ${ip}/`)) out.push(n);
  }
  return out;
}

/** Polls the VIP holders until stopped; remembers every instant two nodes held the same VIP. */
export class VipWatch {
  readonly doubles: string[] = [];
  private stopped = false;
  private readonly done: Promise<void>;
  constructor(private readonly lab: string, private readonly excused: () => string | undefined = () => undefined) {
    this.done = this.loop();
  }
  private async loop(): Promise<void> {
    const end = monoMs() + 600_000;
    while (!this.stopped && monoMs() < end) {
      for (const ip of [STORAGE_VIP, GATEWAY_VIP]) {
        const h = (await holders(this.lab, ip)).filter((n) => n !== this.excused());
        if (h.length > 1) this.doubles.push(`${ip} on ${h.join(', ')}`);
      }
      await sleep(100);
    }
  }
  async stop(): Promise<string[]> {
    this.stopped = true;
    await this.done;
    return this.doubles;
  }
}

/**
 * Inserts rows id, id+1, ... through the VIP, one statement at a time, until stopped. Keeps every acknowledged id
 * and the time of each first success after a failure, so failover gaps can be measured.
 */
export class Writer {
  readonly acked: number[] = [];
  /** monoMs at which each acknowledged INSERT returned, in order. */
  readonly ackedAt: number[] = [];
  readonly failures: string[] = [];
  private stopped = false;
  private next: number;
  private readonly done: Promise<void>;
  constructor(private readonly lab: string, private readonly table: string, private readonly start: number) {
    this.next = start;
    this.done = this.loop();
  }
  private async loop(): Promise<void> {
    const end = monoMs() + 600_000;
    while (!this.stopped && monoMs() < end) {
      const id = this.next++;
      const r = await psql(this.lab, `INSERT INTO ${this.table}(id) VALUES (${id})`, { timeoutS: 1 });
      if (r.ok) {
        this.acked.push(id);
        this.ackedAt.push(monoMs());
      } else this.failures.push(r.err.split('\n')[0] ?? '');
      await sleep(r.ok ? 50 : 20);
    }
  }
  /** Whether `id` was sent by this writer (acknowledged or not: a failed INSERT may still have committed). */
  attempted(id: number): boolean {
    return id >= this.start && id < this.next;
  }
  /** Longest time between two consecutive acknowledged INSERTs. */
  longestGap(): number {
    let gap = 0;
    for (let i = 1; i < this.ackedAt.length; i++) gap = Math.max(gap, this.ackedAt[i]! - this.ackedAt[i - 1]!);
    return gap;
  }
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

/** One INSERT through the VIP as the probes make it: start and end (monoMs) and whether it was acknowledged. */
export interface Attempt {
  start: number;
  end: number;
  ok: boolean;
}

/**
 * INSERTs through the VIP started every `intervalMs`, each on its own connection, overlapping (at most
 * `maxInFlight` at once): a connection attempt made while nobody holds the VIP hangs until libpq's timeout
 * (at least 2 s) or the next SYN retry (1 s), so waiting for it before trying again would add the probe's
 * own latency to the figure. Ids are id, id+1, ...; a duplicate-key failure only means an earlier one won.
 */
export class InsertProbe {
  readonly attempts: Attempt[] = [];
  private stopped = false;
  private next: number;
  private inFlight = new Set<Promise<void>>();
  private readonly done: Promise<void>;
  constructor(private readonly lab: string, private readonly table: string, startId: number, private readonly o: { intervalMs?: number; maxInFlight?: number; boundMs?: number } = {}) {
    this.next = startId;
    this.done = this.loop();
  }
  private async loop(): Promise<void> {
    const end = monoMs() + (this.o.boundMs ?? 600_000);
    const max = this.o.maxInFlight ?? 12;
    while (!this.stopped && monoMs() < end) {
      if (this.inFlight.size < max) {
        const id = this.next++;
        const start = monoMs();
        const p = psql(this.lab, `INSERT INTO ${this.table}(id) VALUES (${id})`, { timeoutS: 2 }).then((r) => {
          this.attempts.push({ start, end: monoMs(), ok: r.ok });
        }, () => {
          this.attempts.push({ start, end: monoMs(), ok: false });
        }).finally(() => this.inFlight.delete(p));
        this.inFlight.add(p);
      }
      await sleep(this.o.intervalMs ?? 100);
    }
  }
  /** End time of the first acknowledged INSERT that started at or after t0 (monoMs). */
  firstOkAfter(t0: number): number | undefined {
    const ends = this.attempts.filter((a) => a.ok && a.start >= t0).map((a) => a.end);
    return ends.length ? Math.min(...ends) : undefined;
  }
  /** Longest time between two consecutive acknowledged INSERTs (by end time) that ended within [from, to]. */
  longestGap(from: number, to: number): number {
    const ends = this.attempts.filter((a) => a.ok && a.end >= from && a.end <= to).map((a) => a.end).sort((a, b) => a - b);
    let gap = 0;
    for (let i = 1; i < ends.length; i++) gap = Math.max(gap, ends[i]! - ends[i - 1]!);
    return gap;
  }
  /** Stops starting attempts and waits for those in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
    await Promise.all([...this.inFlight]);
  }
}

/** Time (monoMs) of the first successful INSERT through the VIP after now, probing with overlapping attempts every 100 ms. */
export async function firstInsertAfter(lab: string, table: string, id: number, timeoutMs: number): Promise<number | undefined> {
  const t0 = monoMs();
  // Ids far apart per call: overlapping attempts of one call must not collide with the next call's.
  const probe = new InsertProbe(lab, table, id * 1000, { boundMs: timeoutMs });
  try {
    while (monoMs() - t0 < timeoutMs) {
      const t = probe.firstOkAfter(t0);
      if (t !== undefined) return t;
      await sleep(20);
    }
    return probe.firstOkAfter(t0);
  } finally {
    await probe.stop();
  }
}

export async function agentPid(lab: string, node: string): Promise<number | undefined> {
  const r = await run('ip', ['netns', 'pids', nsName(lab, node)], { timeoutMs: 5000 });
  for (const p of r.stdout.split('\n').filter(Boolean).map(Number)) {
    const cmd = await run('cat', [`/proc/${p}/cmdline`], { timeoutMs: 2000, allowFailure: true });
    const argv = cmd.stdout.split('\0');
    if (argv.includes('agent') && argv.includes('--config')) return p;
  }
  return undefined;
}

/** PIDs of postgres processes in the node's network namespace (lab nodes share one PID namespace, so pgrep would see all). */
export async function postgresOn(lab: string, node: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', nsName(lab, node)], { timeoutMs: 5000, allowFailure: true });
  const out: number[] = [];
  for (const p of r.stdout.split('\n').filter(Boolean).map(Number)) {
    const comm = await run('cat', [`/proc/${p}/comm`], { timeoutMs: 2000, allowFailure: true });
    if (comm.stdout.trim() === 'postgres') out.push(p);
  }
  return out;
}
