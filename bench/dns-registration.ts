/**
 * Registration → resolvable: from a node's registration committing in etcd to its name answering over UDP,
 * for ycluster's DNS (a core node's CoreServicesRole: ClusterCache watch → clusterZoneRecords → Zone →
 * startDnsServer, in a process of its own) and, in the same run, for dnsmasq re-reading a --hostsdir file
 * (inotify) written at the same moment. p50/p90/p99/max per server; PTR too.
 *
 * Needs root. Everything runs in a network namespace made for the run (ycbrr-<pid>), deleted at the end, also
 * on failure or SIGINT: the outer process makes it and re-runs this file inside it with --inner.
 * Usage: node --import tsx bench/dns-registration.ts [--registrations 100] [--etcd-members 3] [--interval-ms 1]
 *        [--timeout-ms 5000]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { RType } from '../src/dns/types.js';
import { allocateNode } from '../src/inventory/allocate.js';
import { errorMessage } from '../src/lib/errors.js';
import { run } from '../src/lib/exec.js';
import { reverseName } from '../src/lib/net.js';
import { sleep, waitFor } from '../src/lib/time.js';
import { StateClient } from '../src/state/client.js';
import { keys } from '../src/state/keys.js';
import { defaultConfig, type ClusterConfig } from '../src/state/schema.js';
import { Cleanup, stopChild } from './lib/cleanup.js';
import { removeNamespace } from './lib/own-netns.js';
import { DnsPoller, type DnsTarget, type PollResult } from './lib/dns-poll.js';
import { startChild, startEtcdCluster } from './lib/procs.js';
import { percentile, say, table } from './lib/report.js';

const { values } = parseArgs({
  options: {
    registrations: { type: 'string', default: '100' },
    'etcd-members': { type: 'string', default: '3' },
    'interval-ms': { type: 'string', default: '1' },
    'timeout-ms': { type: 'string', default: '5000' },
    inner: { type: 'boolean', default: false },
    netns: { type: 'string' },
    dir: { type: 'string' },
    cmdline: { type: 'string' },
  },
});

const bounded = (name: string, v: string, min: number, max: number): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max} (got "${v}")`);
  return n;
};

const SELF = fileURLToPath(import.meta.url);
const SERVER = fileURLToPath(new URL('./lib/dns-registration-server.ts', import.meta.url));
const CORE_IP = '10.0.0.11';
const DNSMASQ_PORT = 5353;
// Room for 1,000 registrations in the compute range; the core node takes the first storage address.
const CONFIG: ClusterConfig = { ...defaultConfig, network: '10.0.0.0/16', ranges: { ...defaultConfig.ranges, compute: { start: '10.0.1.1', end: '10.0.4.250' } } };
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');
const mac = (i: number): string => `02:bb:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;

// ---------- outer: make the namespace, run the benchmark inside it, remove everything ----------

async function outer(): Promise<number> {
  const n = bounded('registrations', values.registrations, 1, 1000);
  bounded('etcd-members', values['etcd-members'], 1, 3);
  bounded('interval-ms', values['interval-ms'], 0, 10);
  bounded('timeout-ms', values['timeout-ms'], 100, 10_000);
  if (process.getuid?.() !== 0) throw new Error('needs root (it makes a network namespace)');
  for (const [cmd, args] of [['ip', ['-V']], ['etcd', ['--version']], ['dnsmasq', ['--version']]] as const) {
    try {
      await run(cmd, args, { timeoutMs: 10_000 });
    } catch (err) {
      throw new Error(`${cmd} is needed (Debian: ${cmd === 'etcd' ? 'etcd-server' : cmd === 'ip' ? 'iproute2' : cmd}): ${errorMessage(err)}`);
    }
  }
  const cleanup = new Cleanup();
  const ns = `ycbrr-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'yc-bench-dnsreg-'));
  cleanup.add('temp dir', () => rmSync(dir, { recursive: true, force: true }));
  try {
    cleanup.add(`namespace ${ns}`, () => removeNamespace(ns));
    await run('ip', ['netns', 'add', ns], { timeoutMs: 10_000 });
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up'], { timeoutMs: 10_000 });
    say(`namespace ${ns}, ${n} registrations, load average ${load()}`);
    const cmdline = ['node', ...process.execArgv, 'bench/dns-registration.ts', ...process.argv.slice(2)].join(' ');
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', SELF, '--inner', '--netns', ns, '--dir', dir, '--cmdline', cmdline,
      '--registrations', values.registrations, '--etcd-members', values['etcd-members'], '--interval-ms', values['interval-ms'], '--timeout-ms', values['timeout-ms']], { stdio: 'inherit' });
    // The inner process stops what it started; a generous grace so it can, then the namespace sweep below.
    cleanup.child('benchmark inside the namespace', child, 20_000);
    const code = await new Promise<number>((resolve) => {
      child.once('error', (err) => {
        say(`cannot start the inner benchmark: ${err.message}`);
        resolve(1);
      });
      child.once('exit', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
    });
    return code;
  } finally {
    await cleanup.run();
  }
}

// ---------- inner: inside the namespace ----------

interface Row {
  label: string;
  results: PollResult[];
}

async function inner(): Promise<number> {
  const n = bounded('registrations', values.registrations, 1, 1000);
  const members = bounded('etcd-members', values['etcd-members'], 1, 3);
  const intervalMs = bounded('interval-ms', values['interval-ms'], 0, 10);
  const timeoutMs = bounded('timeout-ms', values['timeout-ms'], 100, 10_000);
  const { netns, dir } = values;
  if (!netns || !dir) throw new Error('--inner needs --netns and --dir');
  // SAFETY: the daemons below bind :53 and more; never in the host namespace.
  const here = (await run('ip', ['netns', 'identify', String(process.pid)], { timeoutMs: 5000 })).stdout.split(/\s+/);
  if (!here.includes(netns)) throw new Error(`refusing to run: this process is not in namespace ${netns} (ip netns identify: "${here.join(' ').trim()}")`);
  const loadStart = load();
  const cleanup = new Cleanup();
  try {
    // The core node's own address, on lo of this namespace only: clients ask it (the worker-served socket).
    await run('ip', ['addr', 'add', `${CORE_IP}/32`, 'dev', 'lo'], { timeoutMs: 5000 });

    say(`starting ${members} etcd member(s)`);
    const etcd = await startEtcdCluster(cleanup, { size: members, dir: join(dir, 'etcd'), basePort: 2379, heartbeatMs: 100, electionMs: 500 });
    const state = new StateClient({ endpoints: etcd.endpoints });
    cleanup.add('etcd client', () => state.close());
    await state.put(keys.config, CONFIG);
    const core = (await allocateNode(state, { mac: '02:bb:ff:00:00:01', operatorType: 'core', preferredIp: CORE_IP })).node;
    if (core.ip !== CORE_IP) throw new Error(`core node got ${core.ip}, expected ${CORE_IP}`);

    say('starting the core-services role (ycluster DNS)');
    const server = await startChild(cleanup, 'ycluster core services', process.execPath,
      ['--import', 'tsx', SERVER, '--endpoints', etcd.endpoints.join(','), '--data-dir', join(dir, 'agent'), '--node', JSON.stringify(core)],
      /DNSREG-READY (\{.*\})\n/, { timeoutMs: 30_000 });

    say('starting dnsmasq');
    const hostsDir = join(dir, 'hosts.d');
    const staging = join(dir, 'staging');
    mkdirSync(hostsDir);
    mkdirSync(staging);
    writeFileSync(join(hostsDir, 'core'), `${core.ip} ${core.hostname}.${CONFIG.domain}\n`);
    const dnsmasq = await startChild(cleanup, 'dnsmasq', 'dnsmasq', [
      '--no-daemon', '--conf-file=/dev/null', '--listen-address=127.0.0.1', '--bind-interfaces', `--port=${DNSMASQ_PORT}`,
      '--no-resolv', '--no-hosts', `--hostsdir=${hostsDir}`, `--local=/${CONFIG.domain}/`, '--log-facility=-', '--pid-file', '--user=root', '--group=root',
    ], /started, version/);

    const poller = await DnsPoller.open();
    cleanup.add('poller', () => poller.close());
    const yLoop: DnsTarget = { host: '127.0.0.1', port: 53 };
    const yNode: DnsTarget = { host: CORE_IP, port: 53 };
    const dm: DnsTarget = { host: '127.0.0.1', port: DNSMASQ_PORT };
    const opts = { intervalMs, timeoutMs };
    // Every server answers the core node before the clock runs (workers started, dnsmasq read its directory).
    const coreName = `${core.hostname}.${CONFIG.domain}`;
    for (const t of [yLoop, yNode, dm]) {
      await waitFor(`${t.host}:${t.port} answering ${coreName}`, async () => ((await poller.until(t, coreName, RType.A, core.ip, performance.now(), { intervalMs: 10, timeoutMs: 1000 })).ms !== undefined ? true : undefined), { timeoutMs: 20_000, intervalMs: 100 });
    }

    const rows: Row[] = ['ycluster A, 127.0.0.1:53 (agent process)', `ycluster A, ${CORE_IP}:53 (UDP workers)`, 'ycluster PTR, 127.0.0.1:53', `dnsmasq A, 127.0.0.1:${DNSMASQ_PORT} (hostsdir)`, 'dnsmasq PTR']
      .map((label) => ({ label, results: [] }));
    const alloc: number[] = [];
    const writeMs: number[] = [];
    const commitNs: bigint[] = [];
    say(`${n} registrations (load average ${load()})`);
    for (let i = 1; i <= n; i++) {
      if (cleanup.stopping) throw new Error('interrupted');
      await sleep(20 + Math.random() * 60);
      const a0 = performance.now();
      // What `ycluster node add MAC` runs (no --type): name and address in one etcd transaction.
      const { node } = await allocateNode(state, { mac: mac(i) });
      const t0 = performance.now();
      commitNs.push(process.hrtime.bigint());
      alloc.push(t0 - a0);
      const fqdn = `${node.hostname}.${CONFIG.domain}`;
      const ptr = reverseName(node.ip);
      const polls = [poller.until(yLoop, fqdn, RType.A, node.ip, t0, opts), poller.until(yNode, fqdn, RType.A, node.ip, t0, opts), poller.until(yLoop, ptr, RType.PTR, fqdn, t0, opts)];
      // dnsmasq's copy, at the same moment: a complete file renamed in (one IN_MOVED_TO, never a half-written file).
      const tmp = join(staging, `n${i}`);
      writeFileSync(tmp, `${node.ip} ${fqdn}\n`);
      renameSync(tmp, join(hostsDir, `n${i}`));
      const t1 = performance.now();
      writeMs.push(t1 - t0);
      polls.push(poller.until(dm, fqdn, RType.A, node.ip, t1, opts), poller.until(dm, ptr, RType.PTR, fqdn, t1, opts));
      const got = await Promise.all(polls);
      got.forEach((r, k) => rows[k]!.results.push(r));
      if (i % 25 === 0) say(`  ${i}/${n}`);
    }
    const loadEnd = load();

    const fmt = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : `>${timeoutMs}`);
    const stats = (r: PollResult[]): unknown[] => {
      // A timeout counts as slower than every answer, so it shows in p99/max instead of vanishing.
      const ms = r.map((x) => x.ms ?? Infinity);
      return [r.length, fmt(percentile(ms, 50)), fmt(percentile(ms, 90)), fmt(percentile(ms, 99)), fmt(Math.max(...ms)), r.filter((x) => x.ms === undefined).length,
        (r.reduce((s, x) => s + x.queries, 0) / r.length).toFixed(1), r.reduce((s, x) => s + x.lost, 0)];
    };
    await stopChild(server.child, 10_000);
    await stopChild(dnsmasq.child, 5000);
    const serverStats = /DNSREG-STATS (\{.*\})/.exec(server.output())?.[1];
    // When the agent process had the watch event, and had replaced its zone (the first change with core + i
    // nodes), from the commit; negative: the watch beat the transaction's reply.
    const stamps = (what: string): number[] => {
      const seen = [...server.output().matchAll(new RegExp(`^${what} (\\d+) (\\d+)$`, 'gm'))].map((m) => ({ ns: BigInt(m[1]!), nodes: Number(m[2]) }));
      return commitNs.map((c, i) => {
        const z = seen.find((x) => x.nodes >= i + 2);
        return z ? Number(z.ns - c) / 1e6 : NaN;
      }).filter((v) => !Number.isNaN(v));
    };
    const changeMs = stamps('CHANGE');
    const zoneMs = stamps('ZONE');

    console.log(`\nregistration → resolvable, ${new Date().toISOString()}`);
    console.log(`command: ${values.cmdline ?? process.argv.join(' ')}`);
    console.log(`namespace ${netns}; etcd: ${members} member(s) on 127.0.0.1 (heartbeat 100 ms, election 500 ms); ${n} registrations, one at a time, 20–80 ms apart`);
    console.log(`ycluster: allocateNode as \`ycluster node add MAC\`; clock from its commit (allocateNode resolved) to the first answer holding the record`);
    console.log(`dnsmasq ${DNSMASQ_PORT}: a new hosts file renamed into --hostsdir right after the same commit; clock from the rename`);
    console.log(`poller: one UDP socket in the benchmark process, one query in flight per row, next query ${intervalMs ? `${intervalMs} ms after a wrong answer` : 'at once after a wrong answer'} (at 1 ms, an answer comes within about a millisecond of being possible), lost query re-asked after 100 ms, give up after ${timeoutMs} ms`);
    const p = (v: number[], q: number): string => percentile(v, q).toFixed(2);
    console.log(`allocation (allocateNode, all its reads and the transaction; not counted above): p50 ${p(alloc, 50)} ms, p99 ${p(alloc, 99)} ms`);
    console.log(`dnsmasq file write + rename (its clock starts after it): p50 ${p(writeMs, 50)} ms, max ${p(writeMs, 100)} ms`);
    const dist = (v: number[]): string => `p50 ${p(v, 50)} ms, p90 ${p(v, 90)} ms, p99 ${p(v, 99)} ms, min ${p(v, 0)} ms, max ${p(v, 100)} ms (${v.length} of ${n})`;
    console.log('ycluster agent process, from the commit (monotonic clock across processes):');
    console.log(`  watch event in the cluster cache: ${dist(changeMs)}`);
    console.log(`  zone replaced (workers sent theirs, answers precomputed): ${dist(zoneMs)}`);
    console.log(`load average (1, 5, 15 min): start ${loadStart}, end ${loadEnd}\n`);
    console.log(table(['server', 'n', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'timeouts', 'queries/reg', 'lost'], rows.map((r) => [r.label, ...stats(r.results)])));
    if (serverStats) console.log(`ycluster DNS counters: ${serverStats}`);
    return 0;
  } finally {
    await cleanup.run();
  }
}

const main = values.inner ? inner : outer;
main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`dns-registration: ${errorMessage(err)}`);
    process.exitCode = 1;
  },
);
