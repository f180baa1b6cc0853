import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { monoMs } from '../lib/time.js';
import type { VolumeDriver, VolumeSpec } from '../storage/driver.js';

/** A warm-up that no takeover used is dropped after this long at the latest. */
export const WARM_MAX_MS = 30_000;

export interface WarmVolumesDeps {
  driver: VolumeDriver;
  volumes: readonly VolumeSpec[];
  log: Logger;
  /** Whether this node may start anything now (it neither leads nor takes over: those map the volumes themselves). */
  idle(): boolean;
  /** Whether this node would take over from `leader` (a drained node, or a core node behind a storage node, would not). */
  mayTakeOver?(leader: string): Promise<boolean>;
}

/**
 * Volumes got ready (driver.prepare: RBD's rbd-fuse started) while the leader hands over, so that a takeover here
 * begins at the loop device. One state: idle, a warm-up queued or under way (`pending`), or warm (`since`). A
 * generation counter lets a drop cancel a warm-up queued before it.
 */
export class WarmVolumes {
  private since: number | undefined;
  private pending = false;
  /** Bumped by each drop: a warm-up queued before it must not start anything after it. */
  private gen = 0;
  private chain: Promise<void> = Promise.resolve();
  /** The first check drops anything a crashed run of the agent got ready. */
  private leftoverChecked = false;

  constructor(private readonly d: WarmVolumesDeps) {}

  /** A takeover begins: what was got ready is its own to map or release from here on. */
  handToTakeover(): void {
    this.since = undefined;
  }

  /** The leader announced a handover: get ready, unless already ready or this node would not take over. */
  warmUp(leader: string): void {
    const prepare = this.d.driver.prepare?.bind(this.d.driver);
    if (prepare === undefined) return;
    const gen = this.gen;
    const live = (): boolean => gen === this.gen && this.d.idle();
    this.pending = true;
    this.chain = this.chain.then(async () => {
      if (!live() || this.since !== undefined) return;
      if (!(await (this.d.mayTakeOver?.(leader) ?? Promise.resolve(true)).catch(() => false))) return;
      // Checked again after the wait: a takeover that began meanwhile maps the volumes itself, and a drop
      // meanwhile means the handover went elsewhere.
      if (!live()) return;
      const t0 = monoMs();
      this.since = t0;
      const started = await Promise.all(this.d.volumes.map((v) => prepare(v.name).catch((err: unknown) => {
        this.d.log.warn('could not get a volume ready for the handover', { volume: v.name, error: errorMessage(err) });
        return false;
      })));
      this.d.log.info('volumes ready for a handover', { leader, volumes: this.d.volumes.filter((_, i) => started[i]).map((v) => v.name), ms: monoMs() - t0 });
    }).finally(() => {
      if (gen === this.gen) this.pending = false;
    });
  }

  /** Someone else leads now (not handing over): drop what is ready or getting ready. */
  leaderChanged(leader: string): void {
    if (this.since !== undefined || this.pending) void this.coolDown(`${leader} leads storage`);
  }

  /** Each follow pass: drops what an earlier run of the agent left (first pass), or what no takeover came for. */
  async check(): Promise<void> {
    if (!this.leftoverChecked) {
      this.leftoverChecked = true;
      if (!this.pending && this.since === undefined) await this.coolDown('left by an earlier run of the agent');
    } else if (this.since !== undefined && monoMs() - this.since > WARM_MAX_MS) {
      await this.coolDown('no takeover came');
    }
  }

  /** Drops what warmUp started and a takeover did not use (also one left by an earlier run of the agent). */
  coolDown(reason: string): Promise<void> {
    const unprepare = this.d.driver.unprepare?.bind(this.d.driver);
    if (unprepare === undefined) return Promise.resolve();
    // At once, not after a warm-up still queued: another node's lock break may have blocklisted what is ready
    // here, and a takeover must never map it. The driver orders these after its own work on each volume, and a
    // drop touches only what no map has used, so a takeover under way keeps what it mapped.
    this.gen++;
    this.pending = false;
    this.since = undefined;
    const drops = Promise.all(this.d.volumes.map((v) => unprepare(v.name).catch((err: unknown) => {
      this.d.log.warn('could not drop a volume got ready for a handover', { volume: v.name, error: errorMessage(err) });
      return false;
    }))).then((dropped) => {
      const names = this.d.volumes.filter((_, i) => dropped[i]).map((v) => v.name);
      if (names.length > 0) this.d.log.info('dropped volumes got ready for a handover', { reason, volumes: names });
    });
    this.chain = this.chain.then(() => drops);
    return drops;
  }
}
