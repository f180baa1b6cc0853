/**
 * One long-lived Ceph client per agent: libexec/ycluster-rados.py (python3-rados/python3-rbd) connects once and
 * answers lock, watcher and monitor requests in milliseconds, where each `rbd`/`ceph` command would start a
 * process, hunt for a monitor, authenticate and fetch the osdmap. librados calls cannot be cancelled, so a request
 * that outlives its bound kills the helper (and fails whatever else it had in flight); the next request starts
 * a fresh one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { YcError, notFound } from '../lib/errors.js';
import { monoMs } from '../lib/time.js';
import { MON_FAILOVER_SETTINGS, SLOW_COMMAND_MS, type CephClientOptions } from './ceph-cli.js';

export interface RadosSessionOptions extends CephClientOptions {
  pool: string;
  /** Interpreter with the rados and rbd modules: Debian's, not whatever python3 is first on PATH. */
  python?: string;
  script?: string;
}

export interface RadosLocker {
  /** The lock's cookie, e.g. "ycluster:NODE:TOKEN". */
  id: string;
  /** The client that took it, e.g. "client.4134". */
  locker: string;
  address: string;
}

export interface MonCommandResult {
  /** 0 or a negative errno. */
  code: number;
  outs: string;
  outbuf: string;
}

const ENOENT = 2;
const EBUSY = 16;
const EEXIST = 17;
/** What librados answers once this client is blocklisted: it never recovers, so a new client is started. */
const ESHUTDOWN = 108;
const STDERR_KEEP = 2000;

const defaultScript = fileURLToPath(new URL('../../libexec/ycluster-rados.py', import.meta.url));

/** The helper's command line as the session starts it (a lab test starts it so inside a node's namespace). */
export function radosHelperArgv(o: RadosSessionOptions): string[] {
  const timeoutS = Math.max(1, Math.floor(((o.timeoutMs ?? 30_000) * 0.8) / 1000));
  const argv = [o.python ?? '/usr/bin/python3', o.script ?? defaultScript, '--conf', o.conf, '--id', o.id, '--pool', o.pool, '--timeout', String(timeoutS)];
  if (o.keyring !== undefined) argv.push('--keyring', o.keyring);
  for (const [k, v] of Object.entries(MON_FAILOVER_SETTINGS)) argv.push('--set', `${k}=${v}`);
  return argv;
}

interface Answer {
  id: number;
  ok: boolean;
  result?: unknown;
  errno?: number;
  error?: string;
}

class RadosOpError extends Error {
  constructor(readonly errno: number, message: string) {
    super(message);
  }
}

interface Pending {
  what: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** One helper process and the requests it owes answers to. */
interface Helper {
  proc: ChildProcess;
  pending: Map<number, Pending>;
  stderr: string;
  exited: Promise<void>;
}

export class RadosSession {
  private helper: Helper | undefined;
  private seq = 0;
  private closed = false;

  constructor(readonly opts: RadosSessionOptions) {}

  /** The running helper's PID, if one runs (for logs and tests). */
  get pid(): number | undefined {
    return this.helper?.proc.pid;
  }

  async exists(image: string): Promise<boolean> {
    try {
      return (await this.request('exists', { image }, image)) === true;
    } catch (err) {
      throw this.mapped(err, 'exists', image);
    }
  }

  async lockers(image: string): Promise<RadosLocker[]> {
    try {
      return (await this.request('lockers', { image }, image)) as RadosLocker[];
    } catch (err) {
      throw this.mapped(err, 'lockers', image);
    }
  }

  async lockAdd(image: string, id: string): Promise<void> {
    try {
      await this.request('lock_add', { image, cookie: id }, image);
    } catch (err) {
      if (err instanceof RadosOpError && (err.errno === EBUSY || err.errno === EEXIST)) {
        throw new YcError('CONFLICT', `rados lock_add ${this.name(image)} ${id}: ${err.message}`, { retryable: true });
      }
      throw this.mapped(err, 'lock_add', image);
    }
  }

  /** Breaks the lock `id` taken by `locker`; false when it was gone already. Never blocklists the locker. */
  async lockBreak(image: string, id: string, locker: string): Promise<boolean> {
    try {
      await this.request('lock_break', { image, cookie: id, locker }, image);
      return true;
    } catch (err) {
      if (err instanceof RadosOpError && err.errno === ENOENT) return false;
      throw this.mapped(err, 'lock_break', image);
    }
  }

  /** Clients that have the image open (rbd-fuse, a kernel map); this session itself never does. */
  async watchers(image: string): Promise<{ address: string }[]> {
    try {
      return (await this.request('watchers', { image }, image)) as { address: string }[];
    } catch (err) {
      throw this.mapped(err, 'watchers', image);
    }
  }

  /** A monitor command as `ceph` would send it, e.g. { prefix: 'osd blocklist', blocklistop: 'add', addr }. */
  async monCommand(cmd: Record<string, unknown>): Promise<MonCommandResult> {
    const what = typeof cmd.prefix === 'string' ? cmd.prefix : '?';
    try {
      return (await this.request('mon', { cmd }, what)) as MonCommandResult;
    } catch (err) {
      throw this.mapped(err, 'mon', what);
    }
  }

  /**
   * Fetches the newest OSD map now: ops this client had sent to an OSD that has since been marked down are resent
   * at once, instead of after the objecter's laggy-op check.
   */
  async latestOsdmap(): Promise<void> {
    try {
      await this.request('latest_osdmap', {}, '');
    } catch (err) {
      throw this.mapped(err, 'latest_osdmap', '');
    }
  }

  /** Ends the helper: stdin closed (it exits by itself), SIGKILL after 2 s. */
  async close(): Promise<void> {
    this.closed = true;
    const h = this.helper;
    if (h === undefined) return;
    h.proc.stdin?.end();
    const timer = setTimeout(() => h.proc.kill('SIGKILL'), 2000);
    await h.exited;
    clearTimeout(timer);
  }

  private name(image: string): string {
    return `${this.opts.pool}/${image}`;
  }

  private label(op: string, subject: string): string {
    if (op === 'latest_osdmap') return `rados ${op}`;
    return `rados ${op} ${op === 'mon' ? subject : this.name(subject)}`;
  }

  private mapped(err: unknown, op: string, subject: string): Error {
    if (!(err instanceof RadosOpError)) return err instanceof Error ? err : new Error(String(err));
    if (err.errno === ENOENT && op !== 'mon' && op !== 'latest_osdmap') return notFound(`rbd image ${this.name(subject)} does not exist`);
    return new YcError('UNAVAILABLE', `${this.label(op, subject)}: ${err.message}`, { retryable: true });
  }

  private request(op: string, args: Record<string, unknown>, subject: string): Promise<unknown> {
    const what = this.label(op, subject);
    if (this.closed) return Promise.reject(new YcError('UNAVAILABLE', `${what}: the session is closed`));
    let h: Helper;
    try {
      h = this.helper ?? this.start();
    } catch (err) {
      return Promise.reject(new YcError('UNAVAILABLE', `${what}: cannot start the rados helper`, { cause: err }));
    }
    const id = ++this.seq;
    const timeoutMs = this.opts.timeoutMs ?? 30_000;
    const t0 = monoMs();
    const answered = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(h, `no answer within ${timeoutMs} ms`, id), timeoutMs);
      h.pending.set(id, { what, resolve, reject, timer });
      h.proc.stdin?.write(`${JSON.stringify({ ...args, id, op })}\n`);
    });
    return answered.finally(() => {
      const ms = Math.round(monoMs() - t0);
      if (ms >= SLOW_COMMAND_MS) this.opts.onSlow?.(what, ms);
    });
  }

  private start(): Helper {
    const o = this.opts;
    const [command, ...args] = radosHelperArgv(o);
    const proc = spawn(command!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = new Promise<void>((r) => {
      proc.once('close', () => r());
      proc.once('error', () => r());
    });
    const h: Helper = { proc, pending: new Map(), stderr: '', exited };
    this.helper = h;
    // An idle helper must not keep the agent (or a test) alive: pending requests' timers do that while needed.
    proc.unref();
    for (const s of [proc.stdin, proc.stdout, proc.stderr]) (s as unknown as Socket).unref();
    proc.stdin.on('error', () => undefined); // EPIPE when it died: its exit fails the requests
    proc.stderr.setEncoding('utf8').on('data', (d: string) => {
      h.stderr = (h.stderr + d).slice(-STDERR_KEEP);
    });
    createInterface({ input: proc.stdout }).on('line', (line) => this.onLine(h, line));
    proc.on('error', (err) => this.fail(h, `rados helper: ${err.message}`));
    // 'close', not 'exit': answers written just before it died are still read.
    proc.on('close', (code, signal) => {
      const said = h.stderr.trim().split('\n').pop() ?? '';
      this.fail(h, `rados helper exited (${signal ?? `code ${code ?? '?'}`})${said === '' ? '' : `: ${said}`}`);
    });
    return h;
  }

  private onLine(h: Helper, line: string): void {
    let a: Answer;
    try {
      a = JSON.parse(line) as Answer;
    } catch {
      return; // not an answer (a library printing to stdout); the request it may hide times out
    }
    const p = h.pending.get(a.id);
    if (p === undefined) return;
    h.pending.delete(a.id);
    clearTimeout(p.timer);
    if (a.ok) p.resolve(a.result);
    else p.reject(new RadosOpError(a.errno ?? 0, a.error ?? 'failed without a message'));
    if (!a.ok && a.errno === ESHUTDOWN) this.fail(h, 'rados helper was blocklisted');
  }

  /** Fails everything the helper owes and kills it; the next request starts another. */
  private fail(h: Helper, reason: string, culprit?: number): void {
    if (this.helper === h) this.helper = undefined;
    const cause = culprit === undefined ? reason : `the rados helper was killed: ${h.pending.get(culprit)?.what ?? 'a request'} had ${reason}`;
    for (const [id, p] of h.pending) {
      h.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new YcError('UNAVAILABLE', `${p.what}: ${id === culprit ? reason : cause}`, { retryable: true }));
    }
    if (h.proc.exitCode === null && h.proc.signalCode === null) h.proc.kill('SIGKILL');
  }
}
