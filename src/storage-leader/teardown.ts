import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Supervised } from '../lib/supervisor.js';
import { monoMs, sleep, withTimeout } from '../lib/time.js';
import type { LockHolder, VolumeDriver, VolumeSpec } from '../storage/driver.js';
import type { Timeline } from './timeline.js';
import type { ProcessOps, VipOps } from './types.js';

export interface HeldVolume {
  spec: VolumeSpec;
  locked: boolean;
  /** 'attempted': map was called but did not answer; unmap is tried, its failure tolerated. */
  mapping: 'none' | 'attempted' | 'mapped';
  device: string | undefined;
  /** Set before mount is called, so a mount that half-happened is still undone. */
  mountPoint: string | undefined;
}

/** Everything one leadership term has taken, released in reverse by teardown. */
export interface Held {
  holder: LockHolder;
  volumes: HeldVolume[];
  services: Supervised[];
  vip: { iface: string; cidr: string } | undefined;
}

export interface TeardownEnv {
  driver: VolumeDriver;
  vipOps: VipOps;
  processOps: ProcessOps;
  logger: Logger;
  budgetMs: number;
  /** Called for anything left behind (the detail names it). */
  alarm(name: string, detail: string): void;
  /** Times each step (the stepDown's timeline); untimed when absent. */
  timeline?: Timeline;
  /**
   * A planned handover (drain, resign, shutdown): before the VIP goes, the services and file systems write out
   * what their stop would otherwise write while clients wait.
   */
  handover?: boolean;
}

/** Share of the budget that the handover's preparation may take, and its cap: a stuck flush must not eat the stop. */
const HANDOVER_SHARE = 0.3;
const HANDOVER_MAX_MS = 5000;

/** Bound on aborting a volume's I/O and on the services' exit after it (both past the budget already). */
const ABORT_MS = 1000;

/** Splits the stepDown budget: how long services may take to stop gracefully before SIGKILL. */
export const serviceStopMs = (budgetMs: number): number => Math.floor(budgetMs * 0.5);

/**
 * Ordered, bounded release: VIP off; services stopped gracefully (SIGKILL only when their share of the budget
 * runs out); then per volume unmount (a few retries), unmap, unlock. A volume that stays mounted keeps its map and
 * its lock: the next leader breaks the lock with fencing, which is safer than letting it go unfenced.
 * Returns true when everything was released; `held` keeps what was not.
 */
export async function teardown(held: Held, env: TeardownEnv, reason: string): Promise<boolean> {
  const t0 = monoMs();
  const deadline = t0 + env.budgetMs;
  const left = (reserve = 0): number => Math.max(1, deadline - reserve - monoMs());
  const log = env.logger;
  let clean = true;

  const step = <T>(name: string, fn: () => Promise<T>): Promise<T> => (env.timeline ? env.timeline.step(name, fn) : fn());

  if (env.handover) {
    // Still serving: a checkpoint now leaves the services' own stop little to write, and a syncfs after it
    // leaves the unmount little to flush. Either failing only makes the stop below longer.
    const limit = Math.min(HANDOVER_MAX_MS, env.budgetMs * HANDOVER_SHARE);
    await step('flush before handover', () => withTimeout((async () => {
      await Promise.all(held.services.map((s) => (s.spec.beforeHandover?.() ?? Promise.resolve()).catch((err: unknown) => log.warn('before-handover step failed', { service: s.spec.name, error: errorMessage(err) }))));
      const mounted = held.volumes.map((v) => v.mountPoint).filter((mp): mp is string => mp !== undefined);
      await Promise.all(mounted.map((mp) => env.processOps.syncFs(mp, limit).catch((err: unknown) => log.warn('syncfs before handover failed', { mountPoint: mp, error: errorMessage(err) }))));
    })(), limit, 'flushing before the handover')).catch((err: unknown) => log.warn('flush before handover cut short', { error: errorMessage(err) }));
  }

  if (held.vip) {
    const { iface, cidr } = held.vip;
    try {
      await step('remove VIP', () => withTimeout(env.vipOps.remove(iface, cidr), Math.min(left(), Math.max(200, env.budgetMs * 0.15)), 'removing the VIP'));
      held.vip = undefined;
    } catch (err) {
      clean = false;
      env.alarm('storage-vip', `VIP ${cidr} could not be removed from ${iface}: ${errorMessage(err)}`);
    }
  }

  /** Volumes whose I/O was aborted to let the services die. */
  let aborted: HeldVolume[] = [];
  if (held.services.length > 0) {
    const services = held.services;
    const stopAll = Promise.all(services.map((s) => step(`stop ${s.spec.name}`, () => s.stop(serviceStopMs(env.budgetMs)))));
    try {
      await withTimeout(stopAll, Math.min(left(env.budgetMs * 0.3), serviceStopMs(env.budgetMs) + env.budgetMs * 0.1), 'stopping services');
      held.services = [];
    } catch (err) {
      // Still running after SIGKILL: stuck in I/O to a volume that does not answer (a node cut off from Ceph).
      // Aborting the volumes' I/O is what lets them die; waiting would keep them past the lease.
      log.error('services did not stop in time; aborting volume I/O', { reason, error: errorMessage(err) });
      aborted = held.volumes.filter((v) => v.mapping !== 'none');
      await Promise.all(aborted.map((v) => step(`abort ${v.spec.name}`, () => withTimeout(env.driver.abort(v.spec.name), ABORT_MS, `aborting ${v.spec.name}`)).catch((e: unknown) => {
        log.error('abort failed', { volume: v.spec.name, error: errorMessage(e) });
      })));
      try {
        await withTimeout(stopAll, ABORT_MS, 'stopping services after the volumes were aborted');
        held.services = [];
        log.warn('services stopped once their volumes were aborted', { reason, volumes: aborted.map((v) => v.spec.name) });
      } catch (again) {
        clean = false;
        env.alarm('storage-teardown', `services did not stop, even with their volumes aborted: ${errorMessage(again)}`);
      }
    }
  }

  if (aborted.length > 0 && !env.handover) {
    // Forced, and past the budget: nothing can write through an aborted volume any more, and the unmount of a
    // file system that lost its device took 400-700 ms on a loaded node, all of it past the margin. The follow
    // pass releases the volumes within seconds; the next leader breaks the lock with fencing meanwhile.
    env.alarm('storage-teardown', `volumes ${aborted.map((v) => v.spec.name).join(', ')} were aborted (their storage did not answer); unmount, unmap and unlock are retried while following`);
    log.info('storage released', { reason, clean: false, aborted: true, ms: monoMs() - t0 });
    return false;
  }

  // Volumes are independent: each is unmounted, unmapped and unlocked on its own, all at once.
  const releaseVolume = async (v: HeldVolume): Promise<boolean> => {
    const name = v.spec.name;
    if (v.mountPoint !== undefined) {
      const mp = v.mountPoint;
      const mounted = await step(`unmount ${name}`, async () => {
        let still = await env.processOps.isMounted(mp).catch(() => true);
        for (let attempt = 0; still && attempt < 4 && left(env.budgetMs * 0.1) > 20; attempt++) {
          if (attempt > 0) await sleep(Math.min(100, left(env.budgetMs * 0.1)));
          try {
            await env.driver.unmount(mp, { timeoutMs: Math.min(left(env.budgetMs * 0.1), 800) });
          } catch (err) {
            log.warn('unmount failed; retrying', { volume: name, attempt, error: errorMessage(err) });
          }
          still = await env.processOps.isMounted(mp).catch(() => true);
        }
        return still;
      });
      if (mounted) {
        env.alarm('storage-teardown', `volume ${name} is still mounted at ${mp}; its lock is left for the next leader to break with fencing`);
        return false;
      }
      v.mountPoint = undefined;
    }
    if (v.mapping !== 'none') {
      try {
        await step(`unmap ${name}`, () => withTimeout(env.driver.unmap(name), left(env.budgetMs * 0.05), `unmapping ${name}`));
        v.mapping = 'none';
        v.device = undefined;
      } catch (err) {
        if (v.mapping === 'mapped') {
          env.alarm('storage-teardown', `volume ${name} could not be unmapped: ${errorMessage(err)}; its lock is left for the next leader`);
          return false;
        }
        v.mapping = 'none';
      }
    }
    if (v.locked) {
      try {
        await step(`unlock ${name}`, () => withTimeout(env.driver.unlock(name, held.holder), left(), `unlocking ${name}`));
      } catch (err) {
        // Not a danger: nothing of ours uses the volume any more; the next leader breaks the stale lock.
        log.warn('unlock failed', { volume: name, error: errorMessage(err) });
      }
      v.locked = false;
    }
    // The record stays (now empty): a takeover still in flight sets its fields again when its step finishes, so the
    // release that follows it sees what that step took.
    return true;
  };
  const released = await Promise.all([...held.volumes].reverse().map((v) => releaseVolume(v)));
  if (released.includes(false)) clean = false;
  log.info('storage released', { reason, clean, ms: monoMs() - t0 });
  return clean;
}
