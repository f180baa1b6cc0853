import type { StateClient } from '../state/client.js';
import { keys } from '../state/keys.js';
import type { DhcpLease } from '../state/schema.js';
import { releasePaced } from './dhcp-pacing.js';

/** etcd's default limit of operations in one transaction. */
const MAX_OPS = 128;

/**
 * A lease as stored: the JSON encodeValue(keys.dhcpLease) writes, same key order, without running the schema.
 * The backend builds leases only from node records that passed NodeRecordSchema (mac, ip, hostname) and an
 * ISO time, so nothing that would fail on read is written; the schema parse cost more than the rest of a
 * lease's encoding (lease-writer.test.ts checks the two agree).
 */
export function leaseJson(l: DhcpLease): string {
  return JSON.stringify({ mac: l.mac, ip: l.ip, hostname: l.hostname, expiresAt: l.expiresAt });
}

export interface LeaseWriterStats {
  /** Leases asked to be written, and etcd transactions that carried them. */
  leases: number;
  txns: number;
  failedTxns: number;
}

export interface LeaseWriterOptions {
  /**
   * Least time between the starts of two transactions (ms). etcd's cost is mostly per transaction (about
   * 1.5 ms of CPU over three members here, against a few µs per lease in it), so under load a short wait
   * that fills the transaction saves more than it delays; an ACK waits at most this long plus one commit.
   */
  intervalMs?: number;
}

/**
 * Group commit of DHCP leases: every ACK waits until its lease is in etcd, but leases that arrive
 * together share one transaction, so a burst of clients costs a few round trips, not one each.
 * One transaction is in flight at a time, and they start at least `intervalMs` apart (sooner when a
 * full transaction's worth is waiting); the next batch gathers meanwhile.
 */
export class LeaseWriter {
  private pending: { lease: DhcpLease; done: (err?: Error) => void }[] = [];
  private flushing = false;
  private timer: NodeJS.Timeout | undefined;
  private lastStart = -Infinity;
  private readonly intervalMs: number;
  private readonly counts: LeaseWriterStats = { leases: 0, txns: 0, failedTxns: 0 };

  constructor(private readonly state: StateClient, opts: LeaseWriterOptions = {}) {
    this.intervalMs = opts.intervalMs ?? 5;
  }

  write(lease: DhcpLease): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ lease, done: (err) => (err ? reject(err) : resolve()) });
      this.counts.leases++;
      if (!this.flushing) this.schedule();
    });
  }

  /** Starts the next transaction when the interval since the last one has passed, or at once when a full one waits. */
  private schedule(): void {
    const wait = this.lastStart + this.intervalMs - performance.now();
    if (wait <= 0 || this.pending.length >= MAX_OPS) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.flushing = true;
      // After this round of I/O callbacks, so every request the loop took in at once joins.
      setImmediate(() => void this.flush());
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        if (!this.flushing) this.schedule();
      }, Math.ceil(wait));
    }
  }

  stats(): LeaseWriterStats {
    return { ...this.counts };
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.length) {
        if (this.pending.length < MAX_OPS && performance.now() - this.lastStart < this.intervalMs) break;
        this.lastStart = performance.now();
        const batch = this.pending.splice(0, MAX_OPS);
        // The last write for a MAC wins within a batch, as it would one by one.
        const latest = new Map(batch.map((b) => [b.lease.mac, b.lease]));
        try {
          this.counts.txns++;
          await this.state.txn({
            compare: [],
            puts: [...latest.values()].map((l) => ({ key: keys.dhcpLease(l.mac).key, value: leaseJson(l) })),
          });
          // The ACKs of a large commit leave in chunks (see releasePaced), not all in one burst.
          releasePaced(batch, (b) => b.done());
        } catch (err) {
          this.counts.failedTxns++;
          for (const b of batch) b.done(err instanceof Error ? err : new Error(String(err)));
        }
      }
    } finally {
      this.flushing = false;
      if (this.pending.length) this.schedule();
    }
  }
}
