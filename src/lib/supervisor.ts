import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { Logger } from './log.js';
import { backoffMs, monoMs, sleep } from './time.js';

/** What a supervised service is: data, so that adding a service is a few lines. */
export interface ServiceSpec {
  name: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Resolves true when the service answers; called every healthIntervalMs. */
  health?: () => Promise<boolean>;
  healthIntervalMs?: number;
  /** Checked this often until the service first answers (a takeover waits on that), then every healthIntervalMs. */
  startupHealthIntervalMs?: number;
  /** Consecutive failed checks before the process is restarted. */
  unhealthyRestartAfter?: number;
  /** Graceful stop: this signal first, then SIGKILL after stopTimeoutMs. */
  stopSignal?: NodeJS.Signals;
  stopTimeoutMs?: number;
  logFile?: string;
  /**
   * Prepare before each start (directories, config files; PostgreSQL's initdb on an empty volume). The signal is
   * aborted by stop(): what prepare runs must end then, so a stop is never held up by it.
   */
  prepare?: (signal: AbortSignal) => Promise<void>;
  /**
   * On a planned handover, while the service still serves: work that would otherwise happen during its stop, and
   * so inside the clients' outage (PostgreSQL's checkpoint). Best effort: a failure only makes the stop longer.
   */
  beforeHandover?: () => Promise<void>;
}

export type ServiceState = 'starting' | 'running' | 'unhealthy' | 'backoff' | 'stopping' | 'stopped' | 'failed';

export interface ServiceStatus {
  name: string;
  state: ServiceState;
  pid: number | undefined;
  restarts: number;
  healthy: boolean;
  lastError: string | undefined;
  since: string;
}

/**
 * Keeps one child process running in the foreground: restarts it with backoff when it dies or
 * stays unhealthy, and stops it in a bounded time. Each child gets its own process group so a
 * stop reaches its helpers too.
 */
export class Supervised {
  private child: ChildProcess | undefined;
  private state: ServiceState = 'stopped';
  private restarts = 0;
  private healthy = false;
  private lastError: string | undefined;
  private since = new Date().toISOString();
  private wanted = false;
  private loop: Promise<void> | undefined;
  private abort = new AbortController();
  private exited: Promise<void> | undefined;
  /** Time spent in prepare since start(), and when the one under way began: a start bound leaves it out. */
  private preparedMs = 0;
  private preparingSince: number | undefined;

  constructor(readonly spec: ServiceSpec, private readonly logger: Logger) {}

  status(): ServiceStatus {
    return { name: this.spec.name, state: this.state, pid: this.child?.pid, restarts: this.restarts, healthy: this.healthy, lastError: this.lastError, since: this.since };
  }

  /**
   * How long this service has spent preparing since start() (the current preparation included). A start bound
   * counts from the end of it: PostgreSQL's first start on a fresh volume runs initdb, which has its own bound.
   */
  preparationMs(): number {
    return this.preparedMs + (this.preparingSince === undefined ? 0 : monoMs() - this.preparingSince);
  }

  start(): void {
    if (this.wanted) return;
    this.wanted = true;
    this.preparedMs = 0;
    this.abort = new AbortController();
    this.loop = this.runLoop(this.abort.signal).catch((err: unknown) => {
      this.setState('failed', err instanceof Error ? err.message : String(err));
    });
  }

  /**
   * Resolves once the process is gone: graceful signal, then SIGKILL after the stop timeout (the spec's, unless
   * this stop has its own: a planned handover can wait longer for a clean shutdown than a deadline can).
   */
  async stop(timeoutMs?: number): Promise<void> {
    this.wanted = false;
    this.abort.abort(new Error('stopping'));
    await this.killChild(timeoutMs ?? this.spec.stopTimeoutMs ?? 10_000);
    await this.loop;
    this.setState('stopped');
  }

  private setState(state: ServiceState, error?: string): void {
    if (state !== this.state) this.since = new Date().toISOString();
    this.state = state;
    if (error !== undefined) this.lastError = error;
    if (state !== 'running') this.healthy = false;
  }

  private async runLoop(signal: AbortSignal): Promise<void> {
    let attempt = 0;
    while (this.wanted && !signal.aborted) {
      this.setState('starting');
      const preparing = monoMs();
      this.preparingSince = preparing;
      try {
        await this.spec.prepare?.(signal);
      } catch (err) {
        if (!this.wanted || signal.aborted) return;
        this.setState('backoff', `prepare failed: ${err instanceof Error ? err.message : String(err)}`);
        await sleep(backoffMs(attempt++), signal).catch(() => undefined);
        continue;
      } finally {
        this.preparedMs += monoMs() - preparing;
        this.preparingSince = undefined;
      }
      // A stop during prepare found no process to signal: starting one now would outlive the stop.
      if (!this.wanted || signal.aborted) return;
      const exitInfo = await this.spawnAndWatch(signal);
      if (!this.wanted || signal.aborted) return;
      this.restarts++;
      this.setState('backoff', exitInfo);
      this.logger.warn('service exited; restarting after backoff', { service: this.spec.name, why: exitInfo, restarts: this.restarts });
      await sleep(backoffMs(attempt++), signal).catch(() => undefined);
      if (this.state === 'backoff' && this.healthyRunMs > 30_000) attempt = 0;
    }
  }

  private healthyRunMs = 0;

  private spawnAndWatch(signal: AbortSignal): Promise<string> {
    return new Promise((resolve) => {
      // The child writes its log straight to the file: through a pipe into this process, a frozen agent
      // (SIGSTOP) would soon block its children (etcd, the watchdog) on a full pipe.
      const fd = this.spec.logFile ? openSync(this.spec.logFile, 'a') : undefined;
      let child: ChildProcess;
      try {
        child = spawn(this.spec.command, this.spec.args, {
          env: { ...process.env, ...this.spec.env },
          cwd: this.spec.cwd,
          detached: true,
          stdio: ['ignore', fd ?? 'ignore', fd ?? 'ignore'],
        });
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
      this.child = child;
      const startedAt = Date.now();
      let failures = 0;
      let answered = false;
      let timer: NodeJS.Timeout | undefined;
      this.exited = new Promise((done) => {
        child.once('close', (code, sig) => {
          if (timer) clearTimeout(timer);
          this.child = undefined;
          this.healthyRunMs = Date.now() - startedAt;
          done();
          resolve(sig ? `killed by ${sig}` : `exited with code ${code}`);
        });
      });
      child.once('error', (err) => {
        this.setState('backoff', err.message);
      });
      if (!this.spec.health) this.setState('running');
      if (this.spec.health) {
        const check = async (): Promise<void> => {
          if (signal.aborted || !this.child) return;
          const ok = await this.spec.health!().catch(() => false);
          if (signal.aborted || this.child !== child) return;
          if (ok) {
            failures = 0;
            answered = true;
            this.setState('running');
            this.healthy = true;
          } else if (this.state === 'running' || this.state === 'unhealthy') {
            failures++;
            this.setState('unhealthy', 'health check failed');
            if (failures >= (this.spec.unhealthyRestartAfter ?? 5)) {
              this.logger.warn('service unhealthy; restarting', { service: this.spec.name });
              void this.killChild();
            }
          }
        };
        const every = this.spec.healthIntervalMs ?? 1000;
        // One check at a time: the next is timed from the end of the last.
        const next = (): void => {
          if (signal.aborted || this.child !== child) return;
          timer = setTimeout(() => void check().finally(next), answered ? every : (this.spec.startupHealthIntervalMs ?? every));
        };
        void check().finally(next);
      }
    });
  }

  private async killChild(stopTimeoutMs = this.spec.stopTimeoutMs ?? 10_000): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    this.setState('stopping');
    const pid = child.pid;
    const signalGroup = (sig: NodeJS.Signals): void => {
      try {
        process.kill(-pid, sig);
      } catch {
        /* already gone */
      }
    };
    signalGroup(this.spec.stopSignal ?? 'SIGTERM');
    const exited = this.exited ?? Promise.resolve();
    const timedOut = await Promise.race([exited.then(() => false), sleep(stopTimeoutMs).then(() => true)]);
    if (timedOut) {
      this.logger.warn('service did not stop in time; killing', { service: this.spec.name, pid });
      signalGroup('SIGKILL');
      await exited;
    }
  }
}
