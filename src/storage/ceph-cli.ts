// The `ceph` and `rbd` commands with the driver's config and identity, each bounded in time.
import { YcError } from '../lib/errors.js';
import { run, type ExecResult } from '../lib/exec.js';
import { monoMs } from '../lib/time.js';

export interface CephClientOptions {
  /** ceph.conf; always given, so no command ever falls back to /etc/ceph or a DNS SRV lookup. */
  conf: string;
  /** cephx user without "client.", e.g. "admin". */
  id: string;
  keyring?: string;
  /** Bound on each command (default 30 s). */
  timeoutMs?: number;
  /**
   * Told of every command that took longer than SLOW_COMMAND_MS: a takeover waiting on Ceph (a dead OSD not yet
   * marked down, a monitor election) is then visible in the node's log, command by command.
   */
  onSlow?: (command: string, ms: number) => void;
}

export const SLOW_COMMAND_MS = 500;

/**
 * Client settings for a monitor cut off by a partition, which answers nothing and resets nothing: by default a
 * client notices only after 30 s without a keepalive answer (one asked every 10 s), and a takeover's blocklist
 * and mark-down wait that long. Asked every second, given up after 3 s; pending commands then go to another
 * monitor. Every Ceph client the agent starts gets these (its session, rbd-fuse), and so does the lab's ceph.conf.
 */
export const MON_FAILOVER_SETTINGS: Readonly<Record<string, string>> = {
  mon_client_ping_interval: '1',
  mon_client_ping_timeout: '3',
};

export class CephCli {
  constructor(readonly opts: CephClientOptions) {}

  /** Arguments every Ceph tool accepts; also what rbd-fuse takes through CEPH_ARGS. */
  identityArgs(): string[] {
    return ['--id', this.opts.id, ...(this.opts.keyring === undefined ? [] : ['--keyring', this.opts.keyring])];
  }

  rbd(args: readonly string[], opts: { allowFailure?: boolean } = {}): Promise<ExecResult> {
    return this.timed(`rbd ${args.join(' ')}`, run('rbd', ['-c', this.opts.conf, ...this.identityArgs(), ...args], { timeoutMs: this.opts.timeoutMs ?? 30_000, ...opts }));
  }

  ceph(args: readonly string[]): Promise<ExecResult> {
    const t = this.opts.timeoutMs ?? 30_000;
    return this.timed(`ceph ${args.join(' ')}`, run('ceph', ['-c', this.opts.conf, ...this.identityArgs(), '--connect-timeout', String(Math.max(1, Math.floor(t / 1000))), ...args], { timeoutMs: t }));
  }

  private async timed(command: string, p: Promise<ExecResult>): Promise<ExecResult> {
    const t0 = monoMs();
    try {
      return await p;
    } finally {
      const ms = Math.round(monoMs() - t0);
      if (ms >= SLOW_COMMAND_MS) this.opts.onSlow?.(command, ms);
    }
  }

  async rbdJson<T>(args: readonly string[]): Promise<T> {
    const res = await this.rbd([...args, '--format', 'json']);
    try {
      return JSON.parse(res.stdout) as T;
    } catch (err) {
      throw new YcError('INTERNAL', `rbd ${args.join(' ')} printed no JSON`, { cause: err });
    }
  }
}

/** What went wrong with a command that failed: its own words, or that it was killed at the time limit. */
export function failure(res: ExecResult): string {
  const said = res.stderr.trim();
  if (said !== '') return said;
  return res.signal ? `no answer within the time limit (killed by ${res.signal})` : `exit ${res.code ?? '?'} without a message`;
}
