/**
 * DNS benchmark: our server vs dnsmasq, same 300 hosts (A + PTR), each hammered by dnsperf for
 * 10 s on 127.0.0.1. Usage: node --import tsx bench/dns.ts [seconds]
 * (`--serve` is the child mode that runs our server and prints its port.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../src/lib/exec.js';
import { createLogger } from '../src/lib/log.js';
import { Zone, hostRecords } from '../src/dns/records.js';
import { startDnsServer } from '../src/dns/server.js';

const DOMAIN = 'bench.test';
const HOSTS = Array.from({ length: 300 }, (_, i) => ({ name: `n${i + 1}.${DOMAIN}`, ip: `10.0.${1 + Math.floor(i / 200)}.${(i % 200) + 10}` }));

async function serve(): Promise<void> {
  const zone = new Zone(DOMAIN, [{ name: DOMAIN, type: 'NS', ttl: 60, data: `n1.${DOMAIN}` }, ...hostRecords(HOSTS, 30)], { reverseCidrs: ['10.0.0.0/22'] });
  const server = await startDnsServer({ zone, upstreams: [], port: 0, bindAddress: '127.0.0.1', logger: createLogger({ level: 'warn' }) });
  process.stdout.write(`PORT ${server.udpPort}\n`);
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

interface Figures { qps: number; avgMs: number; sdMs: number; sent: number; lost: number; userUs: number; sysUs: number }

/** A process's user and system CPU so far, in clock ticks (/proc/PID/stat fields 14 and 15). */
function cpuTicks(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(f[11]), Number(f[12])];
}

/** dnsperf against one server, with the server's CPU time per answered query (less sensitive to other load than queries/s). */
async function dnsperf(port: number, pid: number, queryFile: string, seconds: number, tick: number): Promise<Figures> {
  const before = cpuTicks(pid);
  const r = await run('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queryFile, '-l', String(seconds)], { timeoutMs: (seconds + 20) * 1000 });
  const after = cpuTicks(pid);
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
  const dir = mkdtempSync(join(tmpdir(), 'yc-bench-dns-'));
  const children: ChildProcess[] = [];
  try {
    const hostsFile = join(dir, 'hosts');
    writeFileSync(hostsFile, HOSTS.map((h) => `${h.ip} ${h.name}\n`).join(''));
    const queryFile = join(dir, 'queries');
    writeFileSync(queryFile, HOSTS.flatMap((h) => [`${h.name} A`, `${h.ip.split('.').reverse().join('.')}.in-addr.arpa PTR`]).join('\n') + '\n');

    const self = fileURLToPath(import.meta.url);
    const ours = await startChild(process.execPath, ['--import', 'tsx', self, '--serve'], /PORT (\d+)/, children);
    const oursPort = Number(ours[1]);
    const dmPort = await freePort();
    const dmIndex = children.length;
    await startChild('dnsmasq', [
      '--no-daemon', '--conf-file=/dev/null', `--port=${dmPort}`, '--listen-address=127.0.0.1', '--bind-interfaces',
      '--no-resolv', '--no-hosts', `--addn-hosts=${hostsFile}`, `--local=/${DOMAIN}/`, '--pid-file', '--user=root', '--group=root',
    ], /started, version/, children);
    // Warm both up and check they answer the same thing before measuring.
    for (const port of [oursPort, dmPort]) {
      const a = await run('dig', ['@127.0.0.1', '-p', String(port), '+short', '+time=2', '+tries=1', `n7.${DOMAIN}`], { timeoutMs: 5000 });
      if (a.stdout.trim() !== HOSTS[6]!.ip) throw new Error(`server on port ${port} answered "${a.stdout.trim()}"`);
    }
    const tickUs = 1e6 / Number((await run('getconf', ['CLK_TCK'])).stdout.trim());
    const results: Record<string, Figures> = {};
    results.ycluster = await dnsperf(oursPort, children[0]!.pid!, queryFile, seconds, tickUs);
    results.dnsmasq = await dnsperf(dmPort, children[dmIndex]!.pid!, queryFile, seconds, tickUs);
    console.log(`DNS, 300 hosts, ${HOSTS.length * 2} distinct A+PTR queries, dnsperf ${seconds} s each on 127.0.0.1`);
    console.log('server      queries/s   avg ms   stddev ms   sent       lost   server CPU us/query (user+sys)');
    for (const [name, f] of Object.entries(results)) {
      const cpu = `${(f.userUs + f.sysUs).toFixed(2)} (${f.userUs.toFixed(2)}+${f.sysUs.toFixed(2)})`;
      console.log(`${name.padEnd(10)}  ${f.qps.toFixed(0).padStart(9)}   ${f.avgMs.toFixed(3).padStart(6)}   ${f.sdMs.toFixed(3).padStart(9)}   ${String(f.sent).padEnd(9)}  ${String(f.lost).padEnd(5)}  ${cpu}`);
    }
  } finally {
    await Promise.all(children.map(stop));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--serve') void serve();
else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
