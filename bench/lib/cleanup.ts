// Everything a benchmark starts is registered here and undone in reverse order: on success, on error,
// and on SIGINT/SIGTERM, so an interrupted run leaves no process, namespace or lab behind.
import type { ChildProcess } from 'node:child_process';

type Undo = () => Promise<void> | void;

export class Cleanup {
  private readonly steps: { what: string; undo: Undo }[] = [];
  private running: Promise<void> | undefined;
  private readonly late: Promise<void>[] = [];

  /** The benchmark's root cleanup also runs on SIGINT/SIGTERM; nested ones (per server) do not listen. */
  constructor(opts: { onSignals?: boolean } = {}) {
    if (opts.onSignals === false) return;
    const onSignal = (sig: NodeJS.Signals): void => {
      process.stderr.write(`\n${sig}: cleaning up\n`);
      void this.run().then(() => Promise.allSettled(this.late)).finally(() => process.exit(130));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }

  /** True once cleanup has begun: the benchmark should stop starting things. */
  get stopping(): boolean {
    return this.running !== undefined;
  }

  /** Registers an undo step; once cleanup has begun (an interrupt mid-step), it is undone at once. */
  add(what: string, undo: Undo): void {
    if (this.running) {
      this.late.push(Promise.resolve().then(undo).catch(() => undefined));
      return;
    }
    this.steps.push({ what, undo });
  }

  /** Stops the child by its PID (SIGTERM, SIGKILL after graceMs) when cleaning up. */
  child(what: string, child: ChildProcess, graceMs = 3000): void {
    this.add(what, () => stopChild(child, graceMs));
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      while (this.steps.length) {
        const s = this.steps.pop()!;
        try {
          await s.undo();
        } catch (err) {
          process.stderr.write(`cleanup of ${s.what} failed: ${err instanceof Error ? err.message : String(err)}\n`);
        }
      }
    })();
    return this.running;
  }
}

/** SIGTERM, then SIGKILL after graceMs; resolves when the child has exited. */
export function stopChild(child: ChildProcess, graceMs = 3000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const hard = setTimeout(resolve, graceMs + 3000);
    child.once('exit', () => {
      clearTimeout(kill);
      clearTimeout(hard);
      resolve();
    });
    child.kill(signal);
  });
}
