// Ceph lab benchmark: `lab up --ceph` bring-up time (until every node is healthy, the storage leader serving
// on RBD volumes) and memory (RSS sum of the ceph daemons and of the rbd-fuse mappings), beside the plain lab's
// bring-up (loop volumes) measured in the same run, trials alternating. Needs root and `npm run build`.
// Usage: node --import tsx bench/ceph-lab.ts [--trials 2] [--storage 2]
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { run } from '../src/lib/exec.js';
import { labDir } from '../src/lab/registry.js';
import { findByCmdline, readCmdline } from '../src/lab/proc.js';
import { Cleanup } from './lib/cleanup.js';
import { say, summarize, table } from './lib/report.js';

const MAIN = 'dist/main.js';
const { values } = parseArgs({ options: { trials: { type: 'string', default: '2' }, storage: { type: 'string', default: '2' } } });
const trials = Math.max(1, Math.min(10, Number(values.trials)));
const storage = Math.max(0, Math.min(4, Number(values.storage)));
const cleanup = new Cleanup();

interface Trial {
  /** Wall time of `lab up` (process start to exit). */
  totalMs: number;
  /** From `lab up`'s own progress lines. */
  cephMadeMs?: number;
  healthyMs?: number;
  cephRssMiB?: number;
  fuseRssMiB?: number;
  sessionRssMiB?: number;
  labRssMiB: number;
}

function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

const stamp = (stderr: string, what: RegExp): number | undefined => {
  const line = stderr.split('\n').find((l) => what.test(l));
  const m = line ? /^\[(\d+(?:\.\d+)?)s\]/.exec(line) : null;
  return m ? Math.round(Number(m[1]) * 1000) : undefined;
};

async function trial(ceph: boolean, n: number): Promise<Trial> {
  const name = `ybc${ceph ? 'c' : 'p'}${n}${Math.random().toString(36).slice(2, 4)}`.slice(0, 6);
  cleanup.add(`lab ${name}`, async () => void (await run(process.execPath, [MAIN, 'lab', 'down', name], { timeoutMs: 120_000, allowFailure: true })));
  const args = ['lab', 'up', '--name', name, '--core', '3', '--storage', String(storage), '--compute', '1', ...(ceph ? ['--ceph'] : [])];
  const t0 = Date.now();
  const up = await run(process.execPath, [MAIN, ...args], { timeoutMs: 400_000, allowFailure: true });
  const totalMs = Date.now() - t0;
  try {
    if (up.code !== 0) throw new Error(`lab up ${ceph ? '--ceph ' : ''}failed: ${up.stderr.split('\n').slice(-5).join(' | ')}`);
    const procs = findByCmdline(labDir(name));
    let cephKiB = 0;
    let fuseKiB = 0;
    let sessionKiB = 0;
    for (const p of procs) {
      const argv = readCmdline(p.pid) ?? [];
      const cmd = argv[0] ?? '';
      if (/^ceph-(mon|mgr|osd)$/.test(cmd)) cephKiB += rssKiB(p.pid);
      if (cmd === 'rbd-fuse') fuseKiB += rssKiB(p.pid);
      // The agents' long-lived Ceph clients (one per storage-capable node once it has used Ceph).
      if (argv[1]?.endsWith('ycluster-rados.py')) sessionKiB += rssKiB(p.pid);
    }
    // Every process of the lab: those in its namespaces (agents, etcd, postgres, ...) and those naming its dir.
    const ns = await run('ip', ['netns', 'list'], { timeoutMs: 5000 });
    const pids = new Set(procs.map((p) => p.pid));
    for (const line of ns.stdout.split('\n')) {
      const nsName = line.split(' ')[0] ?? '';
      if (!nsName.startsWith(`${name}-`)) continue;
      const r = await run('ip', ['netns', 'pids', nsName], { timeoutMs: 5000, allowFailure: true });
      for (const pid of r.stdout.split(/\s+/).filter(Boolean)) pids.add(Number(pid));
    }
    const labKiB = [...pids].reduce((s, pid) => s + rssKiB(pid), 0);
    const out: Trial = { totalMs, labRssMiB: Math.round(labKiB / 1024) };
    const made = stamp(up.stderr, /ceph made/);
    const healthy = stamp(up.stderr, /all nodes healthy/);
    if (made !== undefined) out.cephMadeMs = made;
    if (healthy !== undefined) out.healthyMs = healthy;
    if (ceph) {
      out.cephRssMiB = Math.round(cephKiB / 1024);
      out.fuseRssMiB = Math.round(fuseKiB / 1024);
      out.sessionRssMiB = Math.round(sessionKiB / 1024);
    }
    return out;
  } finally {
    const down = await run(process.execPath, [MAIN, 'lab', 'down', name], { timeoutMs: 120_000, allowFailure: true });
    if (down.code !== 0) say(`lab down ${name}: ${down.stderr.trim()}`);
  }
}

async function main(): Promise<void> {
  const plain: Trial[] = [];
  const ceph: Trial[] = [];
  say(`load ${loadavg().map((x) => x.toFixed(2)).join(' ')}; ${trials} trial(s) each, lab: 3 core, ${storage} storage, 1 compute`);
  for (let i = 0; i < trials && !cleanup.stopping; i++) {
    plain.push(await trial(false, i));
    say(`plain #${i + 1}: ${JSON.stringify(plain.at(-1))}`);
    ceph.push(await trial(true, i));
    say(`ceph  #${i + 1}: ${JSON.stringify(ceph.at(-1))}`);
  }
  const fmt = (xs: (number | undefined)[]): string => {
    const v = xs.filter((x): x is number => x !== undefined);
    if (v.length === 0) return '-';
    const s = summarize(v);
    return v.length === 1 ? String(v[0]) : `${s.p50} (${Math.min(...v)}–${Math.max(...v)})`;
  };
  console.log(table(
    ['lab up', 'n', 'command ms', 'all healthy ms', 'ceph made ms', 'ceph daemons RSS MiB', 'rbd-fuse RSS MiB', 'Ceph session helpers RSS MiB', 'whole lab RSS MiB'],
    [
      ['--ceph (rbd volumes)', ceph.length, fmt(ceph.map((t) => t.totalMs)), fmt(ceph.map((t) => t.healthyMs)), fmt(ceph.map((t) => t.cephMadeMs)), fmt(ceph.map((t) => t.cephRssMiB)), fmt(ceph.map((t) => t.fuseRssMiB)), fmt(ceph.map((t) => t.sessionRssMiB)), fmt(ceph.map((t) => t.labRssMiB))],
      ['plain (loop volumes), baseline', plain.length, fmt(plain.map((t) => t.totalMs)), fmt(plain.map((t) => t.healthyMs)), '-', '-', '-', '-', fmt(plain.map((t) => t.labRssMiB))],
    ],
  ));
  console.log(`load after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}

main().then(() => cleanup.run(), async (err: unknown) => {
  say(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  await cleanup.run();
  process.exitCode = 1;
});
