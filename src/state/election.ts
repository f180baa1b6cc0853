import type { Watcher } from 'etcd3';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { monoMs, sleep, withTimeout } from '../lib/time.js';
import type { StateClient } from './client.js';
import { decodeValue, encodeValue } from './codec.js';
import { keys } from './keys.js';
import type { LeaderValue } from './schema.js';

export interface ElectionCallbacks {
  /** Became leader. `token` (the leader key's create revision) only grows; `signal` aborts when leadership ends. */
  onLeading(token: number, signal: AbortSignal): void | Promise<void>;
  /**
   * Leadership ended (resigned, fenced at the deadline, lost the key). Awaited before the key is released.
   * Voluntary (resign, pause, close): the lease is still renewed until it returns, so the successor waits for a
   * clean stop. Forced: only the margin before the lease can expire is left.
   */
  onStopped(reason: string, how: { voluntary: boolean }): void | Promise<void>;
  /** Someone else (or nobody: undefined) leads now. */
  onNewLeader?(leader: LeaderValue | undefined): void;
  /**
   * The leader's deadline moved (monotonic ms), or ended (undefined). For a watchdog in another process
   * that must fence what this process started even when this process is frozen.
   */
  onDeadline?(deadlineMonoMs: number | undefined): void;
}

export interface ElectionOptions {
  state: StateClient;
  election: string;
  node: string;
  ttlSeconds: number;
  /** Time kept in hand before the lease could expire: the leader fences itself this early. */
  marginMs?: number;
  /**
   * For a candidate that should lead only when no better-placed one does: after finding the key free it waits
   * this long and campaigns only if the key is still free. Safety does not depend on it (the put is a compare
   * on the key's absence either way); it only decides who usually wins. A function is asked at each attempt,
   * with the node that led last (so it can tell whether anyone better placed is left).
   */
  yieldMs?: number | ((lastLeader: string | undefined) => Promise<number>);
  logger: Logger;
}

/** A follower's look at the leader key when no watch event came (a get: cheap for etcd). */
const FOLLOWER_RECHECK_MS = 500;
/**
 * Bound on each call of a campaign attempt. A call that lands on a member that has just died (its node
 * crashed or was cut off) hangs until gRPC notices, seconds later; bounded, the next attempt picks a member
 * at random again. The bound is a race, not a gRPC deadline: an expired deadline counts against the member in
 * the client's circuit breaker (and is reused by its retries), which soon shuts out healthy members too.
 * A txn given up on that did commit only leaves a key whose lease nobody keeps alive: it expires in one TTL.
 */
const CAMPAIGN_CALL_MS = 1000;

/**
 * One election over a single etcd key held by a lease. The leader keeps its own deadline
 * (send time of the last acknowledged keepalive + TTL − margin) and fences itself when it
 * passes, whether or not etcd can be reached; it never relies on the client's `lost` event.
 */
export class Election {
  private running = false;
  private paused = false;
  private leading = false;
  private token = 0;
  private deadline = 0;
  private leaseId: string | undefined;
  private leadership: AbortController | undefined;
  /** Ends the lease renewals: with the leadership when forced, after onStopped when voluntary. */
  private renewal: AbortController | undefined;
  /** A voluntary stepDown in progress: not leading, yet still renewing the lease and keeping the deadline. */
  private handingOver = false;
  private wake: (() => void) | undefined;
  private loopDone: Promise<void> | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private watcher: Watcher | undefined;
  private leaderSeen: LeaderValue | undefined;
  /** The last leader this candidate knew of, kept after its key is gone. */
  private lastLeader: string | undefined;

  private get currentLeader(): LeaderValue | undefined {
    return this.leaderSeen;
  }

  private set currentLeader(v: LeaderValue | undefined) {
    this.leaderSeen = v;
    if (v !== undefined) this.lastLeader = v.node;
  }
  private stopping: Promise<void> | undefined;
  /** After stepping down, leave the key to the others for one TTL, so a resign really hands over. */
  private holdOffUntil = 0;
  private readonly ttlMs: number;
  private readonly marginMs: number;

  constructor(private readonly o: ElectionOptions, private readonly cb: ElectionCallbacks) {
    this.ttlMs = o.ttlSeconds * 1000;
    this.marginMs = o.marginMs ?? Math.min(1000, Math.round(this.ttlMs / 4));
  }

  get name(): string {
    return this.o.election;
  }

  isLeader(): boolean {
    return this.leading;
  }

  fencingToken(): number | undefined {
    return this.leading ? this.token : undefined;
  }

  /** Monotonic time (ms) at which this leader stops acting unless a keepalive succeeds first. */
  leaderDeadline(): number | undefined {
    return this.leading ? this.deadline : undefined;
  }

  leader(): LeaderValue | undefined {
    return this.currentLeader;
  }

  campaign(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop().catch((err: unknown) => this.o.logger.error('election loop failed', { election: this.o.election, error: errorMessage(err) }));
  }

  /** Drained nodes pause: they resign and do not campaign until resumed. */
  async setPaused(paused: boolean): Promise<void> {
    if (paused === this.paused) return;
    this.paused = paused;
    if (paused) await this.resign('paused (node drained)');
    this.wake?.();
  }

  /** Hands leadership over: stop acting first (the lease kept alive meanwhile), then delete the key so followers move at once. */
  async resign(reason = 'resigned'): Promise<void> {
    if (!this.leading) return;
    await this.fence(reason, true);
  }

  async close(): Promise<void> {
    this.running = false;
    await this.resign('shutting down');
    this.wake?.();
    await this.loopDone;
    await this.watcher?.cancel().catch(() => undefined);
  }

  private async loop(): Promise<void> {
    await this.watchLeaderKey();
    while (this.running) {
      // While stepping down (a voluntary stop can outlast the hold-off) there is nothing to campaign for either.
      if (this.paused || this.leading || this.stopping) {
        await this.waitForWake(this.leading || this.stopping ? this.ttlMs : 60_000);
        continue;
      }
      const holdOff = this.holdOffUntil - monoMs();
      if (holdOff > 0) {
        await this.waitForWake(holdOff);
        continue;
      }
      try {
        const won = await this.tryAcquire();
        if (won) continue;
      } catch (err) {
        this.o.logger.debug('campaign attempt failed', { election: this.o.election, error: errorMessage(err) });
      }
      // A follower re-checks when the watch reports the key gone, and every FOLLOWER_RECHECK_MS in case the
      // watch is stale (its stream may sit on a member that just died with the leader's node).
      await this.waitForWake(Math.min(this.ttlMs, FOLLOWER_RECHECK_MS));
    }
  }

  private waitForWake(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  private async watchLeaderKey(): Promise<void> {
    const key = keys.leader(this.o.election).key;
    try {
      this.watcher = await this.o.state.etcd.watch().key(key).create();
      this.watcher.on('put', (kv) => {
        try {
          this.currentLeader = JSON.parse(kv.value.toString()) as LeaderValue;
          this.cb.onNewLeader?.(this.currentLeader);
        } catch {
          /* validated on read elsewhere */
        }
      });
      this.watcher.on('delete', (kv) => {
        // The watch may deliver the previous key's deletion after our get found it gone and our put won: a
        // deletion older than our own key is not about it.
        if (this.leading && Number(kv.mod_revision) < this.token) return;
        this.currentLeader = undefined;
        this.cb.onNewLeader?.(undefined);
        if (this.leading) void this.fence('leader key deleted');
        this.wake?.();
      });
    } catch (err) {
      this.o.logger.warn('cannot watch leader key yet; polling', { election: this.o.election, error: errorMessage(err) });
    }
  }

  private async tryAcquire(): Promise<boolean> {
    const def = keys.leader(this.o.election);
    const raw = await withTimeout(this.o.state.etcd.get(def.key).string(), CAMPAIGN_CALL_MS, 'reading the leader key');
    if (raw !== null) {
      this.currentLeader = decodeValue(def, def.key, raw);
      return false;
    }
    const y = this.o.yieldMs;
    const yieldMs = typeof y === 'function' ? await y(this.lastLeader).catch(() => 0) : (y ?? 0);
    if (yieldMs > 0) {
      await sleep(yieldMs);
      if (!this.running || this.paused) return false;
      const again = await withTimeout(this.o.state.etcd.get(def.key).string(), CAMPAIGN_CALL_MS, 'reading the leader key');
      if (again !== null) {
        this.currentLeader = decodeValue(def, def.key, again);
        return false;
      }
    }
    const sentAt = monoMs();
    const grant = await withTimeout(this.o.state.etcd.leaseClient.leaseGrant({ TTL: String(this.o.ttlSeconds) }), CAMPAIGN_CALL_MS, 'granting a lease');
    const leaseId = grant.ID;
    const value: LeaderValue = { node: this.o.node, since: new Date().toISOString() };
    // Create revision 0: the key does not exist.
    const res = await withTimeout(this.putLeaderKey(0, value, leaseId), CAMPAIGN_CALL_MS, 'writing the leader key');
    if (!res.succeeded) {
      void this.o.state.etcd.leaseClient.leaseRevoke({ ID: leaseId }).catch(() => undefined);
      return false;
    }
    this.leaseId = leaseId;
    this.token = Number(res.header.revision);
    this.deadline = sentAt + this.ttlMs - this.marginMs;
    this.leading = true;
    this.currentLeader = value;
    this.leadership = new AbortController();
    this.renewal = new AbortController();
    this.o.logger.info('leading', { election: this.o.election, token: this.token });
    this.armDeadline();
    // An acquisition that took long (a slow member) left little of the deadline: renew at once, not a full interval later.
    void this.keepaliveLoop(leaseId, this.renewal.signal, monoMs() - sentAt);
    try {
      await this.cb.onLeading(this.token, this.leadership.signal);
    } catch (err) {
      this.o.logger.error('onLeading failed; resigning', { election: this.o.election, error: errorMessage(err) });
      await this.fence(`leader start failed: ${errorMessage(err)}`);
    }
    return true;
  }

  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    const armed = this.leading || this.handingOver;
    this.cb.onDeadline?.(armed ? this.deadline : undefined);
    if (!armed) return;
    const wait = Math.max(0, this.deadline - monoMs());
    this.deadlineTimer = setTimeout(() => {
      if (monoMs() < this.deadline) this.armDeadline();
      else if (this.leading) void this.fence('deadline reached without keepalive');
      // Already stopping: the watchdog holds this deadline and fences what still runs once it passes.
      else if (this.handingOver) this.o.logger.error('deadline reached during a voluntary stepDown', { election: this.o.election, token: this.token });
    }, wait);
  }

  /** No more renewals and no deadline: the lease is about to be revoked or left to expire. */
  private disarm(): void {
    this.renewal?.abort();
    clearTimeout(this.deadlineTimer);
    this.cb.onDeadline?.(undefined);
  }

  private async keepaliveLoop(leaseId: string, signal: AbortSignal, acquiredInMs = 0): Promise<void> {
    // Four keepalives per TTL: a leader whose etcd member died gets two or three tries on the others
    // (while etcd elects a new raft leader) before its deadline.
    const interval = Math.max(200, Math.floor(this.ttlMs / 4));
    let wait = acquiredInMs > interval / 2 ? 0 : interval;
    while (!signal.aborted) {
      await sleep(wait, signal).catch(() => undefined);
      if (signal.aborted) return;
      const sentAt = monoMs();
      // After a failure, try again soon (the client moves to another member) rather than a full interval later.
      wait = 150;
      try {
        const ttl = await keepaliveOnce(this.o.state, leaseId, Math.min(interval, 600));
        if (signal.aborted) return;
        if (ttl <= 0) {
          void this.fence('lease expired in etcd');
          return;
        }
        this.deadline = sentAt + this.ttlMs - this.marginMs;
        this.armDeadline();
        wait = interval;
      } catch (err) {
        this.o.logger.warn('keepalive failed', { election: this.o.election, error: errorMessage(err), msToDeadline: this.deadline - monoMs() });
      }
    }
  }

  /**
   * Marks the key as handing over, so the candidates can get ready (a successor's slow first steps overlap the
   * old leader's stop). Not awaited: the handover must not wait on it. The put is a compare on the key still
   * being ours (its create revision is our token): it never writes a key that has already gone.
   */
  private announceHandover(): void {
    const leaseId = this.leaseId;
    if (leaseId === undefined) return;
    const value: LeaderValue = { node: this.o.node, since: this.currentLeader?.node === this.o.node ? this.currentLeader.since : new Date().toISOString(), handingOver: true };
    withTimeout(this.putLeaderKey(this.token, value, leaseId), CAMPAIGN_CALL_MS, 'announcing the handover').catch((err: unknown) => this.o.logger.debug('could not announce the handover', { election: this.o.election, error: errorMessage(err) }));
  }

  /** Puts the leader key with the lease, only if the key's create revision is `createRevision` (0: no key). */
  private putLeaderKey(createRevision: number, value: LeaderValue, leaseId: string): ReturnType<StateClient['etcd']['kv']['txn']> {
    const def = keys.leader(this.o.election);
    return this.o.state.etcd.kv.txn({
      compare: [{ key: Buffer.from(def.key), result: 'Equal', target: 'Create', create_revision: String(createRevision) }],
      success: [{ request_put: { key: Buffer.from(def.key), value: Buffer.from(encodeValue(def, value)), lease: leaseId } }],
      failure: [],
    });
  }

  /** Stops acting (awaiting the callbacks), then releases the key. Safe to call concurrently. */
  private fence(reason: string, voluntary = false): Promise<void> {
    if (this.stopping) return this.stopping;
    if (!this.leading) return Promise.resolve();
    this.stopping = (async () => {
      this.leading = false;
      this.handingOver = voluntary;
      this.holdOffUntil = monoMs() + this.ttlMs;
      if (!voluntary) this.disarm();
      this.leadership?.abort(new Error(reason));
      this.o.logger.info('stopped leading', { election: this.o.election, token: this.token, reason, voluntary });
      if (voluntary) this.announceHandover();
      try {
        await this.cb.onStopped(reason, { voluntary });
      } catch (err) {
        this.o.logger.error('onStopped failed', { election: this.o.election, error: errorMessage(err) });
      }
      this.handingOver = false;
      this.disarm();
      const leaseId = this.leaseId;
      this.leaseId = undefined;
      if (leaseId) await revokeLease(this.o.state, leaseId, this.o.logger);
      // Counted from the release: a long voluntary stop must not end the hold-off before the others had their turn.
      this.holdOffUntil = monoMs() + this.ttlMs;
    })().finally(() => {
      this.stopping = undefined;
      this.wake?.();
    });
    return this.stopping;
  }
}

/**
 * Revokes the leader's lease so the key goes at once. A member that is going down with this node (its etcd
 * stopping beside the agent) must not turn a handover into a wait for the lease to expire: each try is bounded
 * and the next goes through the next member.
 */
async function revokeLease(state: StateClient, leaseId: string, logger: Logger): Promise<void> {
  const tries = Math.max(2, state.options.endpoints.length + 1);
  for (let i = 0; i < tries; i++) {
    const member = state.keepaliveClient();
    try {
      await withTimeout(member.client.leaseClient.leaseRevoke({ ID: leaseId }), 1000, 'revoking the lease');
      return;
    } catch (err) {
      // Gone already (expired or revoked by an earlier try whose answer was lost): nothing left to do.
      if (/not found/i.test(errorMessage(err))) return;
      member.failed();
      logger.warn('lease revoke failed; trying another member', { error: errorMessage(err) });
    }
  }
}

/**
 * One keepalive on a lease, bounded in time (the stream call has no deadline of its own). Returns the TTL left.
 * Sent through the member the state client chooses for keepalives; a failure moves that choice on.
 */
export async function keepaliveOnce(state: StateClient, leaseId: string, timeoutMs: number): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const member = state.keepaliveClient();
  let stream: Awaited<ReturnType<StateClient['etcd']['leaseClient']['leaseKeepAlive']>> | undefined;
  try {
    return await Promise.race([
      (async () => {
        stream = await member.client.leaseClient.leaseKeepAlive();
        const s = stream;
        return new Promise<number>((resolve, reject) => {
          s.on('data', (res: { TTL: string }) => resolve(Number(res.TTL)));
          s.on('error', reject);
          s.write({ ID: leaseId });
        });
      })(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`keepalive timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    member.failed();
    throw err;
  } finally {
    clearTimeout(timer);
    stream?.end();
  }
}
