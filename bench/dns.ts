/**
 * DNS benchmark: our server (in one process, and with UDP worker processes sharing its socket) vs
 * dnsmasq, same 300 hosts (A + PTR), each hammered by dnsperf for 10 s on 127.0.0.1 of a network namespace the
 * bench makes and removes (the project's DNS server never binds in the host namespace).
 * Usage: node --import tsx bench/dns.ts [seconds] [worker counts, default 0,2; '2r': 2 workers and the server process reading too]
 * (`--serve N` is the child mode that runs our server with N workers and prints its port and PIDs.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../src/lib/exec.js';
import { inNamespace, rerunInOwnNamespace } from './lib/own-netns.js';
import { createLogger } from '../src/lib/log.js';
import { Zone, hostRecords } from '../src/dns/records.js';
import { startDnsServer } from '../src/dns/server.js';

const DOMAIN = 'bench.test';
const HOSTS = Array.from({ length: 300 }, (_, i) => ({ name: `n${i + 1}.${DOMAIN}`, ip: `10.0.${1 + Math.floor(i / 200)}.${(i % 200) + 10}` }));

/** `spec` is a worker count, with a trailing 'r' for the server process reading the socket as well. */
async function serve(spec: string): Promise<void> {
  const workers = parseInt(spec, 10);
  const zone = new Zone(DOMAIN, [{ name: DOMAIN, type: 'NS', ttl: 60, data: `n1.${DOMAIN}` }, ...hostRecords(HOSTS, 30)], { reverseCidrs: ['10.0.0.0/22'] });
  const server = await startDnsServer({ zone, upstreams: [], port: 0, bindAddress: '127.0.0.1', logger: createLogger({ level: 'warn' }), udpWorkers: workers, udpParentReads: spec.endsWith('r') });
  process.stdout.write(`PORT ${server.udpPort} PIDS ${[process.pid, ...(server.workers?.pids() ?? [])].join(',')}\n`);
  process.on('SIGTERM', () => {
    process.stderr.write(`stats ${JSON.stringify(server.stats())}\n`);
    void server.close().then(() => process.exit(0));
  });
}

/** Starts a child and resolves once `ready` matches its output (bounded in time). */
function startChild(cmd: string, args: string[], ready: RegExp, children: ChildProcess[]): Promise<RegExpExecArray> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} not ready after 15 s: ${out.slice(-500)}`)), 15_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited with ${code}: ${out.slice(-500)}`));
    });
  });
}

async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(r));
  return port;
}

interface Figures { qps: number; avgMs: number; sdMs: number; sent: number; lost: number; userUs: number; sysUs: number; rssMb: number; procs: number }

/** A process's user and system CPU so far, in clock ticks (/proc/PID/stat fields 14 and 15). */
function cpuTicks(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(f[11]), Number(f[12])];
}

/** Resident memory of a process in MB (VmRSS). */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN) / 1024;
}

function sumTicks(pids: number[]): [number, number] {
  return pids.map(cpuTicks).reduce((a, b) => [a[0] + b[0], a[1] + b[1]], [0, 0]);
}

/**
 * dnsperf against one server, with the CPU time of all its processes per answered query (less
 * sensitive to other load than queries/s) and their memory after the run.
 */
async function dnsperf(port: number, pids: number[], queryFile: string, seconds: number, tick: number): Promise<Figures> {
  const before = sumTicks(pids);
  const r = await run('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queryFile, '-l', String(seconds)], { timeoutMs: (seconds + 20) * 1000 });
  const after = sumTicks(pids);
  const num = (re: RegExp): number => Number(re.exec(r.stdout)?.[1] ?? NaN);
  const done = num(/Queries completed:\s+(\d+)/);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    sdMs: num(/Latency StdDev \(s\):\s+([\d.]+)/) * 1000,
    sent: num(/Queries sent:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    userUs: ((after[0] - before[0]) * tick) / done,
    sysUs: ((after[1] - before[1]) * tick) / done,
    rssMb: pids.map(rssMb).reduce((a, b) => a + b, 0),
    procs: pids.length,
  };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 10);
  const workerCounts = (process.argv[3] ?? '0,2').split(',');
  const dir = mkdtempSync(join(tmpdir(), 'yc-bench-dns-'));
  const children: ChildProcess[] = [];
  try {
    const hostsFile = join(dir, 'hosts');
    writeFileSync(hostsFile, HOSTS.map((h) => `${h.ip} ${h.name}\n`).join(''));
    const queryFile = join(dir, 'queries');
    writeFileSync(queryFile, HOSTS.flatMap((h) => [`${h.name} A`, `${h.ip.split('.').reverse().join('.')}.in-addr.arpa PTR`]).join('\n') + '\n');
    const tickUs = 1e6 / Number((await run('getconf', ['CLK_TCK'])).stdout.trim());
    const self = fileURLToPath(import.meta.url);
    const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

    // Warm up and check it answers what dnsmasq would before measuring.
    const check = async (port: number): Promise<void> => {
      const a = await run('dig', ['@127.0.0.1', '-p', String(port), '+short', '+time=2', '+tries=1', `n7.${DOMAIN}`], { timeoutMs: 5000 });
      if (a.stdout.trim() !== HOSTS[6]!.ip) throw new Error(`server on port ${port} answered "${a.stdout.trim()}"`);
    };
    const results: [string, Figures, string, number][] = [];
    const measureOurs = async (workers: string): Promise<void> => {
      const m = await startChild(process.execPath, ['--import', 'tsx', self, '--serve', workers], /PORT (\d+) PIDS ([\d,]+)\n/, children);
      const child = children[children.length - 1]!;
      await check(Number(m[1]));
      const at = load();
      const n = parseInt(workers, 10);
      // Processes reading the socket: the server alone, or its workers (and itself with 'r').
      const readers = n === 0 ? 1 : n + (workers.endsWith('r') ? 1 : 0);
      results.push([n ? `ycluster+${n}w${workers.endsWith('r') ? '+p' : ''}` : 'ycluster', await dnsperf(Number(m[1]), m[2]!.split(',').map(Number), queryFile, seconds, tickUs), at, readers]);
      await stop(child);
    };
    const measureDnsmasq = async (): Promise<void> => {
      const port = await freePort();
      await startChild('dnsmasq', [
        '--no-daemon', '--conf-file=/dev/null', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces',
        '--no-resolv', '--no-hosts', `--addn-hosts=${hostsFile}`, `--local=/${DOMAIN}/`, '--pid-file', '--user=root', '--group=root',
      ], /started, version/, children);
      const child = children[children.length - 1]!;
      await check(port);
      const at = load();
      results.push(['dnsmasq', await dnsperf(port, [child.pid!], queryFile, seconds, tickUs), at, 1]);
      await stop(child);
    };
    // dnsmasq in the middle, so a drift in the machine's load does not favour one side.
    const [first, ...rest] = workerCounts;
    await measureOurs(first ?? '0');
    await measureDnsmasq();
    for (const w of rest) await measureOurs(w);

    console.log(`DNS, 300 hosts, ${HOSTS.length * 2} distinct A+PTR queries, dnsperf ${seconds} s each on 127.0.0.1, ${cpus().length} cores`);
    // dnsperf runs on the same cores, so queries/s here is bounded by the two processes' CPU together.
    // The ceiling column estimates a server with the cores to itself (clients elsewhere, as in a cluster):
    // min(processes reading, cores) × 1 s / CPU per query. An estimate from measured CPU, not a measurement.
    console.log('server         queries/s  vs dnsmasq   avg ms  stddev ms  lost   CPU us/query (user+sys)   ceiling est.  RSS MB (procs)  load before');
    const base = results.find(([n]) => n === 'dnsmasq')![1].qps;
    for (const [name, f, at, readers] of results) {
      const cpu = `${(f.userUs + f.sysUs).toFixed(2)} (${f.userUs.toFixed(2)}+${f.sysUs.toFixed(2)})`;
      const ceiling = (Math.min(readers, cpus().length) * 1e6) / (f.userUs + f.sysUs);
      console.log(`${name.padEnd(13)}  ${f.qps.toFixed(0).padStart(9)}  ${((f.qps / base) * 100).toFixed(0).padStart(9)}%  ${f.avgMs.toFixed(3).padStart(7)}  ${f.sdMs.toFixed(3).padStart(9)}  ${String(f.lost).padEnd(5)}  ${cpu.padEnd(24)}  ${ceiling.toFixed(0).padStart(12)}  ${`${f.rssMb.toFixed(0)} (${f.procs})`.padEnd(14)}  ${at}`);
    }
  } finally {
    await Promise.all(children.map(stop));
    rmSync(dir, { recursive: true, force: true });
  }
}

const NS_PREFIX = 'ycbdns';
if (process.argv[2] === '--serve') void serve(process.argv[3] ?? '0');
else if (process.argv[2] === '--inner') {
  // Inside the namespace made below: everything binds on its own loopback only.
  const ns = process.argv[3] ?? '';
  process.argv.splice(2, 2);
  inNamespace(ns)
    .then((inside) => {
      if (!inside) throw new Error(`refusing to run: not in namespace ${ns}`);
      return main();
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
} else {
  rerunInOwnNamespace(NS_PREFIX, fileURLToPath(import.meta.url), ['--inner', `${NS_PREFIX}-${process.pid}`, ...process.argv.slice(2)])
    .then((code) => {
      process.exitCode = code;
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
