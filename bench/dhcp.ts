// DHCP benchmark: perfdhcp DORA/s and drops for ycluster's DHCP over etcd (leases committed to a real
// 3-member etcd before each ACK), ycluster's DHCP over the memory backend, dnsmasq and Kea (memfile),
// side by side in the same two namespaces made for the run (server and relay/client, one veth).
// Needs root; baselines from scripts/install-bench-deps.sh.
// Usage: node --import tsx bench/dhcp.ts [--rates 2000,4500] [--seconds 10] [--clients 5000] [--servers etcd,memory,dnsmasq,kea]
//        [--profile DIR] (ycluster servers run under node --cpu-prof, profiles written to DIR) [--no-probe]
// ("etcd" runs twice: clients registered beforehand, and new clients; "memory" twice: reserved, and the pool.)
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { run } from '../src/lib/exec.js';
import { sleep, waitFor } from '../src/lib/time.js';
import { Cleanup, stopChild } from './lib/cleanup.js';
import { startChild, startEtcdCluster, type Started } from './lib/procs.js';
import { say, table } from './lib/report.js';

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '2000,4500' },
    seconds: { type: 'string', default: '10' },
    clients: { type: 'string', default: '5000' },
    servers: { type: 'string', default: 'etcd,memory,dnsmasq,kea' },
    profile: { type: 'string' },
    'no-probe': { type: 'boolean', default: false },
  },
});
const rates = values.rates.split(',').map(Number).filter((r) => r > 0 && r <= 50_000);
const seconds = Math.max(1, Math.min(120, Number(values.seconds)));
const clients = Math.max(1, Math.min(10_000, Number(values.clients)));
const servers = values.servers.split(',');

const tag = `ybd${Math.random().toString(36).slice(2, 5)}`;
const SRV = `${tag}-srv`;
const CLI = `${tag}-cli`;
const SERVER_IP = '10.0.0.1';
const RELAY_IP = '10.0.0.2';
const NETWORK = '10.0.0.0/16';
const POOL = ['10.0.1.1', '10.0.40.255'] as const;
const cleanup = new Cleanup();
const dir = mkdtempSync(join(tmpdir(), 'yc-bench-dhcp-'));
cleanup.add('temp dir', () => rmSync(dir, { recursive: true, force: true }));
const profileDir = values.profile;
if (profileDir) mkdirSync(profileDir, { recursive: true });
const tsx = (file: string): string[] => [
  ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
  '--import', 'tsx', fileURLToPath(new URL(file, import.meta.url)),
];

/** CPU time (user + system, ms) a process has used so far, from /proc; NaN once it is gone. */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    // Fields after the command name (which may hold spaces): utime and stime are fields 14 and 15.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

async function ip(args: string[]): Promise<void> {
  await run('ip', args, { timeoutMs: 10_000 });
}

async function makeNetwork(): Promise<void> {
  for (const ns of [SRV, CLI]) {
    cleanup.add(`namespace ${ns}`, () => ip(['netns', 'del', ns]));
    await ip(['netns', 'add', ns]);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  // Made inside the namespaces: the host never holds these links or addresses.
  await ip(['-n', SRV, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', CLI]);
  await ip(['-n', SRV, 'addr', 'add', `${SERVER_IP}/16`, 'dev', 'eth0']);
  await ip(['-n', CLI, 'addr', 'add', `${RELAY_IP}/16`, 'dev', 'eth0']);
  await ip(['-n', SRV, 'link', 'set', 'eth0', 'up']);
  await ip(['-n', CLI, 'link', 'set', 'eth0', 'up']);
}

/** Waits until something in the server namespace listens on UDP 67. */
async function port67(): Promise<void> {
  await waitFor('a DHCP server on :67', async () => {
    const r = await run('ip', ['netns', 'exec', SRV, 'ss', '-Hlun', 'sport', '= :67'], { timeoutMs: 5000, allowFailure: true });
    return r.stdout.trim() ? true : undefined;
  }, { timeoutMs: 30_000, intervalMs: 100 });
}

interface Server {
  started: Started;
  /** CPU ms used so far by the server and by its etcd members (0 when it has none). */
  cpu: () => { server: number; etcd: number };
  /** Extra figures printed after the run (server's own counters). */
  stats?: () => string;
}

let etcdRound = 0;
async function startServer(kind: string, seed = 0): Promise<{ server: Server; stop: () => Promise<void> }> {
  const local = new Cleanup({ onSignals: false });
  // Also undone by the root cleanup (idempotent), so an interrupt stops these before the namespaces go.
  cleanup.add('nested', () => local.run());
  const stop = (): Promise<void> => local.run();
  try {
    let started: Started;
    let etcdPids: (number | undefined)[] = [];
    if (kind === 'etcd') {
      const d = join(dir, `etcd-${++etcdRound}`);
      local.add('etcd data', () => rmSync(d, { recursive: true, force: true }));
      // The lab's timers; a fresh cluster each time so every run allocates every client anew.
      const etcd = await startEtcdCluster(local, { size: 3, dir: d, basePort: 2379, netns: SRV, heartbeatMs: 100, electionMs: 1000 });
      etcdPids = etcd.procs.map((p) => p?.pid);
      started = await startChild(local, 'ycluster dhcp (etcd)', process.execPath, [...tsx('./lib/run-etcd-dhcp.ts'), '--endpoints', etcd.endpoints.join(','), '--server-ip', SERVER_IP, '--network', NETWORK, '--compute', POOL.join('-'), '--interface', 'eth0', '--seed-perfdhcp', String(seed)], /DHCP-READY/, { netns: SRV, timeoutMs: 30_000 });
    } else if (kind === 'memory-known') {
      started = await startChild(local, 'ycluster dhcp (memory, reserved)', process.execPath, [...tsx('./lib/run-memory-known.ts'), '--server-ip', SERVER_IP, '--subnet', NETWORK, '--first-ip', POOL[0], '--clients', String(clients), '--interface', 'eth0'], /DHCP-READY/, { netns: SRV, timeoutMs: 30_000 });
    } else if (kind === 'memory') {
      started = await startChild(local, 'ycluster dhcp (memory)', process.execPath, [...tsx('../src/dhcp/run-memory-server.ts'), '--server-ip', SERVER_IP, '--subnet', NETWORK, '--range', POOL.join('-'), '--interface', 'eth0'], /DHCP-READY/, { netns: SRV, timeoutMs: 30_000 });
    } else if (kind === 'dnsmasq') {
      const leases = join(dir, `dnsmasq-${Date.now()}.leases`);
      local.add('dnsmasq leases', () => rmSync(leases, { force: true }));
      started = await startChild(local, 'dnsmasq', 'dnsmasq', [
        '--no-daemon', '--conf-file=/dev/null', '--port=0', `--dhcp-range=${POOL[0]},${POOL[1]},255.255.0.0,1h`, '--no-ping', '--log-facility=/dev/null',
        `--dhcp-leasefile=${leases}`, '--interface=eth0', '--dhcp-lease-max=100000', '--pid-file', '--user=root', '--group=root',
      ], /^/, { netns: SRV });
      await port67();
    } else if (kind === 'kea') {
      const d = mkdtempSync(join(dir, 'kea-'));
      local.add('kea dir', () => rmSync(d, { recursive: true, force: true }));
      const conf = join(d, 'kea.json');
      writeFileSync(conf, JSON.stringify({
        Dhcp4: {
          'interfaces-config': { interfaces: ['eth0'], 'dhcp-socket-type': 'udp' },
          'lease-database': { type: 'memfile', persist: true, name: join(d, 'leases.csv'), 'lfc-interval': 0 },
          'valid-lifetime': 3600,
          subnet4: [{ id: 1, subnet: NETWORK, pools: [{ pool: `${POOL[0]} - ${POOL[1]}` }] }],
          loggers: [{ name: 'kea-dhcp4', output_options: [{ output: join(d, 'kea.log') }], severity: 'WARN' }],
        },
      }));
      started = await startChild(local, 'kea-dhcp4', 'kea-dhcp4', ['-c', conf], /^/, { netns: SRV, env: { ...process.env, KEA_PIDFILE_DIR: d, KEA_LOCKFILE_DIR: d } });
      await port67();
    } else throw new Error(`unknown server "${kind}"`);
    const out = started.output;
    return {
      server: {
        started,
        stats: () => /DHCP-STATS (\{.*\})/.exec(out())?.[1] ?? '',
        cpu: () => ({ server: cpuMs(started.child.pid), etcd: etcdPids.reduce<number>((sum, pid) => sum + cpuMs(pid), 0) }),
      },
      stop: async () => {
        await stopChild(started.child, 5000);
        await stop();
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** UDP receive-buffer errors in the client namespace so far: answers perfdhcp's own socket had no room for. */
async function clientRcvbufErrors(): Promise<number> {
  const r = await run('ip', ['netns', 'exec', CLI, 'cat', '/proc/net/snmp'], { timeoutMs: 5000, allowFailure: true });
  const udp = r.stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const head = udp[0]?.split(/\s+/) ?? [];
  const vals = udp[1]?.split(/\s+/) ?? [];
  return Number(vals[head.indexOf('RcvbufErrors')] ?? NaN);
}

interface Perf { rate: number; doSent: number; doRecv: number; raSent: number; raRecv: number; dropPct: number; doAvgMs: number; doMaxMs: number; raAvgMs: number; raMaxMs: number; raw: string }

async function perfdhcp(rate: number): Promise<Perf> {
  const r = await run('ip', ['netns', 'exec', CLI, 'perfdhcp', '-4', '-l', RELAY_IP, '-r', String(rate), '-R', String(clients), '-p', String(seconds), '-s', '1', SERVER_IP], { timeoutMs: (seconds + 30) * 1000, allowFailure: true });
  const text = r.stdout + r.stderr;
  const section = (name: string): string => text.split(`***Statistics for: ${name}***`)[1]?.split('***')[0] ?? '';
  const num = (s: string, re: RegExp): number => Number(re.exec(s)?.[1] ?? NaN);
  const doS = section('DISCOVER-OFFER');
  const raS = section('REQUEST-ACK');
  const p: Perf = {
    rate: num(text, /Rate: ([\d.]+) 4-way exchanges\/second/),
    doSent: num(doS, /sent packets: (\d+)/),
    doRecv: num(doS, /received packets: (\d+)/),
    raSent: num(raS, /sent packets: (\d+)/),
    raRecv: num(raS, /received packets: (\d+)/),
    dropPct: NaN,
    doAvgMs: num(doS, /avg delay: ([\d.]+) ms/),
    doMaxMs: num(doS, /max delay: ([\d.]+) ms/),
    raAvgMs: num(raS, /avg delay: ([\d.]+) ms/),
    raMaxMs: num(raS, /max delay: ([\d.]+) ms/),
    raw: text,
  };
  // A DISCOVER counts as served only when its exchange ends with an ACK.
  p.dropPct = p.doSent > 0 ? (100 * (p.doSent - (p.raRecv || 0))) / p.doSent : NaN;
  if (Number.isNaN(p.rate)) p.rate = 0;
  return p;
}

interface Alloc { concurrency: number; done: number; failed: number; seconds: number; perSecond: number; p50Ms: number; p99Ms: number }

/** allocateNode alone against a fresh etcd in the server namespace: the cost of each new MAC. */
async function allocationProbe(): Promise<Alloc[]> {
  const local = new Cleanup({ onSignals: false });
  // Also undone by the root cleanup (idempotent), so an interrupt stops these before the namespaces go.
  cleanup.add('nested', () => local.run());
  try {
    const d = join(dir, 'etcd-alloc');
    local.add('etcd data', () => rmSync(d, { recursive: true, force: true }));
    const etcd = await startEtcdCluster(local, { size: 3, dir: d, basePort: 2379, netns: SRV, heartbeatMs: 100, electionMs: 1000 });
    const r = await run('ip', ['netns', 'exec', SRV, process.execPath, ...tsx('./lib/alloc-probe.ts'), '--endpoints', etcd.endpoints.join(','), '--count', '300', '--concurrency', '1,32', '--seconds', '20'], { timeoutMs: 90_000, allowFailure: true });
    const out = [...r.stdout.matchAll(/ALLOC (\{.*\})/g)].map((m) => JSON.parse(m[1]!) as Alloc);
    if (out.length === 0) throw new Error(`alloc-probe: ${r.stderr.slice(-800)}`);
    return out;
  } finally {
    await local.run();
  }
}

async function main(): Promise<void> {
  await makeNetwork();
  const rows: unknown[][] = [];
  const notes: string[] = [];
  for (const rate of rates) {
    // etcd twice: clients registered beforehand (the lease path), and unknown clients (allocation + lease).
    // memory twice: clients reserved (protocol and socket cost only), and the dynamic pool of run-memory-server.
    const runs = servers.flatMap((k) => (k === 'etcd' ? ['etcd-known', 'etcd-new'] : k === 'memory' ? ['memory-known', 'memory'] : [k]));
    for (const kind of runs) {
      if (cleanup.stopping) throw new Error('interrupted');
      const label = { 'etcd-known': 'ycluster etcd (known MACs)', 'etcd-new': 'ycluster etcd (new MACs)', 'memory-known': 'ycluster memory (known MACs)', memory: 'ycluster memory (new MACs, pool)' }[kind] ?? kind;
      say(`${label} at ${rate}/s, ${clients} clients, ${seconds} s (load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
      const { server, stop } = await startServer(kind.startsWith('etcd') ? 'etcd' : kind, kind === 'etcd-known' ? clients : 0);
      try {
        const load = loadavg()[0]!;
        const before = server.cpu();
        const rcvbuf0 = await clientRcvbufErrors();
        const p = await perfdhcp(rate);
        const after = server.cpu();
        const clientDrops = (await clientRcvbufErrors()) - rcvbuf0;
        // CPU per 1000 completed exchanges: independent of what else runs on the machine (unlike the rate).
        const per1000 = (ms: number): number => (p.raRecv > 0 ? (1000 * ms) / p.raRecv : NaN);
        const srvCpu = per1000(after.server - before.server);
        const etcdCpu = kind.startsWith('etcd') ? per1000(after.etcd - before.etcd) : NaN;
        if (p.doSent === 0 || Number.isNaN(p.doSent)) notes.push(`${label} ${rate}/s: perfdhcp output:\n${p.raw.slice(-1500)}`);
        rows.push([label, rate, p.rate, p.doSent, p.doRecv, p.raSent, p.raRecv, p.dropPct, `${p.doAvgMs.toFixed(1)}/${p.doMaxMs.toFixed(0)}`, `${p.raAvgMs.toFixed(1)}/${p.raMaxMs.toFixed(0)}`, clientDrops, srvCpu, etcdCpu, load]);
        say(`  ${p.rate.toFixed(0)} DORA/s, drops ${p.dropPct.toFixed(2)} %, server CPU ${srvCpu.toFixed(0)} ms per 1000 ACKs`);
      } finally {
        await stop();
        const st = server.stats?.();
        if (st) notes.push(`${label} ${rate}/s, server counters: ${st}`);
      }
      await sleep(500);
    }
  }
  console.log(`\nDHCP: perfdhcp as a relay (giaddr ${RELAY_IP}), ${clients} clients, ${seconds} s per run, same namespaces and veth for every server`);
  console.log('etcd: a fresh 3-member cluster in the server namespace per run. "known MACs": the clients registered as nodes');
  console.log('beforehand, each ACK waits for its lease in etcd; "new MACs": each client\'s first DISCOVER allocates a node.');
  console.log('drops % = DISCOVERs sent whose exchange did not end in an ACK. load = 1-min load average at the start.');
  console.log('D-O, R-A ms = perfdhcp\'s average/max delay of DISCOVER→OFFER and REQUEST→ACK (an answer later than 1 s counts as a drop).');
  console.log('client buf = answers dropped by the kernel because perfdhcp\'s socket buffer was full (RcvbufErrors in its namespace).');
  console.log('cpu/1k = CPU ms (user + system, /proc) per 1000 ACKs received, of the server process and of its 3 etcd members.\n');
  console.log(table(['server', 'asked/s', 'DORA/s', 'DISCOVER sent', 'OFFER recv', 'REQUEST sent', 'ACK recv', 'drops %', 'D-O ms', 'R-A ms', 'client buf', 'srv cpu/1k', 'etcd cpu/1k', 'load'], rows));
  for (const n of notes) console.log(n);
  if (servers.includes('etcd') && !values['no-probe']) {
    say('allocation probe (allocateNode alone, fresh etcd)');
    const alloc = await allocationProbe();
    console.log('\nwhere a new MAC\'s time goes: allocateNode alone (fresh 3-member etcd, 300 new MACs, each attempt lists all names and IPs)');
    console.log(table(['in flight', 'allocated', 'failed', 'seconds', 'per s', 'p50 ms', 'p99 ms'], alloc.map((x) => [x.concurrency, x.done, x.failed, x.seconds, x.perSecond, x.p50Ms, x.p99Ms])));
  }
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => cleanup.run());
