// Client-side probes of a lab's storage: psql and curl from a lab node's namespace (never from the host).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
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

const AGENT = fileURLToPath(new URL('../helpers/pg-probe-agent.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));

/**
 * A write prober living in a lab node's namespace (test/helpers/pg-probe-agent.ts): each query on a fresh
 * connection to the storage VIP, in-process there, so probing ten times a second starts no processes.
 */
class ProbeAgent {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, (r: { ok: boolean; err: string }) => void>();
  private nextId = 1;
  constructor(lab: string, node: string) {
    const password = readFileSync(labPostgresPasswordFile(lab), 'utf8').trim();
    this.child = spawn('ip', ['netns', 'exec', nsName(lab, node), 'env', `PGHOST=${STORAGE_VIP}`, `PGPASSWORD=${password}`, process.execPath, '--import', 'tsx', AGENT], { cwd: REPO, stdio: ['pipe', 'pipe', 'ignore'] });
    this.child.unref();
    this.child.stdin!.on('error', () => undefined);
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const r = JSON.parse(line) as { id: number; ok: boolean; err?: string };
      this.waiting.get(r.id)?.({ ok: r.ok, err: r.err ?? '' });
      this.waiting.delete(r.id);
    });
    this.child.once('exit', () => {
      for (const done of this.waiting.values()) done({ ok: false, err: 'probe agent exited' });
      this.waiting.clear();
      agents.delete(`${lab}/${node}`);
    });
  }
  query(sql: string, timeoutS: number): Promise<{ ok: boolean; err: string }> {
    const id = this.nextId++;
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve({ ok: false, err: 'probe agent exited' });
    return new Promise((resolve) => {
      // The agent bounds each query itself; this only covers an agent that stopped answering.
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve({ ok: false, err: 'no answer from the probe agent' });
      }, timeoutS * 2000 + 3000);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      // Like psql with PGCONNECT_TIMEOUT and statement_timeout of timeoutS each.
      this.child.stdin!.write(`${JSON.stringify({ id, sql, timeoutMs: timeoutS * 2000, options: `-c statement_timeout=${timeoutS * 1000}` })}\n`);
    });
  }
  close(): void {
    this.child.stdin!.end();
  }
}

const agents = new Map<string, ProbeAgent>();
process.once('exit', () => {
  for (const a of agents.values()) a.close();
});

/** One statement through the storage VIP from `from` (default c1) on a fresh connection, without a process start. */
export function probeSql(lab: string, sql: string, o: { from?: string; timeoutS?: number } = {}): Promise<{ ok: boolean; err: string }> {
  const node = o.from ?? 'c1';
  let agent = agents.get(`${lab}/${node}`);
  if (agent === undefined) {
    agent = new ProbeAgent(lab, node);
    agents.set(`${lab}/${node}`, agent);
  }
  return agent.query(sql, o.timeoutS ?? 2);
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
      const t0 = monoMs();
      const r = await probeSql(this.lab, `INSERT INTO ${this.table}(id) VALUES (${id})`, { timeoutS: 1 });
      if (r.ok) {
        this.acked.push(id);
        this.ackedAt.push(monoMs());
      } else this.failures.push(r.err.split('\n')[0] ?? '');
      // About ten writes a second while they succeed; a failed one is retried sooner.
      await sleep(r.ok ? Math.max(20, 100 - (monoMs() - t0)) : 20);
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
  /** client: 'wire' (in-process, from a probe agent in c1) or 'psql' (a process per INSERT, the probe until session 8). */
  constructor(private readonly lab: string, private readonly table: string, startId: number, private readonly o: { intervalMs?: number; maxInFlight?: number; boundMs?: number; client?: 'wire' | 'psql' } = {}) {
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
        const sql = `INSERT INTO ${this.table}(id) VALUES (${id})`;
        const p = (this.o.client === 'psql' ? psql(this.lab, sql, { timeoutS: 2 }) : probeSql(this.lab, sql, { timeoutS: 2 })).then((r) => {
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
export async function firstInsertAfter(lab: string, table: string, id: number, timeoutMs: number, client: 'wire' | 'psql' = 'wire'): Promise<number | undefined> {
  const t0 = monoMs();
  // Ids far apart per call: overlapping attempts of one call must not collide with the next call's.
  const probe = new InsertProbe(lab, table, id * 1000, { boundMs: timeoutMs, client });
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
