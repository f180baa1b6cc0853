import { YcError } from './errors.js';

/** Sleeps; rejects with the signal's reason when aborted, so loops stop promptly on shutdown. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Exponential backoff with a cap and ±20% jitter so restarts of many nodes do not line up. */
export function backoffMs(attempt: number, baseMs = 200, capMs = 10_000, random: () => number = Math.random): number {
  const raw = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.round(raw * (0.8 + 0.4 * random()));
}

/** Monotonic milliseconds: deadlines must not jump with the wall clock. */
export function monoMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

/** Polls until check returns a value other than undefined, or throws after timeoutMs. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  opts: { timeoutMs?: number; intervalMs?: number; signal?: AbortSignal } = {},
): Promise<T> {
  const deadline = monoMs() + (opts.timeoutMs ?? 10_000);
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (monoMs() > deadline) {
      const suffix = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${opts.timeoutMs ?? 10_000} ms waiting for ${what}${suffix}`);
    }
    await sleep(opts.intervalMs ?? 50, opts.signal);
  }
}

/**
 * `p`, or a TIMEOUT rejection after `ms`. What `p` still does afterwards is not waited for, and a rejection it
 * ends with then is swallowed (it would otherwise be an unhandled rejection, which ends the process).
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  p.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new YcError('TIMEOUT', `${what} took longer than ${Math.round(ms)} ms`)), Math.max(1, ms));
    }),
  ]).finally(() => clearTimeout(timer));
}
