// Handover after kill -9 of the leading candidate, for any candidate program that prints JSON lines
// {"event":"ready"|"leading","t":ms}: three candidates campaign; each trial kills the leader and times
// the next "leading" line; the killed one is started again before the next trial.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { sleep, waitFor } from '../../src/lib/time.js';
import { stopChild, type Cleanup } from './cleanup.js';
import { say } from './report.js';

interface Candidate {
  child: ChildProcess;
  ready: boolean;
  leadingAt: number[];
}

export interface HandoverRun {
  label: string;
  /** [node, args...] for candidate number i. */
  command: (i: number) => string[];
  trials: number;
  deadline: number;
  cleanup: Cleanup;
}

export async function electionHandover(o: HandoverRun): Promise<number[]> {
  const cands: Candidate[] = [];
  const launch = (i: number): void => {
    const [cmd, ...args] = o.command(i);
    const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    o.cleanup.child(`${o.label} candidate ${i}`, child, 2000);
    const c: Candidate = { child, ready: false, leadingAt: [] };
    cands[i] = c;
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const ev = JSON.parse(line) as { event: string; t: number };
        if (ev.event === 'ready') c.ready = true;
        if (ev.event === 'leading') c.leadingAt.push(ev.t);
      } catch {
        /* not ours */
      }
    });
  };
  const leader = (): number | undefined => {
    let best: number | undefined;
    let bestT = -1;
    cands.forEach((c, i) => {
      const t = c.leadingAt.at(-1) ?? -1;
      if (c.child.exitCode === null && c.child.signalCode === null && t > bestT) {
        best = i;
        bestT = t;
      }
    });
    return best;
  };
  const out: number[] = [];
  try {
    for (let i = 0; i < 3; i++) launch(i);
    await waitFor(`${o.label}: candidates ready and one leading`, () => (cands.every((c) => c.ready) && leader() !== undefined ? true : undefined), { timeoutMs: 30_000, intervalMs: 50 });
    for (let trial = 0; trial < o.trials; trial++) {
      if (o.cleanup.stopping) throw new Error('interrupted');
      if (Date.now() > o.deadline) {
        say(`${o.label}: time budget spent after ${trial} trials`);
        break;
      }
      const old = leader()!;
      const t0 = Date.now();
      await stopChild(cands[old]!.child, 0, 'SIGKILL');
      const next = await waitFor(`${o.label}: a new leader`, () => {
        for (const [i, c] of cands.entries()) if (i !== old && c.leadingAt.some((t) => t >= t0)) return c.leadingAt.find((t) => t >= t0);
        return undefined;
      }, { timeoutMs: 30_000, intervalMs: 10 });
      out.push(next - t0);
      say(`${o.label} trial ${trial + 1}: ${next - t0} ms`);
      launch(old);
      await waitFor(`${o.label}: restarted candidate ready`, () => (cands[old]!.ready ? true : undefined), { timeoutMs: 30_000, intervalMs: 50 });
      // Let the new candidate's campaign reach etcd before the next kill.
      await sleep(500);
    }
  } finally {
    await Promise.all(cands.map((c) => stopChild(c.child, 2000)));
  }
  return out;
}
