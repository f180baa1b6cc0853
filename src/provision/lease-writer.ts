import type { StateClient } from '../state/client.js';
import { encodeValue } from '../state/codec.js';
import { keys } from '../state/keys.js';
import type { DhcpLease } from '../state/schema.js';

/** etcd's default limit of operations in one transaction. */
const MAX_OPS = 128;

/**
 * Group commit of DHCP leases: every ACK waits until its lease is in etcd, but leases that arrive
 * together share one transaction, so a burst of clients costs a few round trips, not one each.
 */
export class LeaseWriter {
  private pending: { lease: DhcpLease; done: (err?: Error) => void }[] = [];
  private flushing = false;

  constructor(private readonly state: StateClient) {}

  write(lease: DhcpLease): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ lease, done: (err) => (err ? reject(err) : resolve()) });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0, MAX_OPS);
        // The last write for a MAC wins within a batch, as it would one by one.
        const latest = new Map(batch.map((b) => [b.lease.mac, b.lease]));
        try {
          await this.state.txn({
            compare: [],
            puts: [...latest.values()].map((l) => ({ key: keys.dhcpLease(l.mac).key, value: encodeValue(keys.dhcpLease(l.mac), l) })),
          });
          for (const b of batch) b.done();
        } catch (err) {
          for (const b of batch) b.done(err instanceof Error ? err : new Error(String(err)));
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
