import type { Logger } from '../lib/log.js';
import type { Binding, DhcpBackend, OfferRequest } from '../dhcp/backend.js';
import type { StateClient } from '../state/client.js';
import { keys } from '../state/keys.js';
import type { NodeRecord } from '../state/schema.js';
import type { ClusterCache } from './cluster-cache.js';
import { BatchAllocator, type AllocatorStats } from './batch-allocator.js';
import { LeaseWriter, type LeaseWriterStats } from './lease-writer.js';

const binding = (n: NodeRecord, leaseSeconds: number): Binding => ({ mac: n.mac, ip: n.ip, hostname: n.hostname, nodeType: n.type, leaseSeconds });

/**
 * DHCP over cluster state: a MAC's address is its node's address, allocated (by the inventory's
 * transaction) the first time the MAC is seen. Leases are written to etcd before the ACK.
 */
export class EtcdDhcpBackend implements DhcpBackend {
  private readonly writer: LeaseWriter;
  private readonly allocator: BatchAllocator;
  private readonly inflight = new Map<string, Promise<NodeRecord>>();

  constructor(private readonly state: StateClient, private readonly cache: ClusterCache, private readonly logger: Logger) {
    this.writer = new LeaseWriter(state);
    this.allocator = new BatchAllocator(state, cache, logger);
  }

  /** Lease group commit and allocation counters (for the role's health detail and the benchmark). */
  stats(): { leases: LeaseWriterStats; allocations: AllocatorStats } {
    return { leases: this.writer.stats(), allocations: this.allocator.stats() };
  }

  private leaseSeconds(): number {
    return this.cache.config().dhcpLeaseSeconds;
  }

  async offer(req: OfferRequest): Promise<Binding> {
    const known = this.cache.nodeByMac(req.mac);
    if (known) return binding(known, this.leaseSeconds());
    // Clients retransmit DISCOVERs; one allocation per MAC however many are in flight.
    let p = this.inflight.get(req.mac);
    if (!p) {
      p = this.allocator.allocate(req.mac, req.reportedType).finally(() => this.inflight.delete(req.mac));
      this.inflight.set(req.mac, p);
    }
    return binding(await p, this.leaseSeconds());
  }

  async commit(mac: string, ip: string, leaseSeconds: number): Promise<Binding | null> {
    const node = this.cache.nodeByMac(mac) ?? (await this.state.getValue(keys.nodeByMac(mac)));
    if (!node || node.ip !== ip) return null;
    const seconds = Math.min(leaseSeconds, this.leaseSeconds());
    await this.writer.write({ mac, ip, hostname: node.hostname, expiresAt: new Date(Date.now() + seconds * 1000).toISOString() });
    return binding(node, seconds);
  }

  async release(mac: string, ip: string): Promise<void> {
    const lease = await this.state.getValue(keys.dhcpLease(mac));
    if (lease && lease.ip === ip) await this.state.delete(keys.dhcpLease(mac));
  }

  async decline(mac: string, ip: string): Promise<void> {
    // The address answered ARP for someone else: record it for the operator (ycluster dhcp declined).
    await this.state.put(keys.dhcpDeclined(ip), { ip, mac, at: new Date().toISOString() });
    this.logger.warn('client declined its address: another host uses it', { mac, ip });
  }

  lookup(mac: string): Promise<Binding | null> {
    const n = this.cache.nodeByMac(mac);
    return Promise.resolve(n ? binding(n, this.leaseSeconds()) : null);
  }
}
