// Lab network: a bridge in its own namespace ("NAME-sw"), one namespace per node with eth0 cabled to it, and an
// admin namespace for forwards. Every link is created directly inside lab namespaces: the host namespace never
// holds a lab interface, address or route, even for a moment.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { badInput, YcError } from '../lib/errors.js';
import { run, type ExecOptions, type ExecResult } from '../lib/exec.js';
import { normalizeMac, parseIpv4 } from '../lib/net.js';
import { procRef } from './proc.js';
import {
  destroyLab,
  forgetNamespace,
  initRegistryAt,
  labDir,
  listNetns,
  netnsProcs,
  readRegistry,
  recordNamespace,
  recordPid,
  setMeta,
  validateLabName,
} from './registry.js';
import { killNodeProcs } from './faults.js';
import { ADMIN_NODE, NODE_IFACE, SWITCH_NODE, bridgeName, nsName, switchNs, switchPort, validateNodeName } from './names.js';

export { ADMIN_NODE, IFNAMSIZ, NODE_IFACE, bridgeName, newLabName, nsName, switchNs, switchPort, validateNodeName } from './names.js';

const ip = (args: string[]): Promise<ExecResult> => run('ip', args, { timeoutMs: 10_000 });

async function addNamespace(name: string, ns: string): Promise<void> {
  // Recorded before it exists, so a crash in between leaves nothing unrecorded.
  recordNamespace(name, ns);
  await ip(['netns', 'add', ns]);
  await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
}

export interface LabNetworkOptions {
  /** Prefix length of the lab subnet (24 for 10.0.0.0/24). */
  cidrPrefix: number;
  /** Address of the admin namespace, from which forwards reach lab services. */
  adminIp: string;
}

/** Creates the state dir, registry, switch namespace with its bridge, and the admin namespace. */
export async function createLabNetwork(name: string, opts: LabNetworkOptions): Promise<void> {
  validateLabName(name);
  checkPrefix(opts.cidrPrefix);
  parseIpv4(opts.adminIp);
  const existing = (await listNetns()).filter((n) => n.startsWith(`${name}-`));
  if (existing.length > 0) throw new YcError('CONFLICT', `lab ${name} already has namespaces: ${existing.join(' ')}`);
  initRegistryAt(labDir(name), name);
  setMeta(name, 'network', { cidrPrefix: opts.cidrPrefix, adminIp: opts.adminIp });
  const sw = switchNs(name);
  await addNamespace(name, sw);
  await ip(['-n', sw, 'link', 'add', bridgeName(name), 'type', 'bridge']);
  await ip(['-n', sw, 'link', 'set', bridgeName(name), 'up']);
  await addNode(name, ADMIN_NODE, opts.adminIp, opts.cidrPrefix);
}

function checkPrefix(prefix: number): void {
  if (!Number.isInteger(prefix) || prefix < 8 || prefix > 30) throw badInput(`invalid prefix length ${prefix}`);
}

/**
 * Adds node namespace NAME-node with eth0 cabled to the bridge. ip null leaves eth0 unaddressed (a node
 * that takes its address from the lab's DHCP server).
 */
export async function addNode(name: string, node: string, ipAddr: string | null, prefix: number, mac?: string): Promise<void> {
  validateNodeName(name, node);
  checkPrefix(prefix);
  if (ipAddr !== null) parseIpv4(ipAddr);
  const macArgs = mac === undefined ? [] : ['address', normalizeMac(mac)];
  const ns = nsName(name, node);
  const sw = switchNs(name);
  await addNamespace(name, ns);
  await ip(['-n', ns, 'link', 'add', NODE_IFACE, ...macArgs, 'type', 'veth', 'peer', 'name', switchPort(name, node), 'netns', sw]);
  await ip(['-n', sw, 'link', 'set', switchPort(name, node), 'master', bridgeName(name), 'up']);
  if (ipAddr !== null) await ip(['-n', ns, 'addr', 'add', `${ipAddr}/${prefix}`, 'dev', NODE_IFACE]);
  await ip(['-n', ns, 'link', 'set', NODE_IFACE, 'up']);
}

/** Kills the node's processes and deletes its namespace (the cable goes with it). Idempotent. */
export async function removeNode(name: string, node: string): Promise<void> {
  validateNodeName(name, node);
  const ns = nsName(name, node);
  await killNodeProcs(name, node, 'SIGKILL', 5_000);
  if ((await listNetns()).includes(ns)) await ip(['netns', 'del', ns]);
  if (readRegistry(name)) forgetNamespace(name, ns);
}

/** Runs a command inside the node's namespace, bounded in time (see lib/exec run). */
export function execInNode(name: string, node: string, cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  validateNodeName(name, node);
  return run('ip', ['netns', 'exec', nsName(name, node), cmd, ...args], opts);
}

export interface SpawnInNodeOptions {
  /** stdout and stderr are appended here (the directory is created). */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Label in the registry ("etcd", "agent"); defaults to the command's name. */
  what?: string;
}

/**
 * Starts a long-running process inside the node's namespace: detached, in its own process group, output to
 * logFile, PID and start time recorded in the registry. `ip netns exec` execs the command, so the child's PID
 * is the command's PID. The caller owns the ChildProcess (listen for 'exit'; call unref() to not wait on it).
 */
export function spawnInNode(name: string, node: string, cmd: string, args: readonly string[], opts: SpawnInNodeOptions): ChildProcess {
  validateNodeName(name, node);
  mkdirSync(dirname(opts.logFile), { recursive: true });
  const fd = openSync(opts.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn('ip', ['netns', 'exec', nsName(name, node), cmd, ...args], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid !== undefined) {
    const ref = procRef(pid);
    if (ref) recordPid(name, { ...ref, what: opts.what ?? cmd.split('/').pop() ?? cmd, node });
  }
  return child;
}

/** Adds an address (CIDR, e.g. "10.0.0.100/24") inside the node; true when it was added, false when present. */
export async function addAddress(name: string, node: string, cidr: string, dev: string = NODE_IFACE): Promise<boolean> {
  validateNodeName(name, node);
  const r = await run('ip', ['-n', nsName(name, node), 'addr', 'add', cidr, 'dev', dev], { timeoutMs: 10_000, allowFailure: true });
  if (r.code === 0) return true;
  if (/exists|already assigned/i.test(r.stderr)) return false;
  throw new YcError('INTERNAL', `ip addr add ${cidr} in ${nsName(name, node)}: ${r.stderr.trim()}`);
}

/** Removes an address inside the node; true when it was removed, false when absent. */
export async function delAddress(name: string, node: string, cidr: string, dev: string = NODE_IFACE): Promise<boolean> {
  validateNodeName(name, node);
  const r = await run('ip', ['-n', nsName(name, node), 'addr', 'del', cidr, 'dev', dev], { timeoutMs: 10_000, allowFailure: true });
  if (r.code === 0) return true;
  if (/cannot assign|not found|no such/i.test(r.stderr)) return false;
  throw new YcError('INTERNAL', `ip addr del ${cidr} in ${nsName(name, node)}: ${r.stderr.trim()}`);
}

/** Node short names that currently have a namespace (excluding the switch). */
export async function listNodes(name: string): Promise<string[]> {
  validateLabName(name);
  const prefix = `${name}-`;
  return (await listNetns()).filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length)).filter((n) => n !== SWITCH_NODE).sort();
}

/** PIDs currently in the node's namespace. */
export async function nodePids(name: string, node: string): Promise<number[]> {
  return (await netnsProcs(nsName(name, node))).map((p) => p.pid);
}

/** Tears the network down; in this design that is the whole lab (processes, mounts, state dir): see destroyLab. */
export async function destroyLabNetwork(name: string): Promise<void> {
  await destroyLab(name);
}
