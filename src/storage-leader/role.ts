import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { LedRole, RoleContext, StepDownKind } from '../agent/role.js';
import { YcError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { Supervised, type ServiceSpec, type ServiceStatus } from '../lib/supervisor.js';
import { monoMs, sleep, waitFor } from '../lib/time.js';
import { programArgv } from '../services/postgres.js';
import { addVip, hasVip, removeVip, type AddVipResult } from '../services/vip.js';
import type { Check, VolumeRecord } from '../state/schema.js';
import type { VolumeSpec } from '../storage/driver.js';
import { realProcessOps } from './procs.js';
import { Timeline } from './timeline.js';
import { WarmVolumes } from './warm.js';
import { serviceStopMs, teardown, type Held, type HeldVolume, type TeardownEnv } from './teardown.js';
import { isUnavailable, type MountedVolume, type StorageLeaderDeps, type UnavailableService, type VipOps } from './types.js';

const realVipOps: VipOps = { add: (i, c) => addVip(i, c), remove: (i, c) => removeVip(i, c), has: (i, c) => Promise.resolve(hasVip(i, c)) };

/** How often lead() looks at its services' health flags while taking over (a read of in-memory state). */
const HEALTH_POLL_MS = 10;
/** The most of a service's preparation (initdb: INITDB_TIMEOUT_MS) that the start bound leaves out. */
const PREPARE_MAX_MS = 90_000;
/**
 * How long the other volumes wait for the first one's services to answer before they map anyway: a database
 * that is slow to start (crash recovery of a long WAL) must not hold up the registry for long.
 */
const FIRST_VOLUME_ALONE_MS = 3000;

interface Alarm {
  detail: string;
  at: number;
}

/**
 * The storage leader: holds every volume (locked with its fencing token, mapped, mounted), runs the services
 * on them and holds the storage VIP. Everything it takes in lead() is recorded in one Held value, and every exit
 * (failed lead, stepDown, a stuck previous term) releases that value through the same ordered teardown.
 */
export class StorageLeaderRole implements LedRole {
  private readonly log: Logger;
  private readonly budgetMs: number;
  /** A voluntary stepDown's budget: the lease is renewed meanwhile, so services get time for a clean stop. */
  private readonly resignBudgetMs: number;
  private current: Held | undefined;
  /** The term a stepDown is releasing: its services still count (status, and the watchdog's fence targets). */
  private stoppingTerm: Held | undefined;
  /** A previous term's resources that could not all be released (e.g. still mounted). */
  private leftover: Held | undefined;
  private leading: { token: number; since: string; arp: AddVipResult | undefined } | undefined;
  private unavailable: UnavailableService[] = [];
  private readonly alarms = new Map<string, Alarm>();
  private leadAbort: AbortController | undefined;
  private leadRun: Promise<void> | undefined;
  /** A takeover still running after its term ended (stuck in a step, e.g. I/O on an unreachable volume). */
  private takingOver = false;
  private releasing: Promise<unknown> = Promise.resolve();
  /** Volumes kept ready for a takeover here. */
  private readonly warm: WarmVolumes;
  /** The storage leader as last announced (this node or another; undefined while there is none). */
  private leader: string | undefined;

  constructor(private readonly ctx: RoleContext, private readonly deps: StorageLeaderDeps) {
    this.log = ctx.logger.child({ role: 'storage-leader' });
    this.budgetMs = deps.stepDownBudgetMs ?? 2000;
    this.resignBudgetMs = Math.max(this.budgetMs, deps.resignBudgetMs ?? 10_000);
    this.warm = new WarmVolumes({
      driver: deps.driver,
      volumes: deps.volumes,
      log: this.log,
      // A past term still held here is released first: its mapping is not for a standby to touch.
      idle: () => !this.current && !this.takingOver && !this.leftover,
      ...(deps.mayTakeOver ? { mayTakeOver: deps.mayTakeOver } : {}),
      ...(deps.standbySettleMs === undefined ? {} : { standbySettleMs: deps.standbySettleMs }),
    });
  }

  private get vipOps(): VipOps {
    return this.deps.vipOps ?? realVipOps;
  }

  private get processOps(): NonNullable<StorageLeaderDeps['processOps']> {
    return this.deps.processOps ?? realProcessOps;
  }

  mountPoint(volume: string): string {
    return join(this.deps.mountRoot, volume);
  }

  private alarm(name: string, detail: string): void {
    this.log.error('alarm', { alarm: name, detail });
    this.alarms.set(name, { detail, at: monoMs() });
  }

  private env(): TeardownEnv {
    return { driver: this.deps.driver, vipOps: this.vipOps, processOps: this.processOps, logger: this.log, budgetMs: this.budgetMs, alarm: (n, d) => this.alarm(n, d) };
  }

  /** Teardowns never overlap: a late one (from a lead that was still in flight) sees what the first left. */
  private release(held: Held, reason: string): Promise<boolean> {
    const next = this.releasing.then(() => teardown(held, this.env(), reason));
    this.releasing = next.catch(() => undefined);
    return next;
  }

  /** Alarms about this node's own unreleased resources, cleared once a later release gets everything back. */
  private leftoverReleased(how: string): void {
    const had = ['storage-teardown', 'storage-vip'].filter((n) => this.alarms.delete(n));
    if (had.length > 0) this.log.info('previous term released; its alarms cleared', { how, cleared: had });
  }

  async lead(token: number, signal: AbortSignal): Promise<void> {
    if (this.takingOver && this.leadRun) {
      // A new term must not start beside a takeover of the last one that is still taking things.
      await Promise.race([this.leadRun, sleep(this.budgetMs)]);
      if (this.takingOver) throw new YcError('CONFLICT', 'the previous takeover on this node has not finished yet');
    }
    const holder = { node: this.ctx.node.hostname, token };
    const ac = new AbortController();
    const onAbort = (): void => ac.abort(signal.reason);
    if (signal.aborted) ac.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    this.leadAbort = ac;
    this.takingOver = true;
    this.warm.handToTakeover();
    const run = this.takeOver(holder, ac.signal);
    this.leadRun = run.catch(() => undefined).finally(() => {
      this.takingOver = false;
    });
    try {
      await run;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  private async takeOver(holder: { node: string; token: number }, signal: AbortSignal): Promise<void> {
    const d = this.deps;
    const tl = new Timeline(this.log, 'lead', holder.token);
    let step = 'start';
    /** The step of the first volume pipeline that failed: the one the alarm names. */
    let failedStep: string | undefined;
    let failedError: unknown;
    const held: Held = { holder, volumes: [], services: [], vip: undefined };
    const checkpoint = (at: string): void => {
      if (signal.aborted) throw new YcError('UNAVAILABLE', `leadership ended during ${at}: ${errorMessage(signal.reason)}`);
      // Another volume failed: this term is over, so stop taking more.
      if (failedStep !== undefined) throw new YcError('UNAVAILABLE', `given up at ${at}: ${failedStep} failed`);
    };
    let claim: Promise<AddVipResult> | undefined;
    // One volume from ensure to its services started. Resolves to one promise per started service, settling once
    // it first answers (true) or the takeover no longer waits for it (false). Each volume runs its own pipeline;
    // a volume behind the first waits at `gate` (after its lock) before it maps.
    const bringUp = async (spec: VolumeSpec, gate?: Promise<void>): Promise<Promise<boolean>[]> => {
      const answers: Promise<boolean>[] = [];
      const name = spec.name;
      let at = `ledger ${name}`;
      try {
        let record = await tl.step(at, () => d.ledger.get(name));
        checkpoint(at);
        let created = false;
        // A volume the cluster knows is never created again: if it vanished, an empty one would hide the loss.
        if (record === undefined) {
          if (d.createVolumes ?? true) {
            at = `ensure ${name}`;
            created = (await tl.step(at, () => d.driver.ensure(spec))).created;
            checkpoint(at);
          }
          at = `record ${name}`;
          record = { name, fsType: spec.fsType, createdAt: new Date().toISOString(), createdBy: { ...holder }, adopted: !created };
          const fresh = record;
          await tl.step(at, () => d.ledger.put(fresh));
          checkpoint(at);
        }
        const known = record;
        at = `lock ${name}`;
        const v: HeldVolume = { spec, locked: false, mapping: 'none', device: undefined, mountPoint: undefined };
        held.volumes.push(v);
        await tl.step(at, () => d.driver.lock(name, holder, { breakStale: true })).catch((err: unknown) => {
          if (err instanceof YcError && err.code === 'NOT_FOUND') throw missingVolume(known);
          throw err;
        });
        v.locked = true;
        checkpoint(at);
        if (gate) {
          at = `wait for ${d.volumes[0]!.name}`;
          await gate;
          checkpoint(at);
        }
        at = `map ${name}`;
        v.mapping = 'attempted';
        const device = await tl.step(at, () => d.driver.map(name, holder));
        v.device = device;
        v.mapping = 'mapped';
        checkpoint(at);
        // A volume the ledger knows to carry a file system is never formatted again (a device that merely reads
        // as blank must not be wiped); one it does not is formatted only if it is blank, then recorded.
        if (known.formattedAt === undefined) {
          at = `format check ${name}`;
          if (created || (await tl.step(at, () => d.driver.status(name))).formatted === false) {
            at = `format ${name}`;
            const formatted = await tl.step(at, () => d.driver.formatIfBlank(device, spec.fsType));
            if (formatted) this.log.info('formatted blank volume', { volume: name, fsType: spec.fsType });
            checkpoint(at);
          }
          at = `record format of ${name}`;
          await tl.step(at, () => d.ledger.put({ ...known, formattedAt: new Date().toISOString() }));
          checkpoint(at);
        }
        at = `mount ${name}`;
        const mp = this.mountPoint(name);
        await mkdir(mp, { recursive: true });
        v.mountPoint = mp;
        await tl.step(at, () => d.driver.mount(device, mp, known.fsType)).catch(async (err: unknown) => {
          // Say why when the reason is a known volume that reads blank: nothing is formatted over it.
          const blank = known.formattedAt !== undefined && (await d.driver.status(name).catch(() => undefined))?.formatted === false;
          throw blank ? blankVolume(known) : err;
        });
        // Again: a stepDown may have released this volume while the mount was under way.
        v.mountPoint = mp;
        checkpoint(at);
        at = `start services on ${name}`;
        const mounted: MountedVolume = { name, device, mountPoint: mp, holder };
        for (const s of d.services[name]?.(mounted) ?? []) {
          if (isUnavailable(s)) {
            this.unavailable.push(s);
            continue;
          }
          const sup = new Supervised(this.bounded(s), this.log);
          held.services.push(sup);
          const startedAt = monoMs();
          sup.start();
          answers.push(this.firstHealthy(sup, held, startedAt, tl, signal));
        }
        return answers;
      } catch (err) {
        if (failedStep === undefined) {
          failedStep = at;
          failedError = err;
        }
        throw err;
      }
    };
    try {
      if (this.leftover) {
        step = 'releasing the previous term';
        const leftover = this.leftover;
        const clean = await tl.step(step, () => this.release(leftover, 'before a new term'));
        if (!clean) throw new YcError('CONFLICT', 'the previous term\'s volumes are still held on this node');
        this.leftover = undefined;
        this.leftoverReleased('before a new term');
      }
      this.current = held;
      this.unavailable = [];
      // Beside the volumes, not before them: it exists to unblock their lock breaks, which wait on the backend.
      void d.driver.expedite?.().then(
        (done) => done.length > 0 && this.log.info('told the storage backend of unreachable peers', { done }),
        (err: unknown) => this.log.warn('could not tell the storage backend of unreachable peers', { error: errorMessage(err) }),
      );
      step = 'bring up volumes';
      // The first volume (the database's) is mapped, mounted and started alone; the others are locked at once
      // but map only once its services answer (or FIRST_VOLUME_ALONE_MS has passed). Brought up side by side,
      // each volume's mount and start made the other's slower on a loaded node: the first volume's, which ends
      // a drain's or a crash's write gap, had the machine's CPUs and its storage's round trips to itself.
      const vip = d.vip;
      const [first, ...others] = d.volumes;
      const firstUp = first ? bringUp(first) : Promise.resolve([]);
      // Once the first volume's services have started, the VIP is claimed beside their first health checks, not
      // after them. A client then meets a refusal it retries at once, not silence it waits out, and the address
      // add and the gratuitous ARP (100-500 ms of process starts on a loaded node) are off the clients' wait.
      // The others' clients (the registry's) are refused the same way until theirs start.
      const claimed = firstUp.then(() => {
        if (!vip) return;
        held.vip = vip;
        claim = tl.step('claim VIP', () => this.vipOps.add(vip.iface, vip.cidr));
        claim.catch(() => undefined);
      });
      const gate = firstUp.then((answers) => this.firstAnswer(answers), () => undefined);
      const results = await Promise.allSettled([firstUp, claimed, ...others.map((spec) => bringUp(spec, gate))]);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        step = failedStep ?? step;
        throw failedStep === undefined ? failed.reason : failedError;
      }
      step = 'wait for healthy services';
      await tl.step(step, () => this.waitHealthy(held, signal));
      if (vip && claim) {
        step = `claim VIP ${vip.cidr}`;
        const arp = await claim;
        this.log.info('storage VIP claimed', { ...vip, changed: arp.changed, arp: arp.arp, arpError: arp.arpError });
        checkpoint(step);
        this.leading = { token: holder.token, since: new Date().toISOString(), arp };
      } else {
        this.leading = { token: holder.token, since: new Date().toISOString(), arp: undefined };
      }
      this.alarms.delete('storage-leader');
      tl.finish('ready');
      this.log.info('storage leader ready', { token: holder.token, volumes: d.volumes.map((v) => v.name) });
    } catch (err) {
      this.leading = undefined;
      const msg = `lead failed at ${step}: ${errorMessage(err)}`;
      tl.finish(msg);
      // Losing leadership half-way through taking over is an ordinary step-down, not a fault to alarm on.
      if (signal.aborted) this.log.info('takeover interrupted: leadership ended', { step });
      else this.alarm('storage-leader', msg);
      // An add still under way would put the VIP back after the release removed it.
      await claim?.catch(() => undefined);
      const clean = await this.release(held, msg);
      if (this.current === held) this.current = undefined;
      if (!clean) this.leftover = held;
      throw err instanceof YcError ? new YcError(err.code, msg, { cause: err }) : new YcError('INTERNAL', msg, { cause: err });
    }
  }

  /** Resolves once every one of the services has answered (or is no longer waited for), or FIRST_VOLUME_ALONE_MS has passed. */
  private async firstAnswer(answers: readonly Promise<boolean>[]): Promise<void> {
    const timer = new AbortController();
    await Promise.race([Promise.all(answers), sleep(FIRST_VOLUME_ALONE_MS, timer.signal).catch(() => undefined)]);
    timer.abort();
  }

  /**
   * Logs `start→healthy NAME` the moment a service first answers (a read of its in-memory flag every
   * HEALTH_POLL_MS), whatever else the takeover still waits for. False when the takeover stopped waiting first:
   * leadership ended, the service was released, or the start bound with all of a preparation ran out.
   */
  private async firstHealthy(sup: Supervised, held: Held, startedAt: number, tl: Timeline, signal: AbortSignal): Promise<boolean> {
    const timeoutMs = (this.deps.startTimeoutMs ?? 30_000) + PREPARE_MAX_MS;
    const outcome = await waitFor(`${sup.spec.name} to answer`, () => {
      if (sup.status().healthy) return 'healthy';
      return held.services.includes(sup) ? undefined : 'released';
    }, { timeoutMs, intervalMs: HEALTH_POLL_MS, signal }).catch(() => 'gave up');
    if (outcome !== 'healthy') return false;
    tl.record(`start→healthy ${sup.spec.name}`, startedAt);
    return true;
  }

  /** The spec's own stop timeout, capped by the share of the stepDown budget that services get. */
  private bounded(spec: ServiceSpec): ServiceSpec {
    return { ...spec, stopTimeoutMs: Math.min(spec.stopTimeoutMs ?? 10_000, serviceStopMs(this.budgetMs)) };
  }

  /**
   * Waits for every service (firstHealthy logs when each first answers). The
   * start bound leaves out a service's preparation (initdb on a fresh volume), which has bounds of its own;
   * PREPARE_MAX_MS caps it all the same.
   */
  private async waitHealthy(held: Held, signal: AbortSignal): Promise<void> {
    const timeoutMs = this.deps.startTimeoutMs ?? 30_000;
    const pending = new Set(held.services);
    const t0 = monoMs();
    const overdue = (s: Supervised): boolean => {
      const waited = monoMs() - t0;
      const prepared = Math.min(s.preparationMs(), PREPARE_MAX_MS);
      return waited - prepared > timeoutMs;
    };
    try {
      const outcome = await waitFor('services to be healthy', () => {
        for (const s of pending) {
          if (!s.status().healthy) {
            if (overdue(s)) return 'overdue';
            continue;
          }
          pending.delete(s);
        }
        return pending.size === 0 ? 'healthy' : undefined;
      }, { timeoutMs: timeoutMs + PREPARE_MAX_MS, intervalMs: HEALTH_POLL_MS, signal });
      if (outcome === 'healthy') return;
    } catch (err) {
      if (signal.aborted) throw err;
    }
    const sick = held.services.filter((s) => !s.status().healthy).map((s) => {
      const st = s.status();
      const prep = s.preparationMs();
      return `${st.name} (${st.state}${st.lastError ? `: ${st.lastError}` : ''}${prep >= 1000 ? `; preparing took ${Math.round(prep)} ms besides` : ''})`;
    });
    throw new YcError('TIMEOUT', `not healthy after ${timeoutMs} ms: ${sick.join(', ')}`);
  }

  async stepDown(reason: string, how?: StepDownKind): Promise<void> {
    const t0 = monoMs();
    const budgetMs = how?.voluntary ? this.resignBudgetMs : this.budgetMs;
    this.leading = undefined;
    this.leadAbort?.abort(new Error(reason));
    // A lead in flight notices the abort at its next step and releases what it took; give it a short while.
    if (this.leadRun) await Promise.race([this.leadRun, sleep(Math.floor(this.budgetMs * 0.1))]);
    const held = this.current;
    this.current = undefined;
    if (held) {
      const timeline = new Timeline(this.log, 'stepDown', held.holder.token);
      const env = { ...this.env(), budgetMs: Math.max(1, budgetMs - (monoMs() - t0)), timeline, handover: how?.voluntary === true };
      this.stoppingTerm = held;
      const run = this.releasing.then(() => teardown(held, env, reason));
      this.releasing = run.catch(() => undefined);
      const clean = await run.catch((err: unknown) => {
        this.alarm('storage-teardown', `teardown failed: ${errorMessage(err)}`);
        return false;
      });
      this.stoppingTerm = undefined;
      timeline.finish(clean ? `released: ${reason}` : `left behind: ${reason}`);
      if (!clean) this.leftover = held;
    }
    this.unavailable = [];
  }

  /** Wanted argv of every service, as a follower would see it running (service factories are pure data). */
  private wantedProcesses(): { service: string; argv: string[]; spec: ServiceSpec }[] {
    const out: { service: string; argv: string[]; spec: ServiceSpec }[] = [];
    for (const spec of this.deps.volumes) {
      const mounted: MountedVolume = { name: spec.name, device: '', mountPoint: this.mountPoint(spec.name), holder: { node: this.ctx.node.hostname, token: 0 } };
      for (const s of this.deps.services[spec.name]?.(mounted) ?? []) if (!isUnavailable(s)) out.push({ service: s.name, argv: programArgv(s), spec: s });
    }
    return out;
  }

  /** Non-leader guard: none of the role's services, mounts or VIP may be here; anything found is an alarm and is stopped. */
  async follow(): Promise<void> {
    // A takeover still in flight owns its mounts and processes: they are not strays.
    if (this.current || this.takingOver) return;
    await this.warm.check(this.leader);
    if (this.leftover) {
      const clean = await this.release(this.leftover, 'retrying release while following');
      // What is still held is this node's own, named by the storage-teardown alarm: not a split brain.
      if (!clean) {
        await this.stopHolders(this.leftover);
        return;
      }
      this.leftover = undefined;
      this.leftoverReleased('while following');
    }
    const found: string[] = [];
    const wanted = this.wantedProcesses();
    for (const p of await this.processOps.find(wanted)) {
      const spec = wanted.find((w) => w.service === p.service)?.spec;
      found.push(`${p.service} (pid ${p.pid})`);
      await this.processOps.stop(p.pid, spec?.stopSignal ?? 'SIGTERM', Math.min(spec?.stopTimeoutMs ?? 5000, 5000));
    }
    for (const spec of this.deps.volumes) {
      const mp = this.mountPoint(spec.name);
      if (!(await this.processOps.isMounted(mp).catch(() => false))) continue;
      found.push(`volume ${spec.name} mounted at ${mp}`);
      await this.deps.driver.unmount(mp, { timeoutMs: 2000 }).catch((err: unknown) => this.log.error('cannot unmount on a follower', { volume: spec.name, error: errorMessage(err) }));
    }
    const vip = this.deps.vip;
    if (vip && (await this.vipOps.has(vip.iface, vip.cidr).catch(() => false))) {
      found.push(`VIP ${vip.cidr} on ${vip.iface}`);
      await this.vipOps.remove(vip.iface, vip.cidr).catch((err: unknown) => this.log.error('cannot remove VIP on a follower', { error: errorMessage(err) }));
    }
    if (found.length > 0) this.alarm('storage-split-brain', `found on a node that does not lead storage, and stopped: ${found.join(', ')}`);
  }

  /**
   * A volume of a past term that will not unmount is held by some process. One of our services' programs (a
   * PostgreSQL child outliving its postmaster, titled "postgres: ...") is stopped, so the next pass can unmount;
   * anything else (an operator's shell) is only named. Either way the alarm says who holds it.
   */
  private async stopHolders(held: Held): Promise<void> {
    const programs = new Set(this.wantedProcesses().map((w) => programName(w.argv[0] ?? '')));
    for (const v of held.volumes) {
      const mp = v.mountPoint;
      if (mp === undefined) continue;
      const holders = await this.processOps.holders(mp).catch(() => []);
      if (holders.length === 0) continue;
      const named: string[] = [];
      for (const h of holders) {
        const ours = programs.has(programName(h.argv[0] ?? ''));
        if (ours) await this.processOps.stop(h.pid, 'SIGKILL', 1000);
        named.push(`pid ${h.pid} (${h.argv.join(' ').trim().slice(0, 60)})${ours ? ', stopped' : ''}`);
      }
      this.alarm('storage-teardown', `volume ${v.spec.name} is still mounted at ${mp}, held by ${named.join('; ')}; its lock is left for the next leader to break with fencing`);
    }
  }

  /**
   * Another node won the election after this one failed to take over: the failure is history (its log and the
   * journal keep it); if the cause persists, the new leader's own attempt raises it again, so an alarm stays
   * while the problem does, without a node that has moved on staying red for minutes.
   */
  onNewLeader(node: string | undefined, info?: { handingOver: boolean }): void {
    this.leader = node;
    if (node !== undefined && node !== this.ctx.node.hostname) {
      // The leader hands over: get further ready than standby (rbd-fuse opens the image), so that a takeover
      // here begins at the loop device. Writes nothing to the volumes; a lock break drops it before fencing.
      if (info?.handingOver) this.warm.warmUp(node);
      else this.warm.leaderChanged(node);
    }
    if (node === undefined || node === this.ctx.node.hostname || !this.alarms.has('storage-leader')) return;
    this.alarms.delete('storage-leader');
    this.log.info('takeover failure alarm cleared: another node leads storage now', { leader: node });
  }

  isLeading(): boolean {
    return this.leading !== undefined;
  }

  checks(): Check[] {
    const hold = this.deps.alarmHoldMs ?? 300_000;
    const now = monoMs();
    for (const [name, a] of this.alarms) if (now - a.at > hold) this.alarms.delete(name);
    const out: Check[] = [];
    const failed = this.alarms.get('storage-leader');
    if (this.leading) {
      const l = this.leading;
      const vip = this.deps.vip ? `; VIP ${this.deps.vip.cidr} on ${this.deps.vip.iface} (gratuitous ARP: ${l.arp?.arp ?? 'none'}${l.arp?.arpError ? `, ${l.arp.arpError}` : ''})` : '';
      out.push({ name: 'storage-leader', ok: true, detail: `leading with token ${l.token} since ${l.since}: volumes ${this.deps.volumes.map((v) => v.name).join(', ')} mounted${vip}` });
    } else if (failed) {
      out.push({ name: 'storage-leader', ok: false, detail: failed.detail });
    }
    for (const [name, a] of this.alarms) if (name !== 'storage-leader') out.push({ name, ok: false, detail: a.detail });
    if (this.leading) {
      for (const s of this.services()) out.push({ name: `service:${s.name}`, ok: s.healthy, detail: s.lastError && !s.healthy ? `${s.state}: ${s.lastError}` : s.state });
    }
    return out;
  }

  services(): ServiceStatus[] {
    const running = (this.current?.services ?? this.stoppingTerm?.services ?? []).map((s) => s.status());
    const since = this.leading?.since ?? new Date().toISOString();
    const missing = this.unavailable.map((u): ServiceStatus => ({ name: u.name, state: 'failed', pid: undefined, restarts: 0, healthy: false, lastError: u.unavailable, since }));
    // Volumes start concurrently, so start order varies: a stable order keeps health output and the published
    // status (compared by fingerprint) from changing when nothing did.
    return [...running, ...missing].sort((a, b) => a.name.localeCompare(b.name));
  }
}

/** A process's program as its argv[0] names it: a path's last part, or what precedes a retitled child's ':'. */
export function programName(argv0: string): string {
  return basename(argv0.split(':')[0]!.trim());
}

function missingVolume(r: VolumeRecord): YcError {
  return new YcError('NOT_FOUND', `volume ${r.name} is missing: the cluster ${r.adopted ? 'has used it since' : 'created it on'} ${r.createdAt} (${r.createdBy.node}, token ${r.createdBy.token}); it is not created again, since an empty volume would hide the loss of its data. Restore it, or run "ycluster storage forget ${r.name} --yes" to start it afresh`);
}

function blankVolume(r: VolumeRecord): YcError {
  return new YcError('CONFLICT', `volume ${r.name} reads blank, but a file system has been on it since ${r.formattedAt ?? '?'}: it is not formatted again (its data may be damaged, or another image is mapped). Check it, or run "ycluster storage forget ${r.name} --yes" to format it afresh`);
}

export function createStorageLeaderRole(ctx: RoleContext, deps: StorageLeaderDeps): StorageLeaderRole {
  return new StorageLeaderRole(ctx, deps);
}
