// Storage failover in the lab (loop volumes): time from a fault on the storage leader to the first successful
// INSERT through the storage VIP, for kill -9 (with the link down, as a powered-off machine), partition and drain.
// Baseline in the same run: the same faults with Patroni-like timing (leader TTL 30 s). Patroni's followers also
// wait up to loop_wait (10 s) before acting; ours react to the key's deletion at once, so the baseline is a lower
// bound for Patroni. Needs `npm run build` (the lab runs dist/).
// Drain is measured as write unavailability: the longest time between two acknowledged INSERTs of a probe that
// starts one INSERT every 100 ms (overlapping) around the switchover. Each trial also prints where the time
// went, from the agents' logs (election, each takeover step, VIP), and a per-phase summary follows the totals.
// With --ceph the volumes are RBD images of a real Ceph cluster in the lab (an OSD on each of two storage nodes,
// mapped through rbd-fuse); --faults picks a subset (comma-separated: kill,partition,drain).
// --probe wire (default) sends the INSERTs from one in-process client in c1, each on a fresh connection; --probe
// psql starts a psql per INSERT, as the bench did until session 8 (ten process starts a second on the CPUs whose
// switchover it times).
// Usage: node --import tsx bench/storage-failover.ts [--trials 20] [--baseline-trials 3] [--budget-min 40] [--ceph] [--faults drain] [--probe wire|psql] [--keep-logs DIR]
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { healNode, killNode, partitionNode } from '../src/lab/faults.js';
import { labUp, startAgent } from '../src/lab/lab.js';
import { nsName } from '../src/lab/names.js';
import { destroyLab, labDir } from '../src/lab/registry.js';
import { run } from '../src/lib/exec.js';
import { monoMs, sleep, waitFor } from '../src/lib/time.js';
import { labStatus, ycluster } from '../test/helpers/lab.js';
import { InsertProbe, STORAGE_NODES, STORAGE_VIP, firstInsertAfter, holders, psql } from '../test/lab/storage-probe.js';
import { summarize, table } from './lib/report.js';
import { breakdown } from './lib/storage-timeline.js';

const { values } = parseArgs({ options: { trials: { type: 'string', default: '20' }, 'baseline-trials': { type: 'string', default: '3' }, 'budget-min': { type: 'string', default: '40' }, name: { type: 'string', default: 'ycbsf' }, 'keep-logs': { type: 'string' }, ceph: { type: 'boolean', default: false }, faults: { type: 'string', default: 'kill,partition,drain' }, probe: { type: 'string', default: 'wire' } } });
if (values.probe !== 'wire' && values.probe !== 'psql') throw new Error(`--probe: "${values.probe}" is neither wire nor psql`);
/** wire: INSERTs from one in-process client in c1; psql: a psql process per INSERT (the probe until session 8). */
const client: 'wire' | 'psql' = values.probe;
const trials = Math.max(1, Math.min(100, Number(values.trials)));
const baseTrials = Math.max(0, Math.min(20, Number(values['baseline-trials'])));
const deadline = monoMs() + Number(values['budget-min']) * 60_000;
const name = values.name;
const say = (m: string): void => void process.stderr.write(`${m}\n`);
type Fault = 'kill -9' | 'partition' | 'drain';
const FAULT_NAMES: Record<string, Fault> = { kill: 'kill -9', partition: 'partition', drain: 'drain' };
const FAULTS: Fault[] = values.faults.split(',').map((f) => {
  const fault = FAULT_NAMES[f.trim()];
  if (!fault) throw new Error(`--faults: unknown fault "${f}" (kill, partition, drain)`);
  return fault;
});
let nextId = 1;
/** Nodes that can lead storage: the core nodes and the storage nodes of the lab below. */
const NODES = values.ceph ? [...STORAGE_NODES, 's5'] : STORAGE_NODES;
/** How long after the first INSERT a kill or partition trial waits before it reads the new leader's timeline. */
const READY_LAG_MS = 4000;

async function leader(): Promise<string> {
  let why = 'no status yet';
  return waitFor('a storage leader serving through the VIP', async () => {
    const s = await labStatus(name).catch(() => undefined);
    const l = s?.leaders.storage;
    why = s ? `leader ${l ?? 'none'}; ${s.reasons.join('; ') || 'healthy'}` : 'no status';
    if (!s?.healthy || !l) return undefined;
    const h = await holders(name, STORAGE_VIP, NODES);
    why = `leader ${l}; VIP on ${h.join(',') || 'nobody'}`;
    if (h.join() !== l) return undefined;
    return (await psql(name, 'SELECT 1', { timeoutS: 1 })).ok ? l : undefined;
  }, { timeoutMs: 180_000, intervalMs: 300 }).catch((err: unknown) => {
    throw new Error(`${String(err)}; last seen: ${why}`);
  });
}

/** Drain with a probe running: the longest write gap around the switchover, and when writes resumed. */
async function drainTrial(l: string, timeoutMs: number): Promise<{ ms: number; t0: number; resumed: number } | undefined> {
  const probe = new InsertProbe(name, 't', nextId++ * 1000, { boundMs: timeoutMs + 10_000, client });
  try {
    await waitFor('writes before the drain', () => (probe.attempts.filter((a) => a.ok).length >= 3 ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 });
    const t0 = monoMs();
    const d = await ycluster(['lab', 'exec', name, 's1', '--', 'ycluster', 'node', 'drain', l]);
    if (d.code !== 0) throw new Error(`drain failed: ${d.stderr}`);
    // Done when the old leader has let the VIP go and an INSERT started after that was acknowledged: only
    // another node can have answered it. Only the old leader is looked at: each look starts an `ip`, and looking
    // at every node (five processes a poll, as until session 10) loaded the CPUs whose switchover is measured.
    // The gap itself comes from the probe's acknowledged INSERTs, not from this poll.
    const moved = await waitFor('the VIP gone from the old leader', async () => {
      const h = await holders(name, STORAGE_VIP, [l]);
      return h.length === 0 ? monoMs() : undefined;
    }, { timeoutMs, intervalMs: 250 }).catch(() => undefined);
    if (moved === undefined) return undefined;
    const after = await waitFor('a write on the new leader', () => probe.firstOkAfter(moved), { timeoutMs, intervalMs: 20 }).catch(() => undefined);
    if (after === undefined) return undefined;
    await probe.stop();
    const ms = probe.longestGap(t0 - 1000, after);
    const resumed = probe.attempts.filter((a) => a.ok && a.end <= after).map((a) => a.end).sort((a, b) => a - b).find((e, i, all) => i > 0 && e - all[i - 1]! === ms) ?? after;
    return { ms, t0, resumed };
  } finally {
    await probe.stop();
  }
}

const phaseTimes = new Map<string, Map<string, number[]>>();

function notePhases(series: string, fault: Fault, phases: Map<string, number>): void {
  const key = `${series}\t${fault}`;
  const m = phaseTimes.get(key) ?? new Map<string, number[]>();
  phaseTimes.set(key, m);
  for (const [k, v] of phases) if (!Number.isNaN(v)) m.set(k, [...(m.get(k) ?? []), v]);
}

/**
 * On Ceph a trial starts only once every placement group is active+clean again: a restored OSD first has to
 * catch up on what was written without it, and a fault before that is a double fault (with two OSDs, PGs whose
 * only current copy sat on the next victim go down until it returns; seen as trials with no write in 60 s).
 */
async function cephRecovered(): Promise<void> {
  if (!values.ceph) return;
  let last = '';
  let cleanSince: number | undefined;
  const ceph = (args: string[]) => run('ip', ['netns', 'exec', nsName(name, 'c1'), 'ceph', '-c', join(labDir(name), 'ceph', 'ceph.conf'), '--id', 'admin', ...args, '--format', 'json'], { timeoutMs: 20_000, allowFailure: true });
  // The mgr's PG figures lag the OSDs by a report interval: clean must hold for a few seconds with every OSD up.
  await waitFor('Ceph placement groups active+clean, every OSD up', async () => {
    const [pg, osd] = await Promise.all([ceph(['pg', 'stat']), ceph(['osd', 'stat'])]);
    if (pg.code !== 0 || osd.code !== 0) return undefined;
    const s = JSON.parse(pg.stdout) as { pg_summary?: { num_pgs: number; num_pg_by_state: { name: string; num: number }[] } };
    const o = JSON.parse(osd.stdout) as { num_osds?: number; num_up_osds?: number };
    const clean = s.pg_summary?.num_pg_by_state.find((x) => x.name === 'active+clean')?.num ?? 0;
    last = `${JSON.stringify(s.pg_summary?.num_pg_by_state ?? [])}, ${o.num_up_osds ?? '?'}/${o.num_osds ?? '?'} OSDs up`;
    const ok = s.pg_summary !== undefined && clean === s.pg_summary.num_pgs && o.num_osds !== undefined && o.num_up_osds === o.num_osds;
    if (!ok) cleanSince = undefined;
    else cleanSince ??= monoMs();
    return cleanSince !== undefined && monoMs() - cleanSince >= 4000 ? true : undefined;
  }, { timeoutMs: 180_000, intervalMs: 1000 }).catch((err: unknown) => {
    throw new Error(`${String(err)}; last: ${last}`);
  });
}

/** One trial: fault, time to the first acknowledged INSERT (drain: the write gap), then restore the node. */
async function trial(series: string, fault: Fault, timeoutMs: number): Promise<number | undefined> {
  await cephRecovered();
  const l = await leader();
  if (fault === 'drain') {
    const r = await drainTrial(l, timeoutMs);
    await ycluster(['lab', 'exec', name, 's1', '--', 'ycluster', 'node', 'undrain', l]);
    if (r) explain(series, fault, l, r.t0, r.resumed);
    return r?.ms;
  }
  const t0 = monoMs();
  if (fault === 'kill -9') {
    await killNode(name, l);
    await partitionNode(name, l);
  } else {
    await partitionNode(name, l);
  }
  const t1 = await firstInsertAfter(name, 't', nextId++, timeoutMs, client);
  if (fault === 'kill -9') {
    await run('ip', ['-n', nsName(name, l), 'addr', 'flush', 'dev', 'eth0', 'to', `${STORAGE_VIP}/32`], { timeoutMs: 5000, allowFailure: true });
    await run('ip', ['-n', nsName(name, l), 'addr', 'flush', 'dev', 'eth0', 'to', '10.0.0.254/32'], { timeoutMs: 5000, allowFailure: true });
    await healNode(name, l);
    startAgent(name, l);
  } else {
    await healNode(name, l);
  }
  // The new leader logs its timeline once every volume's services answer: the registry's come up about a second
  // after the database that the INSERT reached.
  if (t1 !== undefined) {
    await sleep(READY_LAG_MS);
    explain(series, fault, l, t0, t1);
  }
  return t1 === undefined ? undefined : t1 - t0;
}

/** Prints where a trial's time went (monotonic instants turned into wall-clock for the agents' logs). */
function explain(series: string, fault: Fault, oldLeader: string, t0: number, t1: number): void {
  const toWall = (m: number): number => Date.now() - (monoMs() - m);
  const b = breakdown(name, NODES, oldLeader, toWall(t0), toWall(t1));
  notePhases(series, fault, b.phases);
  say(`    ${b.text}`);
}

async function series(label: string, n: number, timeoutMs: number): Promise<(string | number)[][]> {
  const rows: (string | number)[][] = [];
  for (const fault of FAULTS) {
    const times: number[] = [];
    let failed = 0;
    for (let i = 0; i < n && monoMs() < deadline; i++) {
      const ms = await trial(label, fault, timeoutMs);
      if (ms === undefined) failed++;
      else times.push(ms);
      say(`${label} ${fault} #${i + 1}: ${ms === undefined ? 'no write within the bound' : `${ms} ms`}`);
    }
    const s = summarize(times);
    rows.push([label, fault, s.n, failed, s.p50, s.p99, s.min, s.max]);
  }
  return rows;
}

const loadStart = loadavg().map((x) => x.toFixed(2)).join(' ');

async function main(): Promise<void> {
  say(`bringing up lab ${name} (load average ${loadStart})`);
  await labUp({ name, core: 3, storage: values.ceph ? 2 : 1, compute: 1, frontend: 0, ceph: values.ceph, progress: say });
  try {
    await leader();
    const c = await psql(name, 'CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY)');
    if (!c.ok) throw new Error(c.err);
    const rows = await series(`ycluster (TTL 3 s${values.ceph ? ', Ceph' : ''})`, trials, values.ceph ? 60_000 : 30_000);
    if (baseTrials > 0) {
      say('baseline: electionTtlSeconds 30; restarting agents so their elections use it');
      const set = await ycluster(['lab', 'exec', name, 's1', '--', 'ycluster', 'config', 'set', 'electionTtlSeconds', '30']);
      if (set.code !== 0) throw new Error(`config set failed: ${set.stderr}`);
      for (const n of NODES) {
        await ycluster(['lab', 'stop', name, n]);
        await ycluster(['lab', 'start', name, n]);
        await waitFor('lab healthy', async () => ((await labStatus(name).catch(() => undefined))?.healthy ? true : undefined), { timeoutMs: 180_000, intervalMs: 500 });
      }
      rows.push(...(await series('Patroni-like (TTL 30 s)', baseTrials, 120_000)));
    }
    process.stdout.write(`\nStorage failover: fault → first INSERT acknowledged through ${STORAGE_VIP}:5432 (ms)\n`);
    process.stdout.write(table(['timing', 'fault', 'n', 'failed', 'p50', 'p99', 'min', 'max'], rows));
    process.stdout.write(`(drain: longest gap between acknowledged INSERTs, probing every 100 ms; probe: ${client === 'wire' ? 'one in-process client in c1' : 'a psql process per INSERT'})\n`);
    process.stdout.write('\nWhere the time went: ms after the fault (or duration where marked), from the agents\' logs\n');
    const prow: (string | number)[][] = [];
    for (const [key, m] of phaseTimes) {
      const [series, fault] = key.split('\t');
      const order = [...m.entries()].sort((a, b) => summarize(a[1]).p50 - summarize(b[1]).p50);
      for (const [phase, v] of order) {
        const s = summarize(v);
        prow.push([series!, fault!, phase, s.n, s.p50, s.max]);
      }
    }
    process.stdout.write(table(['timing', 'fault', 'phase', 'n', 'p50', 'max'], prow));
    process.stdout.write(`\nload average at start ${loadStart}, at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
  } finally {
    const keep = values['keep-logs'];
    if (keep) {
      await run('cp', ['-r', join(labDir(name), 'nodes'), keep], { timeoutMs: 60_000, allowFailure: true });
      if (values.ceph) await run('cp', ['-r', join(labDir(name), 'ceph', 'log'), join(keep, 'ceph-log')], { timeoutMs: 60_000, allowFailure: true });
    }
    await destroyLab(name).catch((err: unknown) => say(`cleanup: ${String(err)}`));
  }
}

main().catch((err: unknown) => {
  say(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
