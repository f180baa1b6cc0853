// Builds the storage leader's dependencies from this node's agent config and the cluster config, and wraps
// the role so that a node which does not lead storage keeps checking that nothing of the role runs on it.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { VolumeStatus } from '../storage/driver.js';
import type { FenceTargets } from '../watchdog/fence-file.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { YcError, errorMessage } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import { writeDurable } from '../lib/files.js';
import { RateLimitedLog, type Logger } from '../lib/log.js';
import { parseCidr } from '../lib/net.js';
import type { ServiceSpec } from '../lib/supervisor.js';
import { monoMs, withTimeout } from '../lib/time.js';
import { POSTGRES_BIN_DIR, asUser, postgresService, preparePostgres, type PostgresServiceOptions } from '../services/postgres.js';
import { QDRANT_NOT_INSTALLED, qdrantService, qdrantUnavailable } from '../services/qdrant.js';
import { registryService } from '../services/registry.js';
import { clearStaleVip } from '../services/vip.js';
import type { StateClient } from '../state/client.js';
import { keySuffix, keys, prefixes } from '../state/keys.js';
import { defaultConfig, type Check, type ClusterConfig } from '../state/schema.js';
import { createStorageLeaderRole, type StorageLeaderRole } from '../storage-leader/role.js';
import { EtcdVolumeLedger } from '../storage-leader/ledger.js';
import type { StatefulService, StorageLeaderDeps, VolumeLedger, VolumeServices } from '../storage-leader/types.js';
import { LoopDriver } from '../storage/loop.js';
import { RbdDriver } from '../storage/rbd.js';
import type { VolumeDriver, VolumeSpec } from '../storage/driver.js';
import type { StorageConfig } from './config.js';
import type { LedRole, RoleContext, StepDownKind } from './role.js';

export const POSTGRES_PORT = 5432;
export const REGISTRY_PORT = 5000;
export const QDRANT_HTTP_PORT = 6333;
export const QDRANT_GRPC_PORT = 6334;
/**
 * A core node leads storage only when no storage node takes it first: a core node's death also takes an etcd
 * member (its raft leadership renews every lease, so the old storage key outlives the TTL) and a Ceph monitor
 * (the monitors' writes wait for their election), and a storage leader there would wait for both.
 */
export const CORE_STORAGE_YIELD_MS = 300;

/** Whether a storage node other than the last leader could take storage now: alive (heartbeat), not drained. */
export function storageNodeCanLead(nodes: readonly { hostname: string; type: string }[], alive: ReadonlySet<string>, drained: ReadonlySet<string>, lastLeader: string | undefined): boolean {
  return nodes.some((n) => n.type === 'storage' && n.hostname !== lastLeader && alive.has(n.hostname) && !drained.has(n.hostname));
}

/** A core node's wait before campaigning for storage: only while a storage node could win instead. */
export async function coreStorageYieldMs(state: StateClient, lastLeader: string | undefined): Promise<number> {
  const [nodes, beats, drains] = await Promise.all([state.list(prefixes.nodes), state.list(prefixes.heartbeats), state.list(prefixes.drains)]);
  const alive = new Set(beats.entries.map((b) => keySuffix(prefixes.heartbeats, b.key)));
  const drained = new Set(drains.entries.map((d) => keySuffix(prefixes.drains, d.key)));
  return storageNodeCanLead(nodes.entries.map((e) => e.value), alive, drained, lastLeader) ? CORE_STORAGE_YIELD_MS : 0;
}
/**
 * Whether a node should get ready when the storage leader announces a handover: not while drained (its election
 * does not campaign); a core node only where it would not yield to a storage node (the rule it campaigns by).
 */
export async function mayTakeOverStorage(state: StateClient, node: { hostname: string; type: string }, leader: string): Promise<boolean> {
  if ((await state.get(keys.drain(node.hostname))) !== undefined) return false;
  return node.type !== 'core' || (await coreStorageYieldMs(state, leader)) === 0;
}

/** How often a node that does not lead storage checks that nothing of the role runs on it. */
export const FOLLOW_INTERVAL_MS = 2000;
/** How long a takeover waits for a follow pass under way to end before it gives up (the election then resigns). */
export const FOLLOW_WAIT_MS = 10_000;
/** How often every node that can lead storage checks the storage backend's peers (Ceph: the OSDs). */
export const PEER_CHECK_INTERVAL_MS = 1000;

/**
 * What a forced stepDown of the storage leader aims to finish in: the VIP, the services' graceful stop and the
 * release of the volumes, sized as the Election's default margin less 100 ms.
 */
export function stepDownBudgetMs(ttlSeconds: number): number {
  const margin = Math.min(1000, Math.round((ttlSeconds * 1000) / 4));
  return Math.max(300, margin - 100);
}

/**
 * Time past the budget that a leader cut off from Ceph may still need: its services cannot stop while their I/O
 * hangs, so the teardown aborts that I/O near the end of the budget and waits for them to die. On a loaded 2-core
 * lab machine the whole step-down took 496-647 ms against a 650 ms budget; the reserve covers a slower node and
 * the agent's own lateness.
 */
const STORAGE_ABORT_RESERVE_MS = 350;

/**
 * The storage election's margin: the leader fences itself this long before its lease can expire, so the whole
 * teardown, the abort path included, ends before a successor can take the volumes.
 */
export function storageMarginMs(ttlSeconds: number): number {
  return stepDownBudgetMs(ttlSeconds) + STORAGE_ABORT_RESERVE_MS;
}

/** Health checks every 100 ms until the service first answers (fast takeover), then at most once per slowMs. */
export function fastUntilHealthy(check: () => Promise<boolean>, slowMs = 1000): () => Promise<boolean> {
  let okAt = Number.NEGATIVE_INFINITY;
  return async () => {
    if (monoMs() - okAt < slowMs) return true;
    const ok = await check();
    okAt = ok ? monoMs() : Number.NEGATIVE_INFINITY;
    return ok;
  };
}

const quick = (spec: ServiceSpec): ServiceSpec => ({
  ...spec,
  ...(spec.health ? { health: fastUntilHealthy(spec.health) } : {}),
  healthIntervalMs: 100,
  // A takeover's write gap ends only when the services answer: look often until they first do.
  startupHealthIntervalMs: 25,
  // Same patience as the specs' own 10 checks at their slower interval.
  unhealthyRestartAfter: 10,
});

/**
 * Sets the postgres superuser's password in single-user mode before the server starts, once per password:
 * a digest beside the data directory (on the volume) records what was applied, so a failover pays nothing.
 */
export async function applyPostgresPassword(o: PostgresServiceOptions, password: string, markerPath: string): Promise<boolean> {
  const digest = createHash('sha256').update(password).digest('hex');
  const applied = await readFile(markerPath, 'utf8').catch(() => '');
  if (applied.trim() === digest) return false;
  const sql = `ALTER ROLE postgres PASSWORD '${password.replace(/'/g, "''")}';\n`;
  const single = asUser(o.user ?? 'postgres', [join(o.binDir ?? POSTGRES_BIN_DIR, 'postgres'), '--single', '-D', o.dataDir, '-c', 'listen_addresses=', 'postgres']);
  const res = await run(single.command, single.args, { input: sql, timeoutMs: 60_000, allowFailure: true });
  if (res.code !== 0 || /ERROR/.test(res.stdout + res.stderr)) throw new YcError('INTERNAL', `setting the postgres password failed: ${(res.stderr || res.stdout).trim().slice(0, 300)}`);
  // Durable: a marker lost in a crash (kept only in the page cache; seen after every kill -9 within half a
  // minute of a takeover) made the next takeover set the password again, a single-user run of 0.8 s.
  await writeDurable(markerPath, digest + '\n');
  return true;
}

export function readPassword(path: string | undefined): string | undefined {
  if (!path) return undefined;
  const text = readFileSync(path, 'utf8').trim();
  if (text === '') throw new YcError('BAD_INPUT', `postgres password file ${path} is empty`);
  return text;
}

/** The configured volume driver: loop images in a shared directory (lab), or RBD images in a Ceph pool. */
export function volumeDriver(storage: StorageConfig, dataDir: string, logger?: Logger): VolumeDriver {
  if (storage.driver === 'loop') return new LoopDriver({ dir: storage.volumesDir });
  return new RbdDriver({
    pool: storage.pool,
    conf: storage.cephConf,
    id: storage.clientId,
    keyring: storage.keyring,
    runDir: storage.mapDir ?? join(dataDir, 'rbd'),
    // The agent's: a leader cut off from Ceph must abort its volumes' I/O within its margin, without a process start.
    fusectlDir: join(storage.mapDir ?? join(dataDir, 'rbd'), 'fusectl'),
    ...(storage.kernelRbd === undefined ? {} : { kernel: storage.kernelRbd }),
    ...(logger ? {
      onSlow: (command: string, ms: number) => logger.info('slow ceph command', { command, ms }),
      onWarmUnusable: (volume: string, error: string) => logger.warn('an rbd-fuse kept warm was dropped', { volume, error }),
    } : {}),
  });
}

/** The storage leader's dependencies for this node: pure apart from reading the password file. */
export function buildStorageDeps(storage: StorageConfig, iface: string, dataDir: string, cluster: ClusterConfig, ledger: VolumeLedger, logger?: Logger): StorageLeaderDeps {
  const runRoot = storage.runDir ?? join(dataDir, 'storage-run');
  const size = storage.volumeSizeMiB;
  const volumes: VolumeSpec[] = [
    { name: 'postgres', sizeMiB: size, fsType: 'xfs' },
    { name: 'registry', sizeMiB: size, fsType: 'xfs' },
  ];
  const password = readPassword(storage.postgresPasswordFile);
  const postgres: VolumeServices = (v) => {
    const o: PostgresServiceOptions = {
      dataDir: join(v.mountPoint, 'pgdata'),
      runDir: join(runRoot, 'postgres'),
      listen: '0.0.0.0',
      port: POSTGRES_PORT,
      allowCidrs: [cluster.network],
      logFile: join(dataDir, 'postgres.log'),
    };
    const spec = postgresService(o);
    const prepare = async (): Promise<void> => {
      await preparePostgres(o);
      if (password !== undefined) await applyPostgresPassword(o, password, join(v.mountPoint, 'password-applied'));
    };
    return [{ ...quick(spec), prepare }];
  };
  if (storage.qdrantBinary) volumes.push({ name: 'qdrant', sizeMiB: size, fsType: 'xfs' });
  const registry: VolumeServices = (v): StatefulService[] => [
    quick(registryService({ dataDir: join(v.mountPoint, 'registry'), runDir: join(runRoot, 'registry'), addr: `0.0.0.0:${REGISTRY_PORT}`, logFile: join(dataDir, 'registry.log') })),
    // Listed so that status shows it; it runs only where its binary is configured.
    ...(storage.qdrantBinary ? [] : [{ name: 'qdrant', unavailable: QDRANT_NOT_INSTALLED }]),
  ];
  const services: Record<string, VolumeServices> = { postgres, registry };
  if (storage.qdrantBinary) {
    const binary = storage.qdrantBinary;
    services.qdrant = (v) => {
      const why = qdrantUnavailable({ binary });
      if (why) return [{ name: 'qdrant', unavailable: why }];
      return [quick(qdrantService({ binary, dataDir: join(v.mountPoint, 'qdrant'), host: '0.0.0.0', httpPort: QDRANT_HTTP_PORT, grpcPort: QDRANT_GRPC_PORT, logFile: join(dataDir, 'qdrant.log') }))];
    };
  }
  const prefix = parseCidr(cluster.network).prefix;
  return {
    driver: volumeDriver(storage, dataDir, logger),
    volumes,
    ledger,
    mountRoot: storage.mountRoot,
    services,
    vip: { iface, cidr: `${cluster.storageVip}/${prefix}` },
    stepDownBudgetMs: stepDownBudgetMs(cluster.electionTtlSeconds),
    startTimeoutMs: storage.startTimeoutMs,
  };
}

/**
 * The storage election's role. The inner StorageLeaderRole is built once, from the cluster config read at the
 * first need. While this node does not lead (and is not taking over or stepping down), follow() runs every
 * FOLLOW_INTERVAL_MS: anything of the role found here is stopped and raised as a split-brain alarm.
 * Follow passes and takeovers never overlap, so a pass cannot mistake our own starting postgres for a stray.
 */
export class StorageRole implements LedRole {
  private inner: StorageLeaderRole | undefined;
  private loading: Promise<StorageLeaderRole> | undefined;
  /** From lead() until its stepDown has finished. */
  private busy = false;
  private following: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private lastFollowError: string | undefined;

  constructor(private readonly ctx: RoleContext, private readonly storage: StorageConfig) {
    // A VIP left by a crashed run of this agent: nothing leads here yet, so it is stale, not a split brain.
    this.following = this.role()
      .then(async (r) => {
        const vip = this.deps?.vip;
        if (vip && (await clearStaleVip(vip.iface, vip.cidr))) ctx.logger.warn('removed a stale storage VIP left by an earlier run', vip);
        await r.follow();
      })
      .catch((err: unknown) => this.noteFollowError(err));
    this.timer = setInterval(() => this.followTick(), FOLLOW_INTERVAL_MS);
    this.timer.unref();
    this.peerLog = new RateLimitedLog(ctx.logger, 60_000);
    this.peerTimer = setInterval(() => void this.checkPeers(), PEER_CHECK_INTERVAL_MS);
    this.peerTimer.unref();
  }

  private peerTimer: NodeJS.Timeout | undefined;
  private checkingPeers = false;
  private readonly peerLog: RateLimitedLog;

  /** Leader or not: a dead OSD node stalls the leader's I/O, and the next leader's lock break, until Ceph knows. */
  private async checkPeers(): Promise<void> {
    const driver = this.deps?.driver;
    if (driver?.checkPeers === undefined || this.checkingPeers) return;
    this.checkingPeers = true;
    try {
      const done = await driver.checkPeers();
      if (done.length > 0) this.ctx.logger.info('told the storage backend of unreachable peers', { done });
    } catch (err) {
      this.peerLog.warn('peer-check', 'storage peer check failed', { error: errorMessage(err) });
    } finally {
      this.checkingPeers = false;
    }
  }

  private deps: StorageLeaderDeps | undefined;

  private role(): Promise<StorageLeaderRole> {
    if (this.inner) return Promise.resolve(this.inner);
    this.loading ??= (async () => {
      const cluster = (await this.ctx.state.getValue(keys.config)) ?? defaultConfig;
      this.deps = {
        ...buildStorageDeps(this.storage, this.ctx.config.interface, this.ctx.config.dataDir, cluster, new EtcdVolumeLedger(this.ctx.state), this.ctx.logger),
        mayTakeOver: (leader) => mayTakeOverStorage(this.ctx.state, this.ctx.node, leader),
      };
      // Without it an abort still works, only slower: not a reason to keep the role from starting.
      await this.deps.driver.start?.().catch((err: unknown) => this.ctx.logger.warn('volume driver set-up failed', { error: errorMessage(err) }));
      this.inner = createStorageLeaderRole(this.ctx, this.deps);
      if (this.leader !== undefined) this.inner.onNewLeader(this.leader.node);
      return this.inner;
    })().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private noteFollowError(err: unknown): void {
    this.lastFollowError = errorMessage(err);
    this.ctx.logger.warn('storage follow pass failed', { error: this.lastFollowError });
  }

  /** One follow pass, unless this node is leading or changing over; exposed for an agent that wants to drive it. */
  followTick(): void {
    if (this.busy) return;
    this.following = this.following.then(async () => {
      if (this.busy) return;
      await (await this.role()).follow();
      this.lastFollowError = undefined;
    }).catch((err: unknown) => this.noteFollowError(err));
  }

  async follow(): Promise<void> {
    this.followTick();
    await this.following;
  }

  async lead(token: number, signal: AbortSignal): Promise<void> {
    this.busy = true;
    // A follow pass stuck for good (its every step is bounded, but a read of /proc can hang on a process stuck
    // in I/O) must not keep this node holding the leadership without serving: fail, so the election resigns.
    await withTimeout(this.following, FOLLOW_WAIT_MS, 'the follow pass before this takeover');
    await (await this.role()).lead(token, signal);
  }

  onNewLeader(node: string | undefined, info?: { handingOver: boolean }): void {
    this.leader = { node };
    this.inner?.onNewLeader(node, info);
  }

  /** The last leader announced, kept for an inner role built after the announcement. */
  private leader: { node: string | undefined } | undefined;

  async stepDown(reason: string, how?: StepDownKind): Promise<void> {
    try {
      await this.inner?.stepDown(reason, how);
    } finally {
      this.busy = false;
    }
  }

  checks(): Check[] {
    const out = (this.inner?.checks() ?? []).map((c) =>
      // qdrant is optional: without a configured binary it is shown as not installed, not counted as a failure.
      c.name === 'service:qdrant' && !this.storage.qdrantBinary ? { ...c, ok: true, detail: `${QDRANT_NOT_INSTALLED} (optional: set storage.qdrantBinary)` } : c,
    );
    if (this.busy && this.inner && !this.inner.isLeading() && !out.some((c) => c.name === 'storage-leader')) {
      out.push({ name: 'storage-leader', ok: false, detail: 'taking over: locking and mounting volumes, starting services' });
    }
    if (this.lastFollowError) out.push({ name: 'storage-follow', ok: false, detail: this.lastFollowError });
    return out;
  }

  services(): ReturnType<LedRole['services']> {
    return this.inner?.services() ?? [];
  }

  fenceTargets(): FenceTargets {
    const pids = this.services().map((x) => x.pid).filter((pid): pid is number => pid !== undefined && pid !== process.pid);
    return { pids, vips: this.deps?.vip ? [this.deps.vip] : [] };
  }

  /** Each volume as the driver sees it (lock holder and token, mapping, mount), for `ycluster storage volumes`. */
  async volumes(): Promise<(VolumeStatus & { sizeMiB: number; fsType: string })[]> {
    await this.role();
    const deps = this.deps!;
    return Promise.all(deps.volumes.map(async (v) => ({ ...(await deps.driver.status(v.name)), sizeMiB: v.sizeMiB, fsType: v.fsType })));
  }

  /** Stops the follow timer (the agent never discards a role today; tests do). */
  close(): void {
    clearInterval(this.timer);
    clearInterval(this.peerTimer);
  }
}

/** A node without storage config cannot lead storage: it says so and resigns, so a configured node takes over. */
class NoStorageRole implements LedRole {
  private tried = false;
  lead(): Promise<void> {
    this.tried = true;
    return Promise.reject(new YcError('UNAVAILABLE', 'this node has no storage configuration (agent config "storage")'));
  }
  stepDown(): Promise<void> {
    return Promise.resolve();
  }
  checks(): Check[] {
    return this.tried ? [{ name: 'storage-leader', ok: false, detail: 'won the storage election without a storage configuration; resigned' }] : [];
  }
  services(): ReturnType<LedRole['services']> {
    return [];
  }
}

/** LED_ROLES.storage. */
export function createStorageRole(ctx: RoleContext): LedRole {
  return ctx.config.storage ? new StorageRole(ctx, ctx.config.storage) : new NoStorageRole();
}
