// Gateway VIP failover in the lab: kill -9 of the VIP holder with its link down, N times; p50/p99 of the time until
// the VIP answers HTTP from another node. Baseline in the same run and namespaces: keepalived with its defaults
// (VRRPv2, advert_int 1, multicast, preempt). Needs the 'gateway-vip' role registered for core nodes in dist/.
// Usage: node --import tsx bench/gateway-vip.ts [--trials 20] [--budget-min 20]
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { answeringNode, crashNode, percentile, vipHolders, waitFailover, type FailoverTiming } from '../src/gateway-vip/lab-probe.js';
import { virtualRouterIdFor } from '../src/gateway-vip/desired.js';
import { healNode, partitionNode } from '../src/lab/faults.js';
import { fetchStatus, labUp, startAgent } from '../src/lab/lab.js';
import { delAddress, spawnInNode } from '../src/lab/netns.js';
import { readPid } from '../src/gateway-vip/host.js';
import { destroyLab, labDir } from '../src/lab/registry.js';
import { defaultConfig } from '../src/state/schema.js';
import { monoMs, sleep, waitFor } from '../src/lib/time.js';
import { keepalivedArgs } from '../src/services/keepalived.js';

const { values } = parseArgs({ options: { trials: { type: 'string', default: '20' }, 'budget-min': { type: 'string', default: '20' }, name: { type: 'string', default: 'ycbgv' } } });
const trials = Math.max(1, Math.min(200, Number(values.trials)));
const deadline = monoMs() + Number(values['budget-min']) * 60_000;
const name = values.name;
const CORES = ['s1', 's2', 's3'];
const CLIENT = 'c1';
const PORT = 8080;
const VIP = defaultConfig.gatewayVip;
const BASE_VIP = '10.0.0.253';
const BASE_VRID = virtualRouterIdFor(defaultConfig) === 201 ? 202 : 201;
const say = (m: string): void => void process.stderr.write(`${m}\n`);

async function settle(vip: string, want?: string): Promise<string> {
  return waitFor(`lab healthy and one holder of ${vip}`, async () => {
    const s = await fetchStatus(apiPort).catch(() => undefined);
    // Our part of health only: other roles (storage leader, ...) settle on their own clocks.
    if (!s || s.nodes.filter((n) => n.type === 'core').length !== CORES.length || s.reasons.some((r) => /keepalived|gateway-vip/.test(r))) return undefined;
    // Published health can lag a restart: every core's VRRP child must run before the next crash.
    if (!CORES.every((n) => { const pid = readPid(join(labDir(name), 'nodes', n, 'data', 'keepalived', 'vrrp.pid')); return pid !== undefined && existsSync(`/proc/${pid}`); })) return undefined;
    const h = await vipHolders(name, CORES, vip);
    if (h.length !== 1 || (want && h[0] !== want)) return undefined;
    return (await answeringNode(name, CLIENT, vip, PORT, 1)) === h[0] ? h[0] : undefined;
  }, { timeoutMs: 120_000, intervalMs: 300 });
}

// Baseline keepalived: a config with nothing but what VRRP needs, everything else keepalived's defaults.
const baseDir = (node: string): string => join(labDir(name), 'bench-baseline', node);
function startBaseline(node: string): void {
  const dir = baseDir(node);
  mkdirSync(dir, { recursive: true });
  const prio = 250 - (Number(node.slice(1)) - 1) * 10;
  writeFileSync(join(dir, 'k.conf'), `vrrp_instance base {\n  state BACKUP\n  interface eth0\n  virtual_router_id ${BASE_VRID}\n  priority ${prio}\n  virtual_ipaddress {\n    ${BASE_VIP}/24 dev eth0\n  }\n}\n`);
  const files = { conf: join(dir, 'k.conf'), pidFile: join(dir, 'k.pid'), vrrpPidFile: join(dir, 'vrrp.pid') };
  spawnInNode(name, node, 'keepalived', keepalivedArgs(files), { logFile: join(dir, 'k.log'), what: 'keepalived-baseline' }).unref();
}
function killBaseline(node: string): void {
  for (const f of ['k.pid', 'vrrp.pid']) {
    const pid = readPid(join(baseDir(node), f));
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

/** A slow trial keeps every node's keepalived and agent log for a look afterwards. */
function keepLogs(tag: string): void {
  const dst = join('/tmp', `ycluster-bench-gv-${name}`, tag);
  mkdirSync(dst, { recursive: true });
  for (const n of CORES) {
    for (const [src, f] of [[join(labDir(name), 'nodes', n, 'data', 'keepalived', 'keepalived.log'), `${n}-keepalived.log`], [join(labDir(name), 'nodes', n, 'agent.log'), `${n}-agent.log`], [join(baseDir(n), 'k.log'), `${n}-baseline.log`]] as const) {
      if (existsSync(src)) copyFileSync(src, join(dst, f));
    }
  }
  say(`  slow trial: logs kept in ${dst}`);
}

type Fault = (holder: string) => Promise<void>;
type Restore = (holder: string) => Promise<void>;

async function runTrials(label: string, vip: string, fault: Fault, restore: Restore, want: () => string | undefined): Promise<FailoverTiming[]> {
  const out: FailoverTiming[] = [];
  for (let i = 0; i < trials; i++) {
    if (monoMs() > deadline) {
      say(`${label}: time budget spent after ${i} trials`);
      break;
    }
    let old: string;
    let f: FailoverTiming;
    try {
      old = await settle(vip, want());
      const t0 = monoMs();
      await fault(old);
      f = await waitFailover({ lab: name, cores: CORES, client: CLIENT, vip, port: PORT, old, t0, timeoutMs: 20_000 });
    } catch (err) {
      say(`${label}: stopping after ${i} trials: ${err instanceof Error ? err.message : String(err)}`);
      break;
    }
    say(`${label} trial ${i + 1}: ${old} → ${f.newHolder}: on it after ${f.movedMs} ms, answering after ${f.answeredMs} ms`);
    out.push(f);
    if (f.answeredMs > 3000) keepLogs(`${label}-${i + 1}`);
    // A reboot starts from a clean interface: drop the address the crash left, plug the cable back, restart.
    await delAddress(name, old, `${vip}/24`);
    await healNode(name, old);
    await restore(old);
  }
  return out;
}

function line(label: string, r: FailoverTiming[]): string {
  if (r.length === 0) return `${label.padEnd(44)} ${'0'.padStart(6)}  (no trial completed)`;
  const a = r.map((x) => x.answeredMs);
  const m = r.map((x) => x.movedMs);
  return `${label.padEnd(44)} ${String(r.length).padStart(6)}  ${String(percentile(m, 50)).padStart(8)}  ${String(percentile(a, 50)).padStart(8)}  ${String(percentile(a, 99)).padStart(8)}  ${String(Math.max(...a)).padStart(7)}`;
}

let apiPort = 0;
try {
  say(`bringing up lab ${name} (3 core + 1 storage + 1 compute)`);
  apiPort = (await labUp({ name, core: 3, storage: 1, compute: 1, frontend: 0, timeoutMs: 180_000, progress: say })).apiPort;
  const ours = await runTrials('ycluster', VIP, (h) => crashNode(name, h), (h) => Promise.resolve(startAgent(name, h)), () => undefined);
  for (const n of CORES) startBaseline(n);
  // Default preempt: the highest priority (s1) takes it back after each restart, so each trial starts from s1.
  const base = await runTrials('baseline', BASE_VIP, async (h) => {
    killBaseline(h);
    await partitionNode(name, h);
  }, async (h) => {
    startBaseline(h);
    await sleep(0);
  }, () => 's1');
  console.log('\nGateway VIP failover after kill -9 of the holder + link down (ms from the crash; HTTP GET VIP:8080 from c1, polled every ~20-40 ms)');
  console.log(`${'setup'.padEnd(44)} ${'trials'.padStart(6)}  ${'moved50'.padStart(8)}  ${'p50'.padStart(8)}  ${'p99'.padStart(8)}  ${'max'.padStart(7)}`);
  console.log(line('ycluster: VRRPv3, advert 0.1 s, unicast', ours));
  console.log(line('baseline: keepalived defaults (v2, advert 1 s)', base));
} finally {
  const r = await destroyLab(name).catch((err: unknown) => String(err));
  say(`lab ${name} removed: ${typeof r === 'string' ? r : 'ok'}`);
}
