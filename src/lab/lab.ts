import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { YcError } from '../lib/errors.js';
import { sleep } from '../lib/time.js';
import type { AgentConfig } from '../agent/config.js';
import type { ClusterStatus } from '../inventory/cluster-status.js';
import { cephSectionFor, setupLabCeph, type LabCeph } from './ceph-setup.js';
import { startForward } from './forward.js';
import { healNode } from './faults.js';
import { isSameAlive, signalRef, waitGone } from './proc.js';
import { addNode, createLabNetwork, execInNode, newLabName, spawnInNode } from './netns.js';
import { ADMIN_IP, AGENT_API_PORT, etcdEndpoints, etcdMembers, planLab, type LabNode, type LabSize } from './plan.js';
import { destroyLab, labDir, readRegistry, recordFile, setMeta } from './registry.js';

export interface LabMeta {
  plan: LabNode[];
  apiPort: number;
  /** One forward per core node's API: the failover forward only skips nodes that refuse connections, not a frozen agent. */
  coreApiPorts?: number[];
}

/** [node, args...] running ycluster itself: dist/main.js when built, else src/main.ts through tsx. */
export function yclusterCommand(): string[] {
  const js = fileURLToPath(new URL('../main.js', import.meta.url));
  if (existsSync(js)) return [process.execPath, js];
  return [process.execPath, '--import', import.meta.resolve('tsx'), fileURLToPath(new URL('../main.ts', import.meta.url))];
}

export function labMeta(name: string): LabMeta {
  const reg = readRegistry(name);
  if (!reg) throw new YcError('NOT_FOUND', `no lab "${name}" (see ycluster lab list)`);
  const meta = reg.meta as Partial<LabMeta>;
  if (!meta.plan || !meta.apiPort) throw new YcError('CORRUPT_VALUE', `lab ${name} has no plan recorded; tear it down with ycluster lab down ${name}`);
  return { plan: meta.plan, apiPort: meta.apiPort, ...(meta.coreApiPorts ? { coreApiPorts: meta.coreApiPorts } : {}) };
}

export function nodeOf(meta: LabMeta, node: string): LabNode {
  const n = meta.plan.find((p) => p.node === node);
  if (!n) throw new YcError('BAD_INPUT', `no node "${node}" in this lab (nodes: ${meta.plan.map((p) => p.node).join(', ')})`);
  return n;
}

const nodeDir = (name: string, node: string): string => join(labDir(name), 'nodes', node);

/** Every lab node sees one volumes directory (the loop driver's shared "pool"); one postgres password per lab. */
export const labVolumesDir = (name: string): string => join(labDir(name), 'volumes');
export const labPostgresPasswordFile = (name: string): string => join(labDir(name), 'postgres-password');

/**
 * Service users (postgres, docker-registry) must walk down to their sockets, configs and mounted volumes, and
 * the lab's state dir is root-only: those live under a walkable directory of their own, removed with the lab.
 */
export const labStorageRunDir = (name: string, node: string): string => join('/run/ycluster-storage', name, node);

function labStorageConfig(name: string, node: string, ceph: LabCeph | undefined): NonNullable<AgentConfig['storage']> {
  const pw = labPostgresPasswordFile(name);
  if (!existsSync(pw)) writeFileSync(pw, randomBytes(12).toString('hex') + '\n', { mode: 0o600 });
  const run = labStorageRunDir(name, node);
  mkdirSync(run, { recursive: true, mode: 0o755 });
  recordFile(name, join('/run/ycluster-storage', name));
  const common = { mountRoot: join(run, 'mnt'), runDir: join(run, 'run'), postgresPasswordFile: pw, volumeSizeMiB: 512, startTimeoutMs: 15_000 };
  if (ceph) {
    // rbd-fuse mounts and mapping records stay under the lab's root-only dir, so lab down finds their loop devices.
    return { driver: 'rbd', pool: ceph.pool, cephConf: ceph.lab.conf, keyring: ceph.lab.keyring, clientId: 'admin', mapDir: labRbdMapDir(name, node), ...common };
  }
  mkdirSync(labVolumesDir(name), { recursive: true, mode: 0o700 });
  return { driver: 'loop', volumesDir: labVolumesDir(name), ...common };
}

/** Where a node's rbd-fuse mappings live (root-only, under the lab's state dir). */
export const labRbdMapDir = (name: string, node: string): string => join(nodeDir(name, node), 'rbd');

/** Writes the agent's config as the installer would: MAC, the name and address it was given, etcd endpoints. */
function writeAgentConfig(name: string, plan: LabNode[], n: LabNode, ceph: LabCeph | undefined): string {
  const dir = nodeDir(name, n.node);
  mkdirSync(dir, { recursive: true });
  const members = etcdMembers(plan);
  const cephSection = ceph ? cephSectionFor(ceph, n.node, join(dir, 'data')) : undefined;
  const config: AgentConfig = {
    mac: n.mac,
    reportedType: n.type,
    hostname: n.node,
    ip: n.ip,
    etcdEndpoints: etcdEndpoints(plan),
    dataDir: join(dir, 'data'),
    apiPort: AGENT_API_PORT,
    apiBind: '0.0.0.0',
    interface: 'eth0',
    heartbeatTtlSeconds: 10,
    ...(n.type === 'core' || n.type === 'storage' ? { storage: labStorageConfig(name, n.node, ceph) } : {}),
    ...(cephSection ? { ceph: cephSection } : {}),
    ...(n.type === 'core'
      ? { etcdMember: { self: members.find((m) => m.name === n.node)!, members, clusterToken: `lab-${name}`, heartbeatMs: 100, electionMs: 500 } }
      : {}),
  };
  const path = join(dir, 'agent.json');
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

/** A rebooted machine keeps only its configured address (VIPs it held are gone) and has its link up. */
export async function rebootNetwork(name: string, node: string): Promise<void> {
  const n = nodeOf(labMeta(name), node);
  await execInNode(name, node, 'ip', ['addr', 'flush', 'dev', 'eth0']);
  await execInNode(name, node, 'ip', ['addr', 'add', `${n.ip}/24`, 'dev', 'eth0']);
  await healNode(name, node);
}

/** SIGTERM to the node's agent alone; waits (bounded) until it has exited. */
export async function stopAgent(name: string, node: string, graceMs = 15_000): Promise<void> {
  const agents = (readRegistry(name)?.pids ?? []).filter((p) => p.node === node && p.what === 'agent' && isSameAlive(p));
  for (const a of agents) signalRef(a, 'SIGTERM');
  await waitGone(agents, graceMs);
}

/** Starts (or restarts) the node's agent inside its namespace. */
export function startAgent(name: string, node: string): void {
  const cfg = join(nodeDir(name, node), 'agent.json');
  const [cmd, ...args] = yclusterCommand();
  const child = spawnInNode(name, node, cmd!, [...args, 'agent', '--config', cfg], { logFile: join(nodeDir(name, node), 'agent.log'), what: 'agent' });
  child.unref();
}

export interface UpOptions extends LabSize {
  name?: string;
  timeoutMs?: number;
  /** Real Ceph (mon+mgr on s1, an OSD per storage node) and the rbd volume driver instead of loop files. */
  ceph?: boolean;
  progress: (line: string) => void;
}

/** Builds the lab and waits until every node is healthy; on failure everything made is removed. */
export async function labUp(o: UpOptions): Promise<{ name: string; apiPort: number; status: ClusterStatus }> {
  const name = o.name ?? newLabName();
  const plan = planLab(o);
  const t0 = Date.now();
  const say = (msg: string): void => o.progress(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
  try {
    say(`creating lab ${name}: ${plan.map((p) => `${p.node}(${p.type})`).join(' ')}`);
    await createLabNetwork(name, { cidrPrefix: 24, adminIp: ADMIN_IP });
    for (const n of plan) await addNode(name, n.node, n.ip, 24, n.mac);
    const ceph = o.ceph ? await setupLabCeph(name, plan, say) : undefined;
    if (ceph) say(`ceph made: ${ceph.placement.mons.map((m) => `mon.${m.id} on ${m.node}`).join(', ')}, mgr.x on ${ceph.placement.monNode}; ${ceph.placement.osds.map((x) => `osd.${x.id} on ${x.node}`).join(', ')}`);
    for (const n of plan) writeAgentConfig(name, plan, n, ceph);
    say('network ready; starting agents (core agents start the etcd members)');
    for (const n of plan) startAgent(name, n.node);
    const cores = plan.filter((p) => p.type === 'core').map((p) => p.ip);
    const fwd = await startForward(name, { targetIp: cores[0]!, failover: cores.slice(1), targetPort: AGENT_API_PORT });
    const perCore: number[] = [];
    for (const ip of cores) perCore.push((await startForward(name, { targetIp: ip, targetPort: AGENT_API_PORT })).hostPort);
    setMeta(name, 'plan', plan);
    setMeta(name, 'apiPort', fwd.hostPort);
    setMeta(name, 'coreApiPorts', perCore);
    say(`API forwarded to http://127.0.0.1:${fwd.hostPort}`);
    const status = await waitHealthy(fwd.hostPort, plan.length, o.timeoutMs ?? (o.ceph ? 240_000 : 120_000), say);
    say('all nodes healthy');
    return { name, apiPort: fwd.hostPort, status };
  } catch (err) {
    say(`lab up failed: ${err instanceof Error ? err.message : String(err)}; logs in ${labDir(name)}/nodes/*/agent.log`);
    if (process.env.YCLUSTER_LAB_KEEP_ON_FAILURE !== '1') await destroyLab(name).catch(() => undefined);
    throw err;
  }
}

export async function fetchStatus(apiPort: number, timeoutMs = 5000): Promise<ClusterStatus> {
  const res = await fetch(`http://127.0.0.1:${apiPort}/api/cluster-status`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`cluster-status answered ${res.status}`);
  return (await res.json()) as ClusterStatus;
}

/** The cluster status from any core node that answers: a frozen agent accepts connections but never replies. */
export async function fetchLabStatus(meta: LabMeta): Promise<ClusterStatus> {
  try {
    return await Promise.any([meta.apiPort, ...(meta.coreApiPorts ?? [])].map((port) => fetchStatus(port, 3000)));
  } catch (err) {
    const first = err instanceof AggregateError ? (err.errors[0] as unknown) : err;
    throw first instanceof Error ? first : new Error(String(first));
  }
}

async function waitHealthy(apiPort: number, expected: number, timeoutMs: number, say: (m: string) => void): Promise<ClusterStatus> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  let lastStatus: ClusterStatus | undefined;
  let healthySince: number | undefined;
  while (Date.now() < deadline) {
    try {
      const s = await fetchStatus(apiPort);
      lastStatus = s;
      const healthy = s.nodes.filter((n) => n.healthy).length;
      const line = `${s.nodes.length}/${expected} registered, ${healthy} healthy${s.healthy ? '' : `; waiting: ${s.reasons.slice(0, 2).join('; ')}`}`;
      if (line !== last) say(line);
      last = line;
      // Healthy twice, 1.5 s apart: a leader that has just won an election takes a moment to say it is taking over.
      if (s.healthy && s.nodes.length === expected) {
        if (healthySince !== undefined && Date.now() - healthySince >= 1500) return s;
        healthySince ??= Date.now();
      } else healthySince = undefined;
    } catch (err) {
      const line = `waiting for the API (${err instanceof Error ? err.message : String(err)})`;
      if (line !== last) say(line);
      last = line;
    }
    await sleep(300);
  }
  throw new YcError('TIMEOUT', `lab not healthy after ${timeoutMs / 1000} s: ${lastStatus?.reasons.join('; ') ?? 'API never answered'}`);
}
