import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { Watcher } from 'etcd3';
import { errorMessage } from '../lib/errors.js';
import { RateLimitedLog, type Logger } from '../lib/log.js';
import { Metrics } from '../lib/metrics.js';
import { Supervised } from '../lib/supervisor.js';
import { monoMs, sleep } from '../lib/time.js';
import { writeFenceFile, type FenceEntry } from '../watchdog/fence-file.js';
import { allocateNode } from '../inventory/allocate.js';
import { ELECTIONS_BY_TYPE, ROLES_BY_TYPE } from '../inventory/node-types.js';
import { StateClient } from '../state/client.js';
import { Election } from '../state/election.js';
import { keys } from '../state/keys.js';
import type { Check, NodeRecord, NodeStatus } from '../state/schema.js';
import { etcdService } from '../services/etcd.js';
import { startAgentApi } from '../api/agent-api.js';
import { markInstalled } from '../provision/install-state.js';
import { CephDaemons } from './ceph-daemons.js';
import type { AgentConfig } from './config.js';
import { decide, type Action, type Decision } from './decide.js';
import { Heartbeat } from './heartbeat.js';
import { Journal } from './journal.js';
import type { AlwaysRole, LedRole, RoleContext } from './role.js';
import { ALWAYS_ROLES, LED_ROLES, leadershipOnly } from './roles.js';
import { coreStorageYieldMs, storageMarginMs } from './storage-wiring.js';

interface ElectionSlot {
  election: Election;
  role: LedRole;
  paused: boolean;
}

/** The node agent: decide-then-act over an immutable snapshot, once a second or when something changes. */
export class Agent {
  readonly state: StateClient;
  readonly metrics = new Metrics();
  private node: NodeRecord | undefined;
  private drained = false;
  private heartbeat: Heartbeat | undefined;
  private etcdMember: Supervised | undefined;
  private ceph: CephDaemons | undefined;
  private readonly elections = new Map<string, ElectionSlot>();
  private readonly roles = new Map<string, AlwaysRole>();
  private publishedStatus: string | undefined;
  private lastDecision: Decision = { actions: [], reason: 'starting' };
  private readonly journal: Journal;
  private readonly abort = new AbortController();
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private api: Server | undefined;
  private watchers: Watcher[] = [];
  private etcdReachable = false;
  private actionFailures = new Map<string, string>();
  private ticks = 0;
  private readonly fenceEntries: Record<string, FenceEntry> = {};
  private readonly fencePath: string;
  private watchdog: Supervised | undefined;
  private readonly actionLog: RateLimitedLog;

  constructor(readonly config: AgentConfig, private readonly logger: Logger) {
    mkdirSync(config.dataDir, { recursive: true });
    this.actionLog = new RateLimitedLog(logger, 30_000);
    this.fencePath = join(config.dataDir, 'fence.json');
    writeFenceFile(this.fencePath, { agentPid: process.pid, leaderships: {} });
    this.journal = new Journal(join(config.dataDir, 'journal.jsonl'), config.mac);
    this.state = new StateClient({ endpoints: config.etcdEndpoints, ...(config.etcdTls ? { tls: config.etcdTls } : {}) });
  }

  async start(): Promise<void> {
    if (this.config.etcdMember) {
      const m = this.config.etcdMember;
      this.etcdMember = new Supervised(
        etcdService({ self: m.self, members: m.members, clusterToken: m.clusterToken, dataDir: join(this.config.dataDir, 'etcd'), heartbeatMs: m.heartbeatMs, electionMs: m.electionMs, logFile: join(this.config.dataDir, 'etcd.log') }),
        this.logger,
      );
      this.etcdMember.start();
    }
    if (this.config.ceph) {
      this.ceph = new CephDaemons(this.config.ceph, this.config.dataDir, this.logger);
      this.ceph.start();
    }
    // The watchdog lives in its own process so that it still acts when this one is frozen.
    this.watchdog = new Supervised(
      { name: 'watchdog', command: process.execPath, args: [...process.execArgv, process.argv[1]!, 'watchdog', '--file', this.fencePath], stopTimeoutMs: 2000, logFile: join(this.config.dataDir, 'watchdog.log') },
      this.logger,
    );
    this.watchdog.start();
    this.api = await startAgentApi(this, this.config.apiPort, this.config.apiBind, this.logger);
    this.loop = this.run(this.abort.signal);
  }

  /** Health of this node: every check with its detail. */
  health(): { healthy: boolean; node: string; checks: Check[]; services: ReturnType<Supervised['status']>[]; leaderships: string[]; decision: Decision } {
    const checks: Check[] = [];
    checks.push({ name: 'registered', ok: !!this.node, detail: this.node ? `${this.node.hostname} ${this.node.ip} (${this.node.type})` : 'not registered yet' });
    const hb = this.heartbeat?.healthy() ?? { ok: false, detail: 'not started' };
    checks.push({ name: 'etcd', ok: hb.ok, detail: hb.detail });
    const services = [];
    if (this.etcdMember) {
      const s = this.etcdMember.status();
      services.push(s);
      checks.push({ name: 'etcd-member', ok: s.healthy, detail: `${s.state}${s.lastError ? `: ${s.lastError}` : ''}` });
    }
    if (this.ceph) {
      checks.push(...this.ceph.checks());
      services.push(...this.ceph.services());
    }
    for (const slot of this.elections.values()) {
      checks.push(...slot.role.checks());
      services.push(...slot.role.services());
    }
    for (const role of this.roles.values()) {
      checks.push(...role.checks());
      services.push(...role.services());
    }
    if (this.actionFailures.size) {
      checks.push({ name: 'agent-actions', ok: false, detail: [...this.actionFailures].map(([a, e]) => `${a}: ${e}`).join('; ') });
    }
    const leaderships = [...this.elections.values()].filter((s) => s.election.isLeader()).map((s) => s.election.name);
    return { healthy: checks.every((c) => c.ok), node: this.node?.hostname ?? this.config.mac, checks, services, leaderships, decision: this.lastDecision };
  }

  nodeRecord(): NodeRecord | undefined {
    return this.node;
  }

  elector(name: string): Election | undefined {
    return this.elections.get(name)?.election;
  }

  /** Every election this node takes part in. */
  electors(): Election[] {
    return [...this.elections.values()].map((s) => s.election);
  }

  ledRole(name: string): LedRole | undefined {
    return this.elections.get(name)?.role;
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.tick();
      } catch (err) {
        this.logger.warn('agent tick failed', { error: errorMessage(err) });
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  private statusDoc(): { doc: NodeStatus; fingerprint: string } {
    const h = this.health();
    const doc: NodeStatus = {
      node: h.node,
      healthy: h.healthy,
      checks: h.checks.map((c) => ({ name: c.name, ok: c.ok, detail: c.ok ? 'ok' : c.detail })),
      services: h.services.map((s) => ({ name: s.name, state: s.state, healthy: s.healthy, restarts: s.restarts, ...(s.pid ? { pid: s.pid } : {}), ...(s.lastError ? { lastError: s.lastError } : {}) })),
      leaderships: h.leaderships,
      updatedAt: new Date().toISOString(),
    };
    return { doc, fingerprint: statusFingerprint(doc) };
  }

  private async tick(): Promise<void> {
    this.etcdReachable = this.node ? (this.heartbeat?.healthy().ok ?? false) : await this.probeEtcd();
    // The watch brings drain changes at once; this re-read every few seconds covers a watch that a
    // partition or an etcd restart left silently broken.
    if (this.node && this.etcdReachable && ++this.ticks % 5 === 0) {
      this.drained = (await this.state.get(keys.drain(this.node.hostname)).catch(() => (this.drained ? {} : undefined))) !== undefined;
    }
    const type = this.node?.type;
    const status = this.statusDoc();
    const decision = decide({
      registered: this.node ? { hostname: this.node.hostname, type: this.node.type } : undefined,
      etcdReachable: this.etcdReachable,
      drained: this.drained,
      wantedElections: type ? ELECTIONS_BY_TYPE[type] : [],
      wantedRoles: type ? ROLES_BY_TYPE[type].filter((r) => r in ALWAYS_ROLES) : [],
      elections: [...this.elections].map(([name, s]) => ({ name, paused: s.paused })),
      roles: [...this.roles.keys()],
      publishedStatus: this.publishedStatus,
      currentStatus: status.fingerprint,
    });
    if (decision.reason !== this.lastDecision.reason) this.logger.info('decision', { reason: decision.reason, actions: decision.actions.map((a) => a.kind) });
    this.lastDecision = decision;
    // Each action stands alone: one that fails (a role that cannot start) must not block the others,
    // least of all publishing the status that tells the operator about it.
    const failures = new Map<string, string>();
    for (const action of decision.actions) {
      try {
        await this.act(action, status.doc);
      } catch (err) {
        const what = 'election' in action ? `${action.kind} ${action.election}` : 'role' in action ? `${action.kind} ${action.role}` : action.kind;
        failures.set(what, errorMessage(err));
        this.actionLog.warn(what, 'agent action failed', { action: what, error: errorMessage(err) });
      }
    }
    this.actionFailures = failures;
  }

  private async probeEtcd(): Promise<boolean> {
    try {
      await this.state.get(keys.config);
      return true;
    } catch {
      return false;
    }
  }

  private roleContext(): RoleContext {
    return { state: this.state, node: this.node!, config: this.config, logger: this.logger };
  }

  private async act(action: Action, status: NodeStatus): Promise<void> {
    switch (action.kind) {
      case 'register':
        return this.register();
      case 'campaign': {
        const role = (LED_ROLES[action.election] ?? leadershipOnly)(this.roleContext());
        const ttlSeconds = await this.electionTtl();
        const election = new Election(
          {
            state: this.state,
            election: action.election,
            node: this.node!.hostname,
            ttlSeconds,
            ...(action.election === 'storage' ? { marginMs: storageMarginMs(ttlSeconds) } : {}),
            ...(action.election === 'storage' && this.node!.type === 'core' ? { yieldMs: (last: string | undefined) => coreStorageYieldMs(this.state, last) } : {}),
            logger: this.logger,
          },
          {
            onLeading: async (token, signal) => {
              this.journal.record({ election: action.election, event: 'leading', token });
              this.metrics.inc('ycluster_leadership_changes_total', 'leaderships taken by this node', { election: action.election });
              this.wake?.();
              await role.lead(token, signal);
            },
            onStopped: async (reason, how) => {
              await role.stepDown(reason, how);
              this.journal.record({ election: action.election, event: 'stopped', reason });
              this.wake?.();
            },
            onNewLeader: (leader) => {
              role.onNewLeader?.(leader?.node, { handingOver: leader?.handingOver === true });
              this.wake?.();
            },
            onDeadline: (deadline) => this.updateFenceFile(action.election, deadline, role),
          },
        );
        this.elections.set(action.election, { election, role, paused: false });
        election.campaign();
        return;
      }
      case 'withdraw': {
        const slot = this.elections.get(action.election);
        this.elections.delete(action.election);
        await slot?.election.close();
        return;
      }
      case 'pause':
      case 'resume': {
        const slot = this.elections.get(action.election);
        if (!slot) return;
        slot.paused = action.kind === 'pause';
        await slot.election.setPaused(slot.paused);
        return;
      }
      case 'start-role': {
        const factory = ALWAYS_ROLES[action.role];
        if (!factory) return;
        const role = factory(this.roleContext());
        try {
          await role.start();
        } catch (err) {
          await role.stop().catch(() => undefined);
          throw err;
        }
        this.roles.set(action.role, role);
        return;
      }
      case 'stop-role': {
        const role = this.roles.get(action.role);
        this.roles.delete(action.role);
        await role?.stop();
        return;
      }
      case 'publish-status':
        await this.state.put(keys.status(status.node), status);
        // What was put, not what the status is by now: a change during the put (a takeover finishing) must
        // still be published.
        this.publishedStatus = statusFingerprint(status);
        return;
    }
  }

  /** Keeps the watchdog's file current: each leadership with processes or VIPs, and its deadline in wall-clock time. */
  private updateFenceFile(election: string, deadlineMono: number | undefined, role: LedRole): void {
    const targets = role.fenceTargets?.();
    if (deadlineMono === undefined || !targets) delete this.fenceEntries[election];
    else this.fenceEntries[election] = { deadlineEpochMs: Date.now() + (deadlineMono - monoMs()), ...targets };
    try {
      writeFenceFile(this.fencePath, { agentPid: process.pid, leaderships: this.fenceEntries });
    } catch (err) {
      this.logger.error('cannot write the watchdog file', { error: errorMessage(err) });
    }
  }

  private async electionTtl(): Promise<number> {
    return (await this.state.getValue(keys.config))?.electionTtlSeconds ?? 3;
  }

  private async register(): Promise<void> {
    const { node, created } = await allocateNode(this.state, { mac: this.config.mac, ...(this.config.reportedType ? { reportedType: this.config.reportedType } : {}), ...(this.config.hostname ? { preferredHostname: this.config.hostname } : {}), ...(this.config.ip ? { preferredIp: this.config.ip } : {}) });
    this.node = node;
    // A node that runs the agent is installed: its next network boot goes to the local disk.
    await markInstalled(this.state, node.mac);
    this.logger.info(created ? 'registered as a new node' : 'registered as a known node', { hostname: node.hostname, ip: node.ip, type: node.type });
    this.heartbeat = new Heartbeat(this.state, node.hostname, node.ip, this.config.heartbeatTtlSeconds, this.logger);
    this.heartbeat.start();
    this.drained = (await this.state.get(keys.drain(node.hostname))) !== undefined;
    await this.watchOwnKeys(node);
  }

  /** Changes to this node's record or drain flag wake the loop at once. */
  private async watchOwnKeys(node: NodeRecord): Promise<void> {
    const drainW = await this.state.etcd.watch().key(keys.drain(node.hostname).key).create();
    drainW.on('put', () => {
      this.drained = true;
      this.wake?.();
    });
    drainW.on('delete', () => {
      this.drained = false;
      this.wake?.();
    });
    const nodeW = await this.state.etcd.watch().key(keys.nodeByMac(node.mac).key).create();
    nodeW.on('put', () => {
      void this.state.getValue(keys.nodeByMac(node.mac)).then((n) => {
        if (n) this.node = n;
        this.wake?.();
      }).catch(() => undefined);
    });
    this.watchers.push(drainW, nodeW);
  }

  /** SIGTERM: hand every leadership over first, then stop roles, heartbeat and the etcd member last. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.wake?.();
    await this.loop;
    await Promise.all([...this.elections.values()].map((s) => s.election.close()));
    await Promise.all([...this.roles.values()].map((r) => r.stop()));
    await Promise.all(this.watchers.map((w) => w.cancel().catch(() => undefined)));
    await this.heartbeat?.stop();
    this.state.close();
    await new Promise<void>((r) => (this.api ? this.api.close(() => r()) : r()));
    this.api?.closeAllConnections();
    await this.watchdog?.stop();
    // After the storage role has unmapped its volumes; before etcd, in the daemons' own reverse order.
    await this.ceph?.stop();
    await this.etcdMember?.stop();
    await sleep(0);
  }
}

/** Publish on change only: details that move every second (pids, detail text of healthy checks) are left out. */
function statusFingerprint(doc: NodeStatus): string {
  return JSON.stringify({ ...doc, services: doc.services.map((s) => [s.name, s.state, s.healthy]), updatedAt: '' });
}
