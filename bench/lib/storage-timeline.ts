// Where a storage failover's time went: the agents' logs (election and storage-leader step lines, wall-clock)
// lined up against the bench's own fault and first-INSERT instants.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { labDir } from '../../src/lab/registry.js';

interface LogLine {
  t: string;
  msg: string;
  election?: string;
  token?: number;
  phase?: string;
  step?: string;
  at?: string;
  end?: string;
  ms?: number;
  totalMs?: number;
  outcome?: string;
}

export interface Breakdown {
  /** Phase name → ms (offsets from the fault unless the name says otherwise). */
  phases: Map<string, number>;
  /** One line for the trial's log. */
  text: string;
}

function readLog(lab: string, node: string, fromMs: number, toMs: number): LogLine[] {
  const path = join(labDir(lab), 'nodes', node, 'agent.log');
  if (!existsSync(path)) return [];
  const out: LogLine[] = [];
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    if (!raw.includes('"storage') && !raw.includes('leading')) continue;
    try {
      const l = JSON.parse(raw) as LogLine;
      const t = Date.parse(l.t);
      if (t >= fromMs && t <= toMs) out.push(l);
    } catch {
      /* not a log line (a child's output) */
    }
  }
  return out;
}

/**
 * From the storage-capable nodes' logs between the fault (wall ms) and 10 s after the first INSERT (a takeover is
 * ready only once every volume's services answer, and the registry's come up after the database's):
 * fault → old leader stopped (and its step-down steps) → new leader elected → each takeover step (end offset)
 * → ready → first INSERT.
 */
export function breakdown(lab: string, nodes: readonly string[], oldLeader: string, faultWall: number, insertWall: number): Breakdown {
  const phases = new Map<string, number>();
  const parts: string[] = [];
  const off = (iso: string | undefined): number => (iso ? Date.parse(iso) - faultWall : NaN);
  const old = readLog(lab, oldLeader, faultWall - 50, insertWall + 10_000);
  const stopped = old.find((l) => l.msg === 'stopped leading' && l.election === 'storage');
  if (stopped) {
    phases.set('old leader stopped leading', off(stopped.t));
    const down = old.find((l) => l.msg === 'storage timeline' && l.phase === 'stepDown');
    if (down?.totalMs !== undefined) phases.set('old leader step-down (duration)', down.totalMs);
    for (const s of old.filter((l) => l.msg === 'storage step' && l.phase === 'stepDown')) phases.set(`old: ${s.step} (duration)`, s.ms ?? NaN);
    parts.push(`old stopped +${off(stopped.t)}${down?.totalMs !== undefined ? ` (step-down ${down.totalMs} ms)` : ''}`);
  }
  // The new leader: the node whose takeover became ready nearest to the first acknowledged INSERT (its
  // 'ready' line may be written a moment after the VIP already answers).
  let best: { node: string; ready: LogLine; lines: LogLine[] } | undefined;
  const dist = (l: LogLine): number => Math.abs(Date.parse(l.t) - insertWall);
  for (const node of nodes) {
    const lines = readLog(lab, node, faultWall - 50, insertWall + 10_000);
    // 'storage leader ready' alone: an agent built before the step timeline existed.
    const readies = lines.filter((l) => l.msg === 'storage timeline' && l.phase === 'lead' && l.outcome === 'ready');
    for (const r of readies.length ? readies : lines.filter((l) => l.msg === 'storage leader ready')) {
      if (!best || dist(r) < dist(best.ready)) best = { node, ready: r, lines };
    }
  }
  if (!best) return { phases, text: `${parts.join('; ')}; no takeover found in the logs between ${new Date(faultWall).toISOString()} and ${new Date(insertWall).toISOString()}` };
  const token = best.ready.token;
  const elected = best.lines.find((l) => l.msg === 'leading' && l.election === 'storage' && l.token === token);
  if (elected) phases.set('new leader elected', off(elected.t));
  const steps = best.lines.filter((l) => l.msg === 'storage step' && l.phase === 'lead' && l.token === token);
  for (const s of steps) {
    phases.set(`step: ${s.step} (duration)`, s.ms ?? NaN);
    if (s.step === 'claim VIP') phases.set('VIP claimed', off(s.end));
  }
  phases.set('takeover (elected → ready)', best.ready.totalMs ?? (elected ? Date.parse(best.ready.t) - Date.parse(elected.t) : NaN));
  phases.set('ready', off(best.ready.t));
  phases.set('first INSERT', insertWall - faultWall);
  parts.push(`${best.node} elected +${elected ? off(elected.t) : '?'}`);
  parts.push(steps.map((s) => `${s.step} ${s.ms}ms→+${off(s.end)}`).join(', '));
  parts.push(`ready +${off(best.ready.t)}`, `INSERT +${insertWall - faultWall}`);
  return { phases, text: parts.join(' | ') };
}
