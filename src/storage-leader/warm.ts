import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { monoMs } from '../lib/time.js';
import type { PrepareMode, VolumeDriver, VolumeSpec } from '../storage/driver.js';

/** A handover's warm-up that no takeover used falls back to standby after this long at the latest. */
export const WARM_MAX_MS = 30_000;
/** How long a node's answer to "would I take over from this leader?" is reused while the leader stays the same. */
export const STANDBY_RECHECK_MS = 10_000;
/**
 * How long a new leader must have led (as this node saw it) before this node puts volumes on standby for it. A
 * standby is a new Ceph client per volume (rbd-fuse: connect, authenticate, fetch the maps); started by every
 * eligible node the moment a leader changed, they ran beside the new leader's mount and database start, and on a
 * 2-core lab machine made that start slower by a third or more. A takeover within the settle time starts its own.
 */
export const STANDBY_SETTLE_MS = 5000;

export interface WarmVolumesDeps {
  driver: VolumeDriver;
  volumes: readonly VolumeSpec[];
  log: Logger;
  /** Whether this node may start anything now (it neither leads nor takes over: those map the volumes themselves). */
  idle(): boolean;
  /** Whether this node would take over from `leader` (a drained node, or a core node behind a storage node, would not). */
  mayTakeOver?(leader: string): Promise<boolean>;
  /** STANDBY_SETTLE_MS unless given (tests). */
  standbySettleMs?: number;
}

/**
 * Volumes kept ready to map (driver.prepare: RBD's rbd-fuse started and connected), so that a takeover here begins
 * at the loop device. Two levels: 'standby', kept by every node that would take over from the current leader, for
 * a takeover after a crash (it touches no volume, so the successor's fence leaves it usable); 'handover', got
 * ready further when the leader announces a clean handover. A generation counter lets a drop cancel a warm-up
 * queued before it.
 */
export class WarmVolumes {
  private mode: PrepareMode | undefined;
  /** When a handover's warm-up began. */
  private handoverSince: number | undefined;
  private pending = false;
  /** Bumped by each drop: a warm-up queued before it must not start anything after it. */
  private gen = 0;
  private chain: Promise<void> = Promise.resolve();
  /** The first check drops anything a crashed run of the agent got ready. */
  private leftoverChecked = false;
  private eligible: { leader: string | undefined; ok: boolean; at: number } | undefined;
  /** The leader the follow passes last saw, and since when (monotonic ms). */
  private seen: { leader: string | undefined; since: number } | undefined;

  constructor(private readonly d: WarmVolumesDeps) {}

  /** A takeover begins: what was got ready is its own to map or release from here on. */
  handToTakeover(): void {
    this.mode = undefined;
    this.handoverSince = undefined;
  }

  /** The leader announced a handover: get ready for it, unless this node would not take over. */
  warmUp(leader: string): void {
    this.handoverSince = monoMs();
    this.queue('handover', leader);
  }

  /** Someone else leads now (not handing over): a handover's warm-up may have been fenced by it, so drop that. */
  leaderChanged(leader: string): void {
    this.eligible = undefined;
    if (this.mode === 'handover' || (this.pending && this.handoverSince !== undefined)) void this.coolDown(`${leader} leads storage`);
  }

  /**
   * Each follow pass: drops what an earlier run of the agent left (first pass) or a handover no takeover came
   * for, and keeps the volumes on standby while this node would take over from `leader`.
   */
  async check(leader: string | undefined): Promise<void> {
    if (!this.leftoverChecked) {
      this.leftoverChecked = true;
      if (!this.pending && this.mode === undefined) await this.coolDown('left by an earlier run of the agent');
      return;
    }
    if (this.handoverSince !== undefined && monoMs() - this.handoverSince > WARM_MAX_MS) {
      await this.coolDown('no takeover came');
      return;
    }
    if (this.seen === undefined || this.seen.leader !== leader) this.seen = { leader, since: monoMs() };
    if (this.pending || this.mode === 'handover' || !this.d.idle()) return;
    // No leader: an election is under way, and its winner's takeover should have the machine to itself (this
    // node's own takeover, if it wins, maps the volumes anyway). A new leader: the same, until it has settled.
    if (leader === undefined || monoMs() - this.seen.since < (this.d.standbySettleMs ?? STANDBY_SETTLE_MS)) return;
    if (!(await this.wouldTakeOver(leader))) {
      if (this.mode !== undefined) await this.coolDown('this node would not take over');
      return;
    }
    // Every pass, not only once: the driver's prepare is a no-op while ready, and restarts what has died.
    this.queue('standby', leader);
  }

  private async wouldTakeOver(leader: string | undefined): Promise<boolean> {
    const e = this.eligible;
    if (e !== undefined && e.leader === leader && monoMs() - e.at < STANDBY_RECHECK_MS) return e.ok;
    const ok = leader === undefined || this.d.mayTakeOver === undefined ? true : await this.d.mayTakeOver(leader).catch(() => false);
    this.eligible = { leader, ok, at: monoMs() };
    return ok;
  }

  private queue(mode: PrepareMode, leader: string | undefined): void {
    const prepare = this.d.driver.prepare?.bind(this.d.driver);
    if (prepare === undefined) return;
    const gen = this.gen;
    const live = (): boolean => gen === this.gen && this.d.idle();
    this.pending = true;
    this.chain = this.chain.then(async () => {
      if (!live()) return;
      if (mode === 'handover' && leader !== undefined && !(await this.wouldTakeOver(leader))) return;
      // Checked again after the wait: a takeover that began meanwhile maps the volumes itself, and a drop
      // meanwhile means the handover went elsewhere.
      if (!live()) return;
      this.mode = mode;
      const t0 = monoMs();
      const started = await Promise.all(this.d.volumes.map((v) => prepare(v.name, mode).catch((err: unknown) => {
        this.d.log.warn('could not get a volume ready to take over', { volume: v.name, mode, error: errorMessage(err) });
        return false;
      })));
      const names = this.d.volumes.filter((_, i) => started[i]).map((v) => v.name);
      if (names.length > 0) this.d.log.info('volumes ready to take over', { mode, leader, volumes: names, ms: monoMs() - t0 });
    }).finally(() => {
      if (gen === this.gen) this.pending = false;
    });
  }

  /** Drops what warm-ups started and a takeover did not use (also one left by an earlier run of the agent). */
  coolDown(reason: string): Promise<void> {
    const unprepare = this.d.driver.unprepare?.bind(this.d.driver);
    this.gen++;
    this.pending = false;
    this.mode = undefined;
    this.handoverSince = undefined;
    if (unprepare === undefined) return Promise.resolve();
    // At once, not after a warm-up still queued: another node's lock break may have blocklisted what a handover
    // opened here, and a takeover must never map it. The driver orders these after its own work on each volume,
    // and a drop touches only what no map has used, so a takeover under way keeps what it mapped.
    const drops = Promise.all(this.d.volumes.map((v) => unprepare(v.name).catch((err: unknown) => {
      this.d.log.warn('could not drop a volume got ready to take over', { volume: v.name, error: errorMessage(err) });
      return false;
    }))).then((dropped) => {
      const names = this.d.volumes.filter((_, i) => dropped[i]).map((v) => v.name);
      if (names.length > 0) this.d.log.info('dropped volumes got ready to take over', { reason, volumes: names });
    });
    this.chain = this.chain.then(() => drops);
    return drops;
  }
}
