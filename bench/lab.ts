// Lab benchmark: bring-up time, 'dhcp' leader handover after kill -9 and after SIGTERM, and etcd load at
// steady state, each printed beside a baseline measured in the same run (etcd's own readiness, the etcd3
// package's Election on a local 3-member etcd with the same TTL and timers, etcd's put throughput).
// Needs root and `npm run build` (the lab runs dist/main.js).
// Usage: node --import tsx bench/lab.ts [--trials 20] [--steady-seconds 60] [--budget-min 45] [--name ybl]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { run } from '../src/lib/exec.js';
import { sleep, waitFor } from '../src/lib/time.js';
import { killNode, stopNode } from '../src/lab/faults.js';
import { fetchStatus, labMeta, stopAgent } from '../src/lab/lab.js';
import { ADMIN_NODE, nsName } from '../src/lab/names.js';
import { labDir, listNetns } from '../src/lab/registry.js';
import { defaultConfig } from '../src/state/schema.js';
import { readJournals } from '../test/helpers/lab.js';
import { Cleanup } from './lib/cleanup.js';
import { electionHandover } from './lib/election-handover.js';
import { LAB_ENDPOINTS, inAdmin, label, moveRaftLeader, raftView, scrapeCounters } from './lib/lab-probe.js';
import { startEtcdCluster } from './lib/procs.js';
import { say, summarize, table } from './lib/report.js';

const MAIN = 'dist/main.js';
const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '20' },
    'steady-seconds': { type: 'string', default: '60' },
    'budget-min': { type: 'string', default: '45' },
    name: { type: 'string', default: `ybl${Math.random().toString(36).slice(2, 5)}` },
  },
});
const trials = Math.max(1, Math.min(200, Number(values.trials)));
const steadySeconds = Math.max(5, Math.min(600, Number(values['steady-seconds'])));
const deadline = Date.now() + Number(values['budget-min']) * 60_000;
const name = values.name;
const NODES = 5;
const TTL = defaultConfig.electionTtlSeconds;
// The timers the lab's agents give their etcd members (src/lab/lab.ts), for the baselines.
const LAB_HEARTBEAT_MS = 100;
const LAB_ELECTION_MS = 1000;
const cleanup = new Cleanup();

const cli = (args: string[], timeoutMs = 60_000) => run(process.execPath, [MAIN, ...args], { timeoutMs, allowFailure: true });

// ---- (a) bring-up --------------------------------------------------------------------------------------

interface BringUp {
  agentsStartedMs: number;
  etcdHealthyMs: number;
  allHealthyMs: number;
  /** Why the lab did not become healthy (the run goes on with a weaker notion of settled). */
  failure?: string;
}

/** Whether `lab up` reached all-healthy; when not, trials wait only for what they need (see settled). */
let strictHealth = true;
/** How long a trial waits for full health before settling for what the dhcp handover needs. */
const STRICT_WAIT_MS = 30_000;
const notes: string[] = [];

/** Polls the three members' /health from the admin namespace; prints the time all three first answered. */
const ETCD_POLLER = `
const urls = ${JSON.stringify(LAB_ENDPOINTS.map((e) => `http://${e}/health`))};
const stop = Date.now() + 120000;
(async () => {
  while (Date.now() < stop) {
    const ok = await Promise.all(urls.map((u) => fetch(u, { signal: AbortSignal.timeout(500) }).then((r) => r.json()).then((b) => b.health === 'true').catch(() => false)));
    if (ok.every(Boolean)) { console.log('ETCD-HEALTHY ' + Date.now()); return; }
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log('ETCD-TIMEOUT');
})();`;

async function bringUp(): Promise<BringUp> {
  cleanup.add(`lab ${name}`, async () => {
    const r = await cli(['lab', 'down', name], 120_000);
    if (r.code !== 0 && existsSync(`/run/ycluster/labs/${name}`)) say(`lab down ${name}: ${r.stderr.trim()}`);
  });
  const t0 = Date.now();
  let agentsAt = NaN;
  let healthyAt = NaN;
  // Kept on failure, so the handover and load figures can still be taken from a lab whose other roles are broken.
  const up = spawn(process.execPath, [MAIN, 'lab', 'up', '--name', name, '--core', '3', '--storage', '1', '--compute', '1'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, YCLUSTER_LAB_KEEP_ON_FAILURE: '1' } });
  cleanup.child('lab up', up, 5000);
  let log = '';
  up.stderr.on('data', (d: Buffer) => {
    const s = d.toString();
    log += s;
    if (Number.isNaN(agentsAt) && /starting agents/.test(log)) agentsAt = Date.now();
    if (Number.isNaN(healthyAt) && /all nodes healthy/.test(log)) healthyAt = Date.now();
  });
  up.stdout.resume();
  const exited = new Promise<number>((resolve) => up.once('exit', (code) => resolve(code ?? 1)));
  // The admin namespace is made before the agents start; poll etcd from it.
  const adm = nsName(name, ADMIN_NODE);
  await waitFor('lab admin namespace', async () => ((await listNetns()).includes(adm) ? true : undefined), { timeoutMs: 60_000, intervalMs: 50 });
  const poller = spawn('ip', ['netns', 'exec', adm, process.execPath, '-e', ETCD_POLLER], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup.child('etcd health poller', poller, 1000);
  let pollOut = '';
  poller.stdout.on('data', (d: Buffer) => void (pollOut += d.toString()));
  const polled = new Promise<void>((resolve) => poller.once('exit', () => resolve()));
  const code = await Promise.race([exited, sleep(180_000).then(() => -1)]);
  await Promise.race([polled, sleep(5000)]);
  const etcdAt = Number(/ETCD-HEALTHY (\d+)/.exec(pollOut)?.[1] ?? NaN);
  const res: BringUp = { agentsStartedMs: agentsAt - t0, etcdHealthyMs: etcdAt - t0, allHealthyMs: healthyAt - t0 };
  if (code !== 0) {
    if (!existsSync(`/run/ycluster/labs/${name}`) || Number.isNaN(etcdAt)) throw new Error(`lab up exited with ${code}:\n${log.slice(-2000)}`);
    strictHealth = false;
    res.failure = /lab not healthy after[^\n]*/.exec(log)?.[0] ?? `lab up exited with ${code}`;
  }
  return res;
}

// ---- waiting for a settled lab ----------------------------------------------------------------------

/**
 * The lab is ready for the next trial: healthy (or, when bring-up never reached that, every node alive),
 * a dhcp leader, 3 etcd members with a raft leader; `fresh` must have sent a heartbeat since `since`.
 */
async function settled(fresh?: { node: string; since: number }): Promise<{ dhcp: string; raft: string }> {
  const { apiPort } = labMeta(name);
  let why = '';
  const not = (w: string): undefined => void (why = w);
  const t0 = Date.now();
  try {
    return await waitFor('lab settled, a dhcp leader and 3 etcd members', async () => {
      const s = await fetchStatus(apiPort).catch((err: unknown) => not(`status: ${String(err)}`));
      if (!s) return undefined;
      if (s.nodes.length !== NODES || !s.leaders.dhcp) return not(`${s.nodes.length} nodes, dhcp leader ${s.leaders.dhcp ?? '-'}`);
      const strict = strictHealth && Date.now() - t0 < STRICT_WAIT_MS;
      if (strict ? !s.healthy : !s.nodes.every((n) => n.alive)) return not(s.reasons.join('; '));
      if (!s.healthy) notes.push(`went on without full health after ${STRICT_WAIT_MS / 1000} s: ${s.reasons.join('; ').slice(0, 300)}`);
      if (fresh) {
        const n = s.nodes.find((x) => x.hostname === fresh.node);
        if (n?.heartbeatAgeSeconds == null || n.heartbeatAgeSeconds > (Date.now() - fresh.since) / 1000) return not(`${fresh.node}: no heartbeat since its restart`);
      }
      const v = await raftView(name);
      if (v.healthy !== 3 || !v.leader) return not(`etcd: ${v.healthy} members answer, raft leader ${v.leader ?? '-'}`);
      return { dhcp: s.leaders.dhcp, raft: v.leader };
    }, { timeoutMs: 120_000, intervalMs: 300 });
  } catch (err) {
    const node = fresh?.node;
    const log = node ? tail(join(labDir(name), 'nodes', node, 'agent.log'), 5) : '';
    throw new Error(`${err instanceof Error ? err.message : String(err)}; last: ${why}${log ? `\n${node} agent.log:\n${log}` : ''}`);
  }
}

function tail(path: string, lines: number): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => l.slice(0, 400)).join('\n');
  } catch {
    return '';
  }
}

async function restart(node: string): Promise<void> {
  const since = Date.now();
  const r = await cli(['lab', 'start', name, node]);
  if (r.code !== 0) throw new Error(`lab start ${node}: ${r.stderr}`);
  await settled({ node, since });
}

const journalAfter = (pred: (j: ReturnType<typeof readJournals>[number]) => boolean, timeoutMs = 30_000) =>
  waitFor('journal entry', () => readJournals(name).find(pred), { timeoutMs, intervalMs: 20 });

// ---- (b) kill -9 of the dhcp leader ------------------------------------------------------------------

interface KillTrial { ms: number; raftToo: boolean }

async function killTrials(out: KillTrial[]): Promise<void> {
  for (let i = 0; i < trials; i++) {
    if (cleanup.stopping) throw new Error('interrupted');
    if (Date.now() > deadline) {
      say(`kill -9: time budget spent after ${i} trials`);
      break;
    }
    let { dhcp } = await settled();
    // Alternate: half the trials the killed node also leads etcd's raft, half it does not.
    const wantRaft = i % 2 === 0;
    const target = wantRaft ? dhcp : ['s1', 's2', 's3'].find((n) => n !== dhcp)!;
    await moveRaftLeader(name, target);
    await sleep(1500);
    ({ dhcp } = await settled());
    const raftToo = (await raftView(name)).leader === dhcp;
    const t0 = Date.now();
    await killNode(name, dhcp);
    const next = await journalAfter((j) => j.election === 'dhcp' && j.event === 'leading' && j.node !== dhcp && j.t >= t0);
    out.push({ ms: next.t - t0, raftToo });
    say(`kill -9 trial ${i + 1}: ${dhcp}${raftToo ? ' (also etcd raft leader)' : ''} → ${next.node} after ${next.t - t0} ms`);
    await restart(dhcp);
  }
}

// ---- (c) SIGTERM of the dhcp leader ------------------------------------------------------------------

interface StopTrial { gapMs: number; fromSignalMs: number }

async function stopTrials(out: StopTrial[]): Promise<void> {
  for (let i = 0; i < trials; i++) {
    if (cleanup.stopping) throw new Error('interrupted');
    if (Date.now() > deadline) {
      say(`SIGTERM: time budget spent after ${i} trials`);
      break;
    }
    const { dhcp } = await settled();
    const t0 = Date.now();
    // As `ycluster lab stop` and systemd (KillMode=mixed) do it: the agent first, then what is left.
    await stopAgent(name, dhcp);
    await stopNode(name, dhcp);
    const stopped = await journalAfter((j) => j.election === 'dhcp' && j.event === 'stopped' && j.node === dhcp && j.t >= t0);
    const next = await journalAfter((j) => j.election === 'dhcp' && j.event === 'leading' && j.node !== dhcp && j.t >= stopped.t);
    out.push({ gapMs: next.t - stopped.t, fromSignalMs: next.t - t0 });
    say(`SIGTERM trial ${i + 1}: ${dhcp} stopped → ${next.node} leading after ${next.t - stopped.t} ms (${next.t - t0} ms after the signal)`);
    await restart(dhcp);
  }
}

// ---- (d) etcd load at steady state -------------------------------------------------------------------

const COUNTERS = ['grpc_server_handled_total', 'grpc_server_msg_received_total'];

interface Steady { minutes: number; unary: number; load: number; received: number; byMethod: [string, number][]; puts: Record<string, number>; putsSerial: Record<string, number> }

async function steadyLoad(): Promise<Steady> {
  await settled();
  // Let bring-up's writes (registration, first elections, status) pass before counting.
  await sleep(10_000);
  const a = await scrapeCounters(name, COUNTERS);
  const load = loadavg()[0]!;
  const t0 = Date.now();
  await sleep(steadySeconds * 1000);
  const b = await scrapeCounters(name, COUNTERS);
  const minutes = (Date.now() - t0) / 60_000;
  const delta = (metric: string): Map<string, number> => {
    const m = new Map<string, number>();
    for (const [k, v] of b) if (k.startsWith(metric + '{')) m.set(k, v - (a.get(k) ?? 0));
    return m;
  };
  const sum = (m: Map<string, number>): number => [...m.values()].reduce((x, y) => x + y, 0);
  const received = delta('grpc_server_msg_received_total');
  const byMethod = new Map<string, number>();
  for (const [k, v] of received) {
    const m = `${label(k, 'grpc_method')} (${label(k, 'grpc_type')})`;
    byMethod.set(m, (byMethod.get(m) ?? 0) + v);
  }
  const putLoad = async (concurrency: number, count: number): Promise<Record<string, number>> => {
    const self = fileURLToPath(new URL('./lib/put-load.ts', import.meta.url));
    const r = await inAdmin(name, process.execPath, ['--import', 'tsx', self, '--endpoints', LAB_ENDPOINTS.join(','), '--count', String(count), '--concurrency', String(concurrency), '--seconds', '20'], 60_000);
    const m = /PUTS (\{.*\})/.exec(r.stdout);
    if (!m) throw new Error(`put-load: ${r.stderr.slice(-500)}`);
    return JSON.parse(m[1]!) as Record<string, number>;
  };
  return {
    minutes,
    load,
    unary: sum(delta('grpc_server_handled_total')),
    received: sum(received),
    byMethod: [...byMethod].filter(([, v]) => v > 0).sort((x, y) => y[1] - x[1]),
    puts: await putLoad(32, 10_000),
    putsSerial: await putLoad(1, 1000),
  };
}

// ---- baseline: election handover on a local etcd -----------------------------------------------------

async function baselineHandover(): Promise<{ bootMs: number; etcd3: number[]; ours: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'yc-bench-lab-'));
  cleanup.add('baseline etcd dir', () => rmSync(dir, { recursive: true, force: true }));
  const t0 = Date.now();
  const basePort = 23_000 + (process.pid % 1000) * 8;
  const etcd = await startEtcdCluster(cleanup, { size: 3, dir, basePort, heartbeatMs: LAB_HEARTBEAT_MS, electionMs: LAB_ELECTION_MS });
  const bootMs = Date.now() - t0;
  const eps = etcd.endpoints.join(',');
  const tsx = (file: string, ...args: string[]): string[] => [process.execPath, '--import', 'tsx', fileURLToPath(new URL(file, import.meta.url)), ...args];
  const etcd3 = await electionHandover({ label: 'etcd3 Election', cleanup, trials, deadline, command: (i) => tsx('./lib/etcd3-election-child.ts', eps, 'bench', `n${i}`, String(TTL)) });
  const ours = await electionHandover({ label: 'ycluster Election (local)', cleanup, trials, deadline, command: (i) => tsx('../test/helpers/campaign-child.ts', eps, 'bench', `n${i}`, String(TTL)) });
  return { bootMs, etcd3, ours };
}

// ---- main ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!existsSync(MAIN)) throw new Error('dist/main.js missing: run npm run build first');
  say(`lab ${name}: bring-up (3 core, 1 storage, 1 compute)`);
  const up = await bringUp();
  say(`bring-up: agents started +${up.agentsStartedMs} ms, etcd healthy +${up.etcdHealthyMs} ms, all healthy +${up.allHealthyMs} ms${up.failure ? ` (NOT healthy: ${up.failure})` : ''}`);
  // A phase that fails (a node that does not come back) ends the lab part; what was measured is still printed.
  const problems: string[] = [];
  const phase = async (what: string, fn: () => Promise<void>): Promise<void> => {
    if (problems.length) return;
    say(what);
    try {
      await fn();
    } catch (err) {
      if (cleanup.stopping) throw err;
      problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      say(`FAILED ${problems.at(-1)}`);
    }
  };
  let steady: Steady | undefined;
  const kills: KillTrial[] = [];
  const stops: StopTrial[] = [];
  await phase(`steady state for ${steadySeconds} s`, async () => void (steady = await steadyLoad()));
  await phase('kill -9 trials', () => killTrials(kills));
  await phase('SIGTERM trials', () => stopTrials(stops));
  await cli(['lab', 'down', name], 120_000);
  say('baselines on a local 3-member etcd');
  const base = await baselineHandover();

  const s = (label: string, v: number[], note = ''): unknown[] => {
    const x = summarize(v);
    return [label, x.n, x.p50, x.p99, x.min, x.max, note];
  };
  console.log(`\nycluster lab benchmark — load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')} (2 cores, shared), TTL ${TTL} s, etcd heartbeat ${LAB_HEARTBEAT_MS} ms / election ${LAB_ELECTION_MS} ms (lab and baselines)\n`);
  console.log('(a) bring-up, 3 core + 1 storage + 1 compute (ms from `lab up`; goal all healthy ≤ 30,000)');
  if (up.failure) console.log(`    the lab did NOT become healthy: ${up.failure}\n    trials below waited for: every node alive, a dhcp leader, 3 etcd members`);
  console.log(table(['what', 'ms'], [
    ['agents started (network made)', up.agentsStartedMs],
    ['baseline: lab etcd, 3 members healthy', up.etcdHealthyMs],
    ['all nodes healthy', up.allHealthyMs],
    ['  of which after etcd was healthy', up.allHealthyMs - up.etcdHealthyMs],
    ['baseline: bare 3-member etcd on 127.0.0.1, start → healthy', base.bootMs],
  ]));
  console.log('(b,c) dhcp leader handover (ms)');
  console.log(table(['case', 'n', 'p50', 'p99', 'min', 'max', 'measured'], [
    s('kill -9, all', kills.map((k) => k.ms), 'kill → new leader journals leading'),
    s('kill -9, node also etcd raft leader', kills.filter((k) => k.raftToo).map((k) => k.ms), ''),
    s('kill -9, etcd raft leader elsewhere', kills.filter((k) => !k.raftToo).map((k) => k.ms), ''),
    s('baseline: etcd3 Election, kill -9', base.etcd3, 'local etcd, same TTL and timers'),
    s('ycluster Election, same harness', base.ours, 'local etcd, same TTL and timers'),
    s('SIGTERM (lab stop)', stops.map((x) => x.gapMs), "old 'stopped' → new 'leading'"),
    s('SIGTERM, from the signal', stops.map((x) => x.fromSignalMs), 'signal → new leading'),
  ]));
  if (steady) printSteady(steady);
  for (const p of problems) console.log(`PROBLEM: ${p}\n`);
  for (const n of [...new Set(notes)]) console.log(`NOTE: ${n}`);
}

function printSteady(steady: Steady): void {
  const perNodeMin = (v: number): number => v / NODES / steady.minutes;
  console.log(`(d) etcd requests at steady state: ${NODES} nodes, ${(steady.minutes * 60).toFixed(0)} s, summed over 3 members (load average ${steady.load.toFixed(1)})`);
  console.log(table(['counter', 'per node per minute', 'at 1,000 nodes (req/s, linear)'], [
    ['grpc_server_handled_total (calls and streams ended)', perNodeMin(steady.unary), (perNodeMin(steady.unary) * 1000) / 60],
    ['grpc_server_msg_received_total (incl. stream msgs)', perNodeMin(steady.received), (perNodeMin(steady.received) * 1000) / 60],
    ...steady.byMethod.map(([m, v]) => [`  received: ${m}`, perNodeMin(v), (perNodeMin(v) * 1000) / 60]),
  ]));
  console.log('  (linear: core-only work such as elections and roles is counted per node, so this overstates 1,000 nodes)\n');
  console.log('baseline: puts/s the lab etcd sustains (200 B values, from the admin namespace)');
  console.log(table(['client', 'puts', 'puts/s', 'p50 ms', 'p99 ms'], [
    ['32 in flight', steady.puts.done, steady.puts.perSecond, steady.puts.p50Ms, steady.puts.p99Ms],
    ['1 in flight', steady.putsSerial.done, steady.putsSerial.perSecond, steady.putsSerial.p50Ms, steady.putsSerial.p99Ms],
  ]));
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => cleanup.run());
