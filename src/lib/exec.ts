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

/** Runs a command without a shell, bounded in time; a non-zero exit throws with stderr in the message. */
export function run(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    const onAbort = (): void => void child.kill('SIGKILL');
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (err) => {
      done();
      reject(new YcError('UNAVAILABLE', `cannot run ${cmd}: ${err.message}`, { retryable: false, cause: err }));
    });
    child.on('close', (code, signal) => {
      done();
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
