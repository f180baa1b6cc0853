import type { Logger } from '../lib/log.js';
import { monoMs } from '../lib/time.js';

/** One timed step of a takeover or a step-down; `at` is wall-clock (ISO) so a bench can line it up with a fault. */
export interface StepRecord {
  step: string;
  /** Wall-clock start and end. */
  at: string;
  end: string;
  ms: number;
  ok: boolean;
}

/** The log message every step is written under (benchmarks parse agent logs for it). */
export const STEP_MSG = 'storage step';
/** The summary line written when a takeover or step-down ends. */
export const TIMELINE_MSG = 'storage timeline';

/**
 * Times the steps of one lead() or stepDown(): each step is logged as it ends (steps may overlap, e.g. two
 * volumes mounted at once), and the whole timeline once at the end, so a trial shows where its time went.
 */
export class Timeline {
  readonly steps: StepRecord[] = [];
  private readonly t0 = monoMs();

  constructor(private readonly log: Logger, readonly phase: 'lead' | 'stepDown', private readonly token: number | undefined) {}

  async step<T>(step: string, fn: () => Promise<T>): Promise<T> {
    const start = monoMs();
    let ok = false;
    try {
      const out = await fn();
      ok = true;
      return out;
    } finally {
      this.record(step, start, ok);
    }
  }

  /** A step that began at `startMono` (monotonic ms) and ends now. */
  record(step: string, startMono: number, ok = true): void {
    const now = monoMs();
    const ms = Math.round(now - startMono);
    const end = Date.now();
    const rec: StepRecord = { step, at: new Date(end - ms).toISOString(), end: new Date(end).toISOString(), ms, ok };
    this.steps.push(rec);
    this.log.info(STEP_MSG, { phase: this.phase, token: this.token, ...rec });
  }

  /** Logs the whole timeline: total time and each step's offset from the start. */
  finish(outcome: string): void {
    this.log.info(TIMELINE_MSG, {
      phase: this.phase,
      token: this.token,
      outcome,
      totalMs: Math.round(monoMs() - this.t0),
      steps: this.steps.map((s) => `${s.step} ${s.ms}ms${s.ok ? '' : ' (failed)'}`),
    });
  }
}
