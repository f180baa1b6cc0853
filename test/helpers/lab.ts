// Drives `ycluster lab` the way an operator does: through the built CLI (run `npm run build` first).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ClusterStatus } from '../../src/inventory/cluster-status.js';
import { labDir } from '../../src/lab/registry.js';
import { waitFor } from '../../src/lib/time.js';

const exec = promisify(execFile);
export const MAIN = 'dist/main.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function ycluster(args: string[], timeoutMs = 120_000): Promise<CliResult> {
  if (!existsSync(MAIN)) throw new Error('dist/main.js missing: run npm run build before the lab tests');
  try {
    const r = await exec(process.execPath, [MAIN, ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export const uniqueLabName = (tag: string): string => `${tag}${Math.random().toString(36).slice(2, 5)}`.slice(0, 6);

export async function labStatus(name: string): Promise<ClusterStatus> {
  const r = await ycluster(['lab', 'status', name, '--json'], 15_000);
  return JSON.parse(r.stdout) as ClusterStatus;
}

export interface JournalLine {
  t: number;
  node: string;
  election: string;
  event: 'leading' | 'stopped';
  token?: number;
  reason?: string;
}

/** Every node's leadership journal, merged in time order. */
export function readJournals(name: string): JournalLine[] {
  const nodesDir = join(labDir(name), 'nodes');
  const out: JournalLine[] = [];
  for (const node of readdirSync(nodesDir)) {
    const path = join(nodesDir, node, 'data', 'journal.jsonl');
    if (!existsSync(path)) continue;
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (!line) continue;
      const j = JSON.parse(line) as Omit<JournalLine, 'node'> & { node: string };
      out.push({ ...j, node });
    }
  }
  return out.sort((a, b) => a.t - b.t);
}

/**
 * The last `count` lines of a node's agent log about storage (its role, its election, its decisions), shortened:
 * what a failing lab test prints so that a run in CI explains itself after the lab is gone.
 */
export function storageLogTail(name: string, node: string, count = 12): string[] {
  const path = join(labDir(name), 'nodes', node, 'agent.log');
  if (!existsSync(path)) return [`(no agent log for ${node})`];
  const lines = readFileSync(path, 'utf8').split('\n').filter((l) => /"(role|election)":"storage|"msg":"decision"/.test(l) && !l.includes('"level":"debug"'));
  return lines.slice(-count).map((l) => l.replace(/"mac":"[^"]*",?/, '').slice(0, 400));
}

/** Checks an election's journal: no leader starts before the previous one stopped (or died), tokens grow. */
export function overlaps(journal: JournalLine[], election: string, died: Map<string, number> = new Map()): string[] {
  const problems: string[] = [];
  let holder: { node: string; token: number; since: number } | undefined;
  let lastToken = 0;
  for (const e of journal.filter((j) => j.election === election)) {
    const death = holder ? died.get(holder.node) : undefined;
    if (holder && death !== undefined && death >= holder.since && death <= e.t) holder = undefined;
    if (e.event === 'leading') {
      if (holder) problems.push(`${e.node} started leading at ${e.t} while ${holder.node} still led`);
      if ((e.token ?? 0) <= lastToken) problems.push(`token ${e.token} of ${e.node} is not above ${lastToken}`);
      lastToken = e.token ?? 0;
      holder = { node: e.node, token: e.token ?? 0, since: e.t };
    } else if (holder?.node === e.node) holder = undefined;
  }
  return problems;
}

export async function waitForLeader(name: string, election: string, not: string | undefined, timeoutMs = 20_000): Promise<string> {
  return waitFor(`a leader of ${election} other than ${not ?? '-'}`, async () => {
    const s = await labStatus(name);
    const l = s.leaders[election];
    return l && l !== not ? l : undefined;
  }, { timeoutMs, intervalMs: 200 });
}

/** The time the journal shows `node` started leading `election` after `after`. */
export async function waitForJournal(name: string, pred: (j: JournalLine) => boolean, timeoutMs = 20_000): Promise<JournalLine> {
  return waitFor('journal entry', () => readJournals(name).find(pred), { timeoutMs, intervalMs: 50 });
}
