import { YcError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { allocateNode, finalType, firstFreeIp, firstFreeName, parseNodeType } from '../inventory/allocate.js';
import { SERIES } from '../inventory/node-types.js';
import { decideType } from '../inventory/type-rules.js';
import type { StateClient } from '../state/client.js';
import { encodeValue } from '../state/codec.js';
import { keys, keySuffix, prefixes } from '../state/keys.js';
import type { NodeRecord, NodeType } from '../state/schema.js';
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
    const nodes = this.cache.nodes();
    const taken = new Set(nodes.map((n) => n.hostname));
    const used = new Set(nodes.map((n) => n.ip));
    const planned: { p: Pending; node: NodeRecord }[] = [];
    const seen = new Set<string>();
    for (const p of batch) {
      const known = this.cache.nodeByMac(p.mac);
      if (known) {
        p.resolve(known);
        continue;
      }
      if (seen.has(p.mac)) {
        planned.push({ p, node: planned.find((x) => x.node.mac === p.mac)!.node });
        continue;
      }
      try {
        const decided = decideType(p.mac, regByMac.get(p.mac), ruleList, p.reported);
        const hostname = firstFreeName(SERIES[decided.type], taken);
        const type = finalType(decided.type, hostname, config);
        const ip = firstFreeIp(config, type, used);
        taken.add(hostname);
        used.add(ip);
        seen.add(p.mac);
        planned.push({ p, node: { mac: p.mac, hostname, ip, type, typeSource: decided.source, createdAt: new Date().toISOString() } });
      } catch (err) {
        p.reject(err instanceof Error ? err : new YcError('INTERNAL', String(err)));
      }
    }
    const unique = [...new Map(planned.map((x) => [x.node.mac, x.node])).values()];
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
}
