// Process helpers over /proc: a PID is only ever signalled together with its start time, so a recycled PID is never hit.
import { readdirSync, readFileSync } from 'node:fs';
import { monoMs, sleep } from '../lib/time.js';

export interface ProcRef {
  pid: number;
  /** /proc/PID/stat field 22 (start time in clock ticks since boot). */
  start: string;
}

interface StatInfo {
  state: string;
  start: string;
  pgrp: number;
}

/** Parses /proc/PID/stat text; the command name may contain spaces and parentheses, so fields are counted after the last ')'. */
export function parseStat(text: string): StatInfo | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = text.slice(close + 2).trim().split(/\s+/);
  // rest[0] is field 3 (state), so field N is rest[N - 3].
  const state = rest[0];
  const pgrp = Number(rest[2]);
  const start = rest[19];
  if (state === undefined || start === undefined || !Number.isInteger(pgrp)) return undefined;
  return { state, start, pgrp };
}

function readStat(pid: number): StatInfo | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

export function startTime(pid: number): string | undefined {
  return readStat(pid)?.start;
}

export function procRef(pid: number): ProcRef | undefined {
  const start = startTime(pid);
  return start === undefined ? undefined : { pid, start };
}

/** Alive and still the same process; zombies count as gone (PID 1 here reaps late). */
export function isSameAlive(ref: ProcRef): boolean {
  const st = readStat(ref.pid);
  return st !== undefined && st.start === ref.start && st.state !== 'Z' && st.state !== 'X';
}

export function listPids(): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (/^\d+$/.test(entry)) out.push(Number(entry));
  }
  return out;
}

export function readCmdline(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((a) => a.length > 0);
  } catch {
    return undefined;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** True when an argument names `dir` or a path under it (and not a sibling such as dir + "x"). */
export function mentionsDir(args: readonly string[], dir: string): boolean {
  const re = new RegExp(`${escapeRegExp(dir.replace(/\/+$/, ''))}(?:/|$|[^A-Za-z0-9_.-])`);
  return args.some((a) => re.test(a));
}

/** Every process (other than this one) whose command line mentions dir. */
export function findByCmdline(dir: string): ProcRef[] {
  const out: ProcRef[] = [];
  for (const pid of listPids()) {
    if (pid === process.pid) continue;
    const args = readCmdline(pid);
    if (!args || !mentionsDir(args, dir)) continue;
    const ref = procRef(pid);
    if (ref) out.push(ref);
  }
  return out;
}

/** Signals the process (and its process group when it leads one) if it is still the same process. */
export function signalRef(ref: ProcRef, sig: NodeJS.Signals): boolean {
  const st = readStat(ref.pid);
  if (!st || st.start !== ref.start || ref.pid === process.pid) return false;
  try {
    if (st.pgrp === ref.pid && ref.pid !== process.pid) process.kill(-ref.pid, sig);
    else process.kill(ref.pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Waits (bounded) until none of refs is alive; returns those still alive at the deadline. */
export async function waitGone(refs: readonly ProcRef[], timeoutMs: number): Promise<ProcRef[]> {
  const deadline = monoMs() + timeoutMs;
  let alive = refs.filter(isSameAlive);
  while (alive.length > 0 && monoMs() < deadline) {
    await sleep(20);
    alive = alive.filter(isSameAlive);
  }
  return alive;
}
