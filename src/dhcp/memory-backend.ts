/** An in-memory DhcpBackend for tests and the lab runner: fixed node addresses plus a small dynamic range. */
import { YcError } from '../lib/errors.js';
import { formatIpv4, normalizeMac, parseIpv4 } from '../lib/net.js';
import type { Binding, DhcpBackend, OfferRequest } from './backend.js';

export interface Reservation {
  mac: string;
  ip: string;
  hostname: string;
  nodeType: string;
}

export interface MemoryBackendOptions {
  rangeStart: string;
  rangeEnd: string;
  reservations?: readonly Reservation[];
  /** How long an offered address is held for the client that was offered it. */
  offerHoldSeconds?: number;
  /** How long a declined address stays out of allocation. */
  declineHoldSeconds?: number;
  /** Lease given with offers (commit uses what it is asked for). */
  leaseSeconds?: number;
  now?: () => number;
}

interface Lease {
  ip: string;
  expiresAt: number;
  bound: boolean;
}

export class MemoryDhcpBackend implements DhcpBackend {
  private readonly leases = new Map<string, Lease>();
  /** Address → MAC of the latest lease or offer naming it: who holds an address, without a scan of all leases. */
  private readonly byIp = new Map<string, string>();
  /**
   * Where the next free-address search starts (it wraps round the range): a burst of new clients is linear,
   * not quadratic. Back to the start when an address is released, so the lowest free one goes first again.
   */
  private cursor: number;
  private readonly declined = new Map<string, number>();
  private readonly reserved = new Map<string, Reservation>();
  private readonly reservedIps = new Set<string>();
  private readonly start: number;
  private readonly end: number;
  private readonly now: () => number;

  constructor(private readonly opts: MemoryBackendOptions) {
    this.start = parseIpv4(opts.rangeStart);
    this.end = parseIpv4(opts.rangeEnd);
    this.cursor = this.start;
    this.now = opts.now ?? Date.now;
    for (const r of opts.reservations ?? []) {
      const mac = normalizeMac(r.mac);
      this.reserved.set(mac, { ...r, mac });
      this.reservedIps.add(r.ip);
    }
  }

  /** Dynamic clients are named after their MAC so the name is stable across leases. */
  static dynamicHostname(mac: string): string {
    return `dyn-${mac.replace(/:/g, '')}`;
  }

  private binding(mac: string, ip: string, leaseSeconds: number): Binding {
    const r = this.reserved.get(mac);
    if (r) return { mac, ip: r.ip, hostname: r.hostname, nodeType: r.nodeType, leaseSeconds };
    return { mac, ip, hostname: MemoryDhcpBackend.dynamicHostname(mac), nodeType: 'unknown', leaseSeconds };
  }

  private holder(ip: string): string | undefined {
    const mac = this.byIp.get(ip);
    const l = mac === undefined ? undefined : this.leases.get(mac);
    return l !== undefined && l.ip === ip && l.expiresAt > this.now() ? mac : undefined;
  }

  private setLease(mac: string, lease: Lease): void {
    const prev = this.leases.get(mac);
    if (prev && prev.ip !== lease.ip && this.byIp.get(prev.ip) === mac) {
      this.byIp.delete(prev.ip);
      this.cursor = this.start;
    }
    this.leases.set(mac, lease);
    this.byIp.set(lease.ip, mac);
  }

  private deleteLease(mac: string): void {
    const prev = this.leases.get(mac);
    if (prev && this.byIp.get(prev.ip) === mac) this.byIp.delete(prev.ip);
    this.leases.delete(mac);
    this.cursor = this.start;
  }

  /** The next usable address from the cursor on, once round the range. */
  private freeAddress(mac: string): string | undefined {
    const size = this.end - this.start + 1;
    for (let k = 0; k < size; k++) {
      const n = this.start + ((this.cursor - this.start + k) % size);
      const ip = formatIpv4(n);
      if (this.usable(ip, mac)) {
        this.cursor = n === this.end ? this.start : n + 1;
        return ip;
      }
    }
    return undefined;
  }

  private usable(ip: string, mac: string): boolean {
    const n = parseIpv4(ip);
    if (n < this.start || n > this.end || this.reservedIps.has(ip)) return false;
    if ((this.declined.get(ip) ?? 0) > this.now()) return false;
    const h = this.holder(ip);
    return h === undefined || h === mac;
  }

  offer(req: OfferRequest): Promise<Binding> {
    const mac = normalizeMac(req.mac);
    const lease = this.opts.leaseSeconds ?? 3600;
    if (this.reserved.has(mac)) return Promise.resolve(this.binding(mac, '', lease));
    const prev = this.leases.get(mac);
    let ip: string | undefined;
    if (prev && this.usable(prev.ip, mac)) ip = prev.ip;
    else if (req.requestedIp !== undefined && this.usable(req.requestedIp, mac)) ip = req.requestedIp;
    ip ??= this.freeAddress(mac);
    if (ip === undefined) return Promise.reject(new YcError('RANGE_FULL', `no free address in ${this.opts.rangeStart}-${this.opts.rangeEnd}`));
    const holdUntil = this.now() + (this.opts.offerHoldSeconds ?? 60) * 1000;
    const bound = prev?.bound === true && prev.ip === ip;
    this.setLease(mac, { ip, bound, expiresAt: bound ? Math.max(prev.expiresAt, holdUntil) : holdUntil });
    return Promise.resolve(this.binding(mac, ip, lease));
  }

  commit(macIn: string, ip: string, leaseSeconds: number): Promise<Binding | null> {
    const mac = normalizeMac(macIn);
    const r = this.reserved.get(mac);
    if (r) return Promise.resolve(r.ip === ip ? this.binding(mac, ip, leaseSeconds) : null);
    if (!this.usable(ip, mac)) return Promise.resolve(null);
    this.setLease(mac, { ip, bound: true, expiresAt: this.now() + leaseSeconds * 1000 });
    return Promise.resolve(this.binding(mac, ip, leaseSeconds));
  }

  release(macIn: string, ip: string): Promise<void> {
    const mac = normalizeMac(macIn);
    if (this.leases.get(mac)?.ip === ip) this.deleteLease(mac);
    return Promise.resolve();
  }

  decline(macIn: string, ip: string): Promise<void> {
    const mac = normalizeMac(macIn);
    if (this.leases.get(mac)?.ip === ip) this.deleteLease(mac);
    if (!this.reservedIps.has(ip)) this.declined.set(ip, this.now() + (this.opts.declineHoldSeconds ?? 600) * 1000);
    return Promise.resolve();
  }

  lookup(macIn: string): Promise<Binding | null> {
    const mac = normalizeMac(macIn);
    const r = this.reserved.get(mac);
    if (r) return Promise.resolve(this.binding(mac, r.ip, this.opts.leaseSeconds ?? 3600));
    const l = this.leases.get(mac);
    if (!l || !l.bound || l.expiresAt <= this.now()) return Promise.resolve(null);
    return Promise.resolve(this.binding(mac, l.ip, Math.max(0, Math.round((l.expiresAt - this.now()) / 1000))));
  }

  /** Bound, unexpired leases (for tests and the runner's status line). */
  activeLeases(): Array<{ mac: string; ip: string }> {
    const t = this.now();
    return [...this.leases].filter(([, l]) => l.bound && l.expiresAt > t).map(([mac, l]) => ({ mac, ip: l.ip }));
  }
}
