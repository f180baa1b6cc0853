import type { StateClient } from '../state/client.js';
import { keys } from '../state/keys.js';
import type { DhcpLease } from '../state/schema.js';

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

/**
 * Group commit of DHCP leases: every ACK waits until its lease is in etcd, but leases that arrive
 * together share one transaction, so a burst of clients costs a few round trips, not one each.
 * A flush starts after the current round of I/O callbacks (setImmediate), so every request the event
 * loop took in at once shares the first transaction too; while one is in flight the next batch gathers.
 */
export class LeaseWriter {
  private pending: { lease: DhcpLease; done: (err?: Error) => void }[] = [];
  private flushing = false;
  private readonly counts: LeaseWriterStats = { leases: 0, txns: 0, failedTxns: 0 };

  constructor(private readonly state: StateClient) {}

  write(lease: DhcpLease): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ lease, done: (err) => (err ? reject(err) : resolve()) });
      this.counts.leases++;
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  stats(): LeaseWriterStats {
    return { ...this.counts };
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0, MAX_OPS);
        // The last write for a MAC wins within a batch, as it would one by one.
        const latest = new Map(batch.map((b) => [b.lease.mac, b.lease]));
        try {
          this.counts.txns++;
          await this.state.txn({
            compare: [],
            puts: [...latest.values()].map((l) => ({ key: keys.dhcpLease(l.mac).key, value: leaseJson(l) })),
          });
          for (const b of batch) b.done();
        } catch (err) {
          this.counts.failedTxns++;
          for (const b of batch) b.done(err instanceof Error ? err : new Error(String(err)));
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
