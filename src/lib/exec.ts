import { spawn } from 'node:child_process';
import { YcError } from './errors.js';

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Resolve with the result on a non-zero exit instead of throwing. */
  allowFailure?: boolean;
  /** Kills the command (SIGKILL) when aborted; it then ends as killed, like a timeout. */
  signal?: AbortSignal;
}

/** How long run() waits for a killed command to be gone before it gives up on it. */
export const KILL_GRACE_MS = 2000;

/** Runs a command without a shell, bounded in time; a non-zero exit throws with stderr in the message. */
export function run(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let settled = false;
    let grace: NodeJS.Timeout | undefined;
    const kill = (why: string): void => {
      child.kill('SIGKILL');
      // A process in uninterruptible sleep (I/O to a storage that does not answer) outlives SIGKILL, and a child
      // that left a grandchild holding its output never closes: a caller's bound must hold all the same. What
      // is left behind is reported; it ends when its I/O does.
      grace ??= setTimeout(() => {
        if (settled) return;
        settled = true;
        opts.signal?.removeEventListener('abort', onAbort);
        reject(new YcError('TIMEOUT', `${cmd} ${args.join(' ')}: ${why}, and still not gone ${KILL_GRACE_MS} ms after SIGKILL (pid ${child.pid ?? '?'}, left behind)`.slice(0, 2000), { retryable: false }));
      }, KILL_GRACE_MS);
      grace.unref();
    };
    const timer = setTimeout(() => kill(`timed out after ${opts.timeoutMs ?? 30_000} ms`), opts.timeoutMs ?? 30_000);
    const onAbort = (): void => kill('aborted');
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): boolean => {
      clearTimeout(timer);
      clearTimeout(grace);
      opts.signal?.removeEventListener('abort', onAbort);
      if (settled) return false;
      settled = true;
      return true;
    };
    child.on('error', (err) => {
      if (!done()) return;
      reject(new YcError('UNAVAILABLE', `cannot run ${cmd}: ${err.message}`, { retryable: false, cause: err }));
    });
    child.on('close', (code, signal) => {
      if (!done()) return;
      const result = { code, signal, stdout, stderr };
      if (code === 0 || opts.allowFailure) resolve(result);
      else {
        const why = signal ? `killed by ${signal}` : `exit ${code}`;
        reject(new YcError('INTERNAL', `${cmd} ${args.join(' ')}: ${why}: ${stderr.trim() || stdout.trim()}`.slice(0, 2000), { retryable: false, detail: { code, stderr } }));
      }
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
