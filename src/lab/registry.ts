// The lab's record of everything it made, kept as JSON in its state dir so a later `destroyLab` (even from
// another process, after a crash) can remove exactly that and nothing else.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { YcError, badInput } from '../lib/errors.js';
import { isAlive, run } from '../lib/exec.js';
import { isUnder, mountTable, type MountEntry } from '../lib/mountinfo.js';
import { findByCmdline, isSameAlive, procRef, signalRef, waitGone, type ProcRef } from './proc.js';
import { abortFuseConnections, fuseMounts } from '../storage/rbd-fuse.js';

export const LABS_ROOT = '/run/ycluster/labs';
const REGISTRY_FILE = 'registry.json';

export interface PidRecord extends ProcRef {
  /** What it is, for humans and for stopForward/killNode ("relay", "etcd", ...). */
  what: string;
  /** Node short name when the process belongs to a node (killNode/stopNode include it). */
  node?: string;
}

export interface LoopRecord {
  device: string;
  /** Detached only while the device still has this backing file. */
  backingFile: string;
}

export interface ForwardRecord {
  hostPort: number;
  socketPath: string;
  targets: string[];
  targetPort: number;
  pids: number[];
}

export interface LabRegistry {
  version: 1;
  name: string;
  createdAt: string;
  namespaces: string[];
  pids: PidRecord[];
  mounts: string[];
  loops: LoopRecord[];
  files: string[];
  forwards: ForwardRecord[];
  /** Free-form data for the orchestration layer (node list, ports); never interpreted here. */
  meta: Record<string, unknown>;
}

const LAB_NAME_RE = /^[a-z][a-z0-9]{0,5}$/;

/** Lab names are 1–6 of [a-z0-9] starting with a letter: no '-', so "NAME-" prefixes never overlap between labs. */
export function validateLabName(name: string): void {
  if (!LAB_NAME_RE.test(name)) throw badInput(`invalid lab name "${name}": 1-6 characters [a-z0-9], starting with a letter`);
}

export function labDir(name: string, root: string = LABS_ROOT): string {
  validateLabName(name);
  return join(root, name);
}

export function emptyRegistry(name: string): LabRegistry {
  return { version: 1, name, createdAt: new Date().toISOString(), namespaces: [], pids: [], mounts: [], loops: [], files: [], forwards: [], meta: {} };
}

function isStrArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** Parses registry JSON; a damaged file is an error naming the file, never silently an empty lab. */
export function parseRegistry(text: string, where: string): LabRegistry {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new YcError('CORRUPT_VALUE', `${where}: not JSON`, { cause: err });
  }
  const r = v as Partial<LabRegistry> | null;
  if (
    !r || typeof r !== 'object' || r.version !== 1 || typeof r.name !== 'string' ||
    !isStrArray(r.namespaces) || !Array.isArray(r.pids) || !isStrArray(r.mounts) || !Array.isArray(r.loops) ||
    !isStrArray(r.files) || !Array.isArray(r.forwards) || typeof r.meta !== 'object' || r.meta === null
  ) {
    throw new YcError('CORRUPT_VALUE', `${where}: not a lab registry`);
  }
  const pids = r.pids.filter((p): p is PidRecord => Number.isInteger(p?.pid) && p.pid > 1 && typeof p.start === 'string');
  return { ...(r as LabRegistry), pids };
}

export function readRegistryAt(dir: string): LabRegistry | undefined {
  const file = join(dir, REGISTRY_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseRegistry(text, file);
}

function writeRegistryAt(dir: string, reg: LabRegistry): void {
  const file = join(dir, REGISTRY_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(reg, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
}

const lockWait = new Int32Array(new SharedArrayBuffer(4));

/** A lock file holding the owner's PID; a lock left by a dead process is taken over. Bounded: about 2 s. */
function withLock<T>(dir: string, fn: () => T): T {
  const lock = join(dir, 'registry.lock');
  for (let i = 0; ; i++) {
    try {
      const fd = openSync(lock, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(readFileSafe(lock));
      if (!Number.isInteger(owner) || owner <= 0 || !isAlive(owner)) {
        rmSync(lock, { force: true });
        continue;
      }
      if (i >= 200) throw new YcError('TIMEOUT', `lab registry ${dir} stays locked by PID ${owner}`);
      Atomics.wait(lockWait, 0, 0, 10);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Creates the state dir and an empty registry; a lab of that name that already exists is a conflict. */
export function initRegistryAt(dir: string, name: string): LabRegistry {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return withLock(dir, () => {
    if (existsSync(join(dir, REGISTRY_FILE))) throw new YcError('CONFLICT', `lab ${name} already exists (${dir})`);
    const reg = emptyRegistry(name);
    writeRegistryAt(dir, reg);
    return reg;
  });
}

/** Synchronous read-modify-write under the lock, so concurrent async steps in one process never interleave. */
export function updateRegistryAt(dir: string, fn: (reg: LabRegistry) => void): LabRegistry {
  return withLock(dir, () => {
    const reg = readRegistryAt(dir);
    if (!reg) throw new YcError('NOT_FOUND', `no lab registry in ${dir}`);
    fn(reg);
    writeRegistryAt(dir, reg);
    return reg;
  });
}

export const readRegistry = (name: string): LabRegistry | undefined => readRegistryAt(labDir(name));
export const updateRegistry = (name: string, fn: (reg: LabRegistry) => void): LabRegistry => updateRegistryAt(labDir(name), fn);

function addUnique<T>(list: T[], item: T): void {
  if (!list.includes(item)) list.push(item);
}

export function recordNamespace(name: string, ns: string): void {
  updateRegistry(name, (r) => addUnique(r.namespaces, ns));
}
export function forgetNamespace(name: string, ns: string): void {
  updateRegistry(name, (r) => void (r.namespaces = r.namespaces.filter((n) => n !== ns)));
}
export function recordPid(name: string, rec: PidRecord): void {
  updateRegistry(name, (r) => {
    r.pids = r.pids.filter((p) => p.pid !== rec.pid);
    r.pids.push(rec);
  });
}
export function forgetPids(name: string, pids: readonly number[]): void {
  updateRegistry(name, (r) => void (r.pids = r.pids.filter((p) => !pids.includes(p.pid))));
}
/** Record a mount point before mounting; destroyLab unmounts it (deepest first) if it is still mounted. */
export function recordMount(name: string, mountPoint: string): void {
  updateRegistry(name, (r) => addUnique(r.mounts, mountPoint));
}
export function forgetMount(name: string, mountPoint: string): void {
  updateRegistry(name, (r) => void (r.mounts = r.mounts.filter((m) => m !== mountPoint)));
}
export function recordLoop(name: string, rec: LoopRecord): void {
  updateRegistry(name, (r) => {
    r.loops = r.loops.filter((l) => l.device !== rec.device);
    r.loops.push(rec);
  });
}
export function forgetLoop(name: string, device: string): void {
  updateRegistry(name, (r) => void (r.loops = r.loops.filter((l) => l.device !== device)));
}
/** A file or directory outside the state dir that destroyLab must remove (the state dir goes anyway). */
export function recordFile(name: string, path: string): void {
  updateRegistry(name, (r) => addUnique(r.files, path));
}
export function setMeta(name: string, key: string, value: unknown): void {
  updateRegistry(name, (r) => void (r.meta[key] = value));
}

export interface LabSummary {
  name: string;
  dir: string;
  createdAt?: string;
  /** Set when the registry file is missing or unreadable (a half-made or damaged lab: destroyLab still cleans it). */
  problem?: string;
}

/** Every lab state dir under root, including damaged ones. */
export function listLabs(root: string = LABS_ROOT): LabSummary[] {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return [];
  }
  const out: LabSummary[] = [];
  for (const name of entries.sort()) {
    if (!LAB_NAME_RE.test(name)) continue;
    const dir = join(root, name);
    try {
      const reg = readRegistryAt(dir);
      out.push(reg ? { name, dir, createdAt: reg.createdAt } : { name, dir, problem: 'no registry file' });
    } catch (err) {
      out.push({ name, dir, problem: (err as Error).message });
    }
  }
  return out;
}

// ---- teardown -------------------------------------------------------------------------------------------

/** `ip netns list` names ("NAME (id: 3)" lines). */
export async function listNetns(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list'], { timeoutMs: 10_000, allowFailure: true });
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((n) => n.length > 0);
}

/** Processes in a namespace, with start times; none when it does not exist. */
export async function netnsProcs(ns: string): Promise<ProcRef[]> {
  const r = await run('ip', ['netns', 'pids', ns], { timeoutMs: 10_000, allowFailure: true });
  if (r.code !== 0) return [];
  return r.stdout.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number)
    .filter((pid) => pid !== process.pid).map(procRef).filter((p): p is ProcRef => p !== undefined);
}

/** Mount points in this mount namespace, in mount order. */
export function mountPoints(): string[] {
  try {
    return mountTable().map((m) => m.mountPoint);
  } catch {
    return [];
  }
}

async function loopDevices(): Promise<LoopRecord[]> {
  const r = await run('losetup', ['-l', '-n', '-O', 'NAME,BACK-FILE'], { timeoutMs: 10_000, allowFailure: true });
  const out: LoopRecord[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S+)\s+(.*?)\s*$/.exec(line);
    if (m?.[1] && m[2]) out.push({ device: m[1], backingFile: m[2].replace(/ \(deleted\)$/, '') });
  }
  return out;
}

/**
 * Loop devices the lab's agents attached on rbd-fuse files (records DIR/nodes/NODE/rbd/VOLUME.map.json written
 * by src/storage/rbd-fuse.ts). Once the agent's mount namespace is gone, the kernel names such a backing file
 * only relative to its detached FUSE mount ("/VOLUME"), so it no longer looks like a path under the lab dir.
 */
function rbdFuseLoops(dir: string): { device: string; backingFiles: string[] }[] {
  const out: { device: string; backingFiles: string[] }[] = [];
  const nodes = join(dir, 'nodes');
  let names: string[];
  try {
    names = readdirSync(nodes);
  } catch {
    return out;
  }
  for (const node of names) {
    let files: string[];
    try {
      files = readdirSync(join(nodes, node, 'rbd')).filter((f) => f.endsWith('.map.json'));
    } catch {
      continue;
    }
    for (const f of files) {
      const volume = f.slice(0, -'.map.json'.length);
      try {
        const m = JSON.parse(readFileSync(join(nodes, node, 'rbd', f), 'utf8')) as { device?: unknown; fuseDir?: unknown };
        if (typeof m.device === 'string' && /^\/dev\/loop\d+$/.test(m.device) && typeof m.fuseDir === 'string') {
          out.push({ device: m.device, backingFiles: [join(m.fuseDir, volume), `/${volume}`] });
        }
      } catch {
        /* a torn record: nothing to go by */
      }
    }
  }
  return out;
}

/**
 * The FUSE connections of mounts under the lab dir, as the lab's own processes see them: an agent runs under
 * `ip netns exec`, which gives it a mount namespace of its own, so its rbd-fuse mounts are not in ours. (Missed,
 * an rbd-fuse killed with XFS dirty above it was left as a zombie stuck in the unmount of its namespace.)
 */
async function labFuseConnections(name: string, dir: string, reg: LabRegistry | undefined): Promise<number[]> {
  const tables: MountEntry[][] = [mountTable()];
  const refs: ProcRef[] = [...(reg?.pids ?? [])];
  for (const ns of await labNamespaces(name, reg)) refs.push(...(await netnsProcs(ns)));
  const seen = new Set<string>();
  for (const r of refs) {
    try {
      const mntNs = readlinkSync(`/proc/${r.pid}/ns/mnt`);
      if (seen.has(mntNs)) continue;
      seen.add(mntNs);
      tables.push(mountTable(r.pid));
    } catch {
      /* gone meanwhile */
    }
  }
  const conns = new Set<number>();
  for (const t of tables) for (const f of fuseMounts(t)) if (isUnder(f.mountPoint, dir)) conns.add(f.conn);
  return [...conns];
}

export interface DestroyReport {
  killed: number;
  namespaces: string[];
  unmounted: string[];
  detached: string[];
}

async function killAll(name: string, dir: string, reg: LabRegistry | undefined, timeoutMs: number): Promise<number> {
  let killed = 0;
  // Rounds, because a dying supervisor may have just forked; bounded.
  for (let round = 0; round < 5; round++) {
    const targets: ProcRef[] = (reg?.pids ?? []).filter(isSameAlive);
    for (const ns of await labNamespaces(name, reg)) targets.push(...(await netnsProcs(ns)));
    targets.push(...findByCmdline(dir));
    const live = targets.filter(isSameAlive);
    if (live.length === 0) break;
    for (const ref of live) if (signalRef(ref, 'SIGKILL')) killed++;
    await waitGone(live, timeoutMs);
  }
  return killed;
}

async function labNamespaces(name: string, reg: LabRegistry | undefined): Promise<string[]> {
  const prefix = `${name}-`;
  const all = new Set((reg?.namespaces ?? []).filter((n) => n.startsWith(prefix)));
  for (const n of await listNetns()) if (n.startsWith(prefix)) all.add(n);
  return [...all];
}

async function unmountAll(targets: string[]): Promise<string[]> {
  const done: string[] = [];
  const mounted = new Set(mountPoints());
  for (const mp of [...new Set(targets)].sort((a, b) => b.length - a.length)) {
    if (!mounted.has(mp)) continue;
    const r = await run('umount', [mp], { timeoutMs: 20_000, allowFailure: true });
    if (r.code === 0) done.push(mp);
  }
  return done;
}

/**
 * Removes everything the lab made: processes (recorded ones checked by start time, every process in a lab
 * namespace, every process naming the state dir), mounts, loop devices, namespaces, recorded files and the
 * state dir. Idempotent; touches only things named by this lab's registry, its "NAME-" namespaces or its dir.
 */
export async function destroyLab(name: string, opts: { root?: string; timeoutMs?: number } = {}): Promise<DestroyReport> {
  const dir = labDir(name, opts.root);
  let reg: LabRegistry | undefined;
  try {
    reg = readRegistryAt(dir);
  } catch {
    reg = undefined; // damaged: still clean up by namespace prefix, command line and mounts under dir
  }
  const timeoutMs = opts.timeoutMs ?? 5_000;
  // rbd-fuse killed while a file system above it still has dirty data waits on writeback only it could do (a
  // FUSE deadlock that pins the loop device): abort the lab's FUSE connections first, so that writeback fails.
  await abortFuseConnections(await labFuseConnections(name, dir, reg)).catch(() => undefined);
  const killed = await killAll(name, dir, reg, timeoutMs);

  const mountTargets = () => [...(reg?.mounts ?? []), ...mountPoints().filter((m) => isUnder(m, dir))];
  const unmounted = await unmountAll(mountTargets());
  const detached: string[] = [];
  const mapped = rbdFuseLoops(dir);
  for (const loop of await loopDevices()) {
    const recorded = reg?.loops.some((l) => l.device === loop.device && l.backingFile === loop.backingFile) ?? false;
    if (!recorded && !isUnder(loop.backingFile, dir) && !mapped.some((m) => m.device === loop.device && m.backingFiles.includes(loop.backingFile))) continue;
    const r = await run('losetup', ['-d', loop.device], { timeoutMs: 10_000, allowFailure: true });
    if (r.code === 0) detached.push(loop.device);
  }
  // Second pass: a file system under a loop device (or a FUSE mount backing one) is free only now.
  unmounted.push(...(await unmountAll(mountTargets())));
  for (const mp of mountTargets().filter((m) => mountPoints().includes(m))) {
    const r = await run('umount', ['-l', mp], { timeoutMs: 10_000, allowFailure: true });
    if (r.code === 0) unmounted.push(mp);
  }

  const namespaces = await labNamespaces(name, reg);
  for (const ns of namespaces) await run('ip', ['netns', 'del', ns], { timeoutMs: 10_000, allowFailure: true });

  const leftovers: string[] = [];
  const left = (await listNetns()).filter((n) => n.startsWith(`${name}-`));
  if (left.length > 0) leftovers.push(`namespaces ${left.join(' ')}`);
  const stillMounted = mountTargets().filter((m) => mountPoints().includes(m));
  if (stillMounted.length > 0) leftovers.push(`mounts ${stillMounted.join(' ')}`);
  for (const f of reg?.files ?? []) {
    // Guard against a damaged record naming a top-level directory.
    if (f.startsWith('/') && f.split('/').filter(Boolean).length >= 2 && !stillMounted.some((m) => isUnder(m, f))) {
      rmSync(f, { recursive: true, force: true });
    }
  }
  // Never recurse into a file system that is still mounted under the state dir.
  if (!stillMounted.some((m) => isUnder(m, dir))) rmSync(dir, { recursive: true, force: true });
  const procs = findByCmdline(dir).filter(isSameAlive);
  if (procs.length > 0) leftovers.push(`processes ${procs.map((p) => p.pid).join(' ')}`);
  if (leftovers.length > 0) throw new YcError('INTERNAL', `lab ${name} not fully removed: ${leftovers.join('; ')}`, { retryable: true });
  return { killed, namespaces, unmounted, detached };
}
