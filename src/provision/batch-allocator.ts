import { YcError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { formatIpv4, parseIpv4 } from '../lib/net.js';
import { allocateNode, finalType, parseNodeType } from '../inventory/allocate.js';
import { RANGE_OF, SERIES } from '../inventory/node-types.js';
import { decideType } from '../inventory/type-rules.js';
import type { StateClient } from '../state/client.js';
import { encodeValue } from '../state/codec.js';
import { keys, keySuffix, prefixes } from '../state/keys.js';
import type { ClusterConfig, NodeRecord, NodeType } from '../state/schema.js';
import type { ClusterCache } from './cluster-cache.js';

/** etcd allows 128 operations per transaction; a node is three keys. */
const MAX_NODES_PER_TXN = 40;

interface Pending {
  mac: string;
  reported: NodeType | undefined;
  resolve: (n: NodeRecord) => void;
  reject: (e: Error) => void;
}

/**
 * Allocates new machines for DHCP in batches: one process (the DHCP leader) picks names and addresses
 * for every MAC waiting from its in-memory view, then writes them all in one transaction guarded by
 * create-revision compares.
 * Competing one-by-one allocations for "the first free name" collapsed under a burst of new machines
 * (every one but the winner retried); a batch costs two small reads and one write. When the transaction
 * loses a race (another allocator wrote meanwhile), each MAC falls back to the one-by-one allocator.
 */
export class BatchAllocator {
  private pending: Pending[] = [];
  private flushing = false;
  /**
   * Where each first-free search may resume: every name number / address below it was taken when it was set.
   * Valid only while the cache has freed nothing since (`removals`) and no batch failed; otherwise searches
   * start again at the beginning. Without it every allocation scanned all addresses in use (quadratic).
   */
  private resume = new Map<string, number>();
  private resumeRemovals = -1;

  constructor(private readonly state: StateClient, private readonly cache: ClusterCache, private readonly logger: Logger) {}

  allocate(mac: string, reportedType?: string): Promise<NodeRecord> {
    let reported: NodeType | undefined;
    try {
      reported = reportedType === undefined ? undefined : parseNodeType(reportedType);
    } catch {
      reported = undefined; // a bad vendor class from a client: decide by the rules instead
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ mac, reported, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0, MAX_NODES_PER_TXN);
        await this.allocateBatch(batch).catch(async (err: unknown) => {
          this.resume.clear(); // names and addresses planned for the failed batch are free again
          this.logger.warn('batch allocation lost a race; allocating one by one', { error: errorMessage(err), macs: batch.length });
          for (const p of batch) {
            await allocateNode(this.state, { mac: p.mac, ...(p.reported ? { reportedType: p.reported } : {}) })
              .then(({ node }) => {
                this.cache.remember(node);
                p.resolve(node);
              })
              .catch((e: unknown) => p.reject(e instanceof Error ? e : new Error(String(e))));
          }
        });
      }
    } finally {
      this.flushing = false;
    }
  }

  private async allocateBatch(batch: Pending[]): Promise<void> {
    // Names and addresses in use come from the cache (kept current by the watch, plus what this process wrote):
    // reading every index key per batch grew with the cluster. A write by another allocator that the cache has
    // not seen yet makes the transaction's compares fail, and the batch falls back to one by one.
    const [registrations, rules] = await Promise.all([this.state.list(prefixes.registrations), this.state.list(prefixes.macRules)]);
    const config = this.cache.config();
    const regByMac = new Map(registrations.entries.map((e) => [keySuffix(prefixes.registrations, e.key), e.value.type]));
    const ruleList = rules.entries.map((e) => e.value);
    if (this.resumeRemovals !== this.cache.removals()) {
      this.resume.clear();
      this.resumeRemovals = this.cache.removals();
    }
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
        const decided = decideType(p.mac, regByMac.get(p.mac), ruleList, p.reported);
        const hostname = this.firstFreeName(SERIES[decided.type]);
        const type = finalType(decided.type, hostname, config);
        const ip = this.firstFreeIp(config, type);
        const node: NodeRecord = { mac: p.mac, hostname, ip, type, typeSource: decided.source, createdAt: new Date().toISOString() };
        seen.set(p.mac, node);
        planned.push({ p, node });
      } catch (err) {
        this.resume.clear(); // a name may have been taken for a MAC that got no address
        p.reject(err instanceof Error ? err : new YcError('INTERNAL', String(err)));
      }
    }
    const unique = [...seen.values()];
    if (unique.length === 0) return;
    const nodeKeys = unique.flatMap((n) => [keys.nodeByMac(n.mac).key, keys.nodeByName(n.hostname).key, keys.nodeByIp(n.ip).key]);
    const ok = await this.state.txn({
      compare: nodeKeys.map((key) => ({ key, target: 'create' as const, equals: 0 })),
      puts: unique.flatMap((n) => [
        { key: keys.nodeByMac(n.mac).key, value: encodeValue(keys.nodeByMac(n.mac), n) },
        { key: keys.nodeByName(n.hostname).key, value: encodeValue(keys.nodeByName(n.hostname), { mac: n.mac }) },
        { key: keys.nodeByIp(n.ip).key, value: encodeValue(keys.nodeByIp(n.ip), { mac: n.mac }) },
      ]),
    });
    if (!ok) throw new YcError('CONFLICT', 'another allocator wrote meanwhile', { retryable: true });
    for (const n of unique) {
      this.cache.remember(n);
      this.logger.info('new machine allocated', { mac: n.mac, hostname: n.hostname, ip: n.ip, type: n.type });
    }
    for (const { p, node } of planned) p.resolve(node);
  }

  /** Lowest free number in a host name series (as firstFreeName), resuming after the last one handed out. */
  private firstFreeName(letter: string): string {
    const key = `name:${letter}`;
    for (let n = this.resume.get(key) ?? 1; n < 10_000; n++) {
      const name = `${letter}${n}`;
      if (!this.cache.hostnameTaken(name)) {
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
      if (n !== gateway && n !== storage && !this.cache.ipTaken(n)) {
        this.resume.set(key, n + 1);
        return formatIpv4(n);
      }
    }
    throw new YcError('RANGE_FULL', `address range for ${kind} nodes (${range.start}–${range.end}) is full`, { retryable: false, detail: { kind } });
  }
}
