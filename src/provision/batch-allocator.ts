import { YcError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { formatIpv4, parseIpv4 } from '../lib/net.js';
import { allocateNode, finalType, parseNodeType } from '../inventory/allocate.js';
import { RANGE_OF, SERIES } from '../inventory/node-types.js';
import { decideType } from '../inventory/type-rules.js';
import type { StateClient } from '../state/client.js';
import { encodeValue } from '../state/codec.js';
import { keys } from '../state/keys.js';
import type { ClusterConfig, NodeRecord, NodeType } from '../state/schema.js';
import type { ClusterCache } from './cluster-cache.js';
import { releasePaced } from './dhcp-pacing.js';

/** etcd allows 128 compares and 128 operations per transaction; a node is three keys (three of each). */
const MAX_NODES_PER_TXN = 40;
/** Batch transactions in flight at once: a burst of new machines is not held to one etcd round trip per 40. */
const MAX_IN_FLIGHT = 4;

export interface AllocatorStats {
  /** Machines allocated, batch transactions (applied or not), and batches that fell back to one by one. */
  allocated: number;
  txns: number;
  fallbacks: number;
}

interface Pending {
  mac: string;
  reported: NodeType | undefined;
  resolve: (n: NodeRecord) => void;
  reject: (e: Error) => void;
}

/**
 * Allocates new machines for DHCP in batches: one process (the DHCP leader) picks names and addresses
 * for every MAC waiting from its in-memory view (the cluster cache: nodes, registrations, MAC rules, config),
 * then writes them all in one transaction guarded by create-revision compares, with no read before it.
 * Competing one-by-one allocations for "the first free name" collapsed under a burst of new machines
 * (every one but the winner retried). When a transaction loses a race (another allocator wrote meanwhile,
 * or the cache had not seen a write yet), each of its MACs falls back to the one-by-one allocator, which
 * reads etcd. Names and addresses of batches in flight are reserved, so concurrent batches never plan the same.
 */
export class BatchAllocator {
  private pending: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;
  private readonly reservedNames = new Set<string>();
  private readonly reservedIps = new Set<number>();
  /**
   * Where each first-free search may resume: every name number / address below it was taken or reserved when
   * it was set. Valid only while the cache has freed nothing since (`removals`) and no batch failed; otherwise
   * searches start again at the beginning. Without it every allocation scanned all addresses in use (quadratic).
   */
  private resume = new Map<string, number>();
  private resumeRemovals = -1;
  private readonly counts: AllocatorStats = { allocated: 0, txns: 0, fallbacks: 0 };

  constructor(private readonly state: StateClient, private readonly cache: ClusterCache, private readonly logger: Logger) {}

  stats(): AllocatorStats {
    return { ...this.counts };
  }

  allocate(mac: string, reportedType?: string): Promise<NodeRecord> {
    let reported: NodeType | undefined;
    try {
      reported = reportedType === undefined ? undefined : parseNodeType(reportedType);
    } catch {
      reported = undefined; // a bad vendor class from a client: decide by the rules instead
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ mac, reported, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // After this round of I/O callbacks: every DISCOVER the loop took in at once joins the same batch.
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (this.pending.length > 0 && this.inFlight < MAX_IN_FLIGHT) {
      const batch = this.pending.splice(0, MAX_NODES_PER_TXN);
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async run(batch: Pending[]): Promise<void> {
    try {
      await this.allocateBatch(batch);
    } catch (err) {
      this.resume.clear(); // names and addresses planned for the failed batch are free again
      this.counts.fallbacks++;
      this.logger.warn('batch allocation lost a race; allocating one by one', { error: errorMessage(err), macs: batch.length });
      for (const p of batch) {
        await allocateNode(this.state, { mac: p.mac, ...(p.reported ? { reportedType: p.reported } : {}) })
          .then(({ node, created }) => {
            if (created) this.counts.allocated++;
            this.cache.remember(node);
            p.resolve(node);
          })
          .catch((e: unknown) => p.reject(e instanceof Error ? e : new Error(String(e))));
      }
    }
  }

  private async allocateBatch(batch: Pending[]): Promise<void> {
    const config = this.cache.config();
    if (this.resumeRemovals !== this.cache.removals()) {
      this.resume.clear();
      this.resumeRemovals = this.cache.removals();
    }
    const rules = this.cache.macRules();
    const planned: { p: Pending; node: NodeRecord }[] = [];
    const seen = new Map<string, NodeRecord>();
    for (const p of batch) {
      const known = this.cache.nodeByMac(p.mac);
      if (known) {
        p.resolve(known);
        continue;
      }
      const again = seen.get(p.mac);
      if (again) {
        planned.push({ p, node: again });
        continue;
      }
      try {
        const decided = decideType(p.mac, this.cache.registeredType(p.mac), rules, p.reported);
        const hostname = this.firstFreeName(SERIES[decided.type]);
        const type = finalType(decided.type, hostname, config);
        const ip = this.firstFreeIp(config, type);
        const node: NodeRecord = { mac: p.mac, hostname, ip, type, typeSource: decided.source, createdAt: new Date().toISOString() };
        // Reserved at once: a later search in this batch may start from the beginning again.
        this.reservedNames.add(hostname);
        this.reservedIps.add(parseIpv4(ip));
        seen.set(p.mac, node);
        planned.push({ p, node });
      } catch (err) {
        this.resume.clear(); // a name may have been taken for a MAC that got no address
        p.reject(err instanceof Error ? err : new YcError('INTERNAL', String(err)));
      }
    }
    const unique = [...seen.values()];
    if (unique.length === 0) return;
    try {
      const nodeKeys = unique.flatMap((n) => [keys.nodeByMac(n.mac).key, keys.nodeByName(n.hostname).key, keys.nodeByIp(n.ip).key]);
      this.counts.txns++;
      const ok = await this.state.txn({
        compare: nodeKeys.map((key) => ({ key, target: 'create' as const, equals: 0 })),
        puts: unique.flatMap((n) => [
          { key: keys.nodeByMac(n.mac).key, value: encodeValue(keys.nodeByMac(n.mac), n) },
          { key: keys.nodeByName(n.hostname).key, value: encodeValue(keys.nodeByName(n.hostname), { mac: n.mac }) },
          { key: keys.nodeByIp(n.ip).key, value: encodeValue(keys.nodeByIp(n.ip), { mac: n.mac }) },
        ]),
      });
      if (!ok) throw new YcError('CONFLICT', 'another allocator wrote meanwhile', { retryable: true });
      this.counts.allocated += unique.length;
      for (const n of unique) {
        this.cache.remember(n);
        this.logger.info('new machine allocated', { mac: n.mac, hostname: n.hostname, ip: n.ip, type: n.type });
      }
    } finally {
      // After remember(): the cache holds them from here on (or, on failure, they are free again).
      for (const n of unique) {
        this.reservedNames.delete(n.hostname);
        this.reservedIps.delete(parseIpv4(n.ip));
      }
    }
    // Their OFFERs leave in chunks: batches in flight together could otherwise send 160 at once.
    releasePaced(planned, ({ p, node }) => p.resolve(node));
  }

  /** Lowest free number in a host name series (as firstFreeName), resuming after the last one handed out. */
  private firstFreeName(letter: string): string {
    const key = `name:${letter}`;
    for (let n = this.resume.get(key) ?? 1; n < 10_000; n++) {
      const name = `${letter}${n}`;
      if (!this.cache.hostnameTaken(name) && !this.reservedNames.has(name)) {
        this.resume.set(key, n + 1);
        return name;
      }
    }
    throw new YcError('RANGE_FULL', `no free host name in series ${letter}`);
  }

  /** Lowest free address of the type's range (as firstFreeIp: never a VIP), resuming after the last one handed out. */
  private firstFreeIp(config: ClusterConfig, type: NodeType): string {
    const kind = RANGE_OF[type];
    const range = config.ranges[kind];
    const start = parseIpv4(range.start);
    const end = parseIpv4(range.end);
    const key = `ip:${start}-${end}`;
    const gateway = parseIpv4(config.gatewayVip);
    const storage = parseIpv4(config.storageVip);
    for (let n = Math.max(start, this.resume.get(key) ?? start); n <= end; n++) {
      if (n !== gateway && n !== storage && !this.cache.ipTaken(n) && !this.reservedIps.has(n)) {
        this.resume.set(key, n + 1);
        return formatIpv4(n);
      }
    }
    throw new YcError('RANGE_FULL', `address range for ${kind} nodes (${range.start}–${range.end}) is full`, { retryable: false, detail: { kind } });
  }
}
