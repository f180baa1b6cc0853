/** The record view the resolver answers from, and Zone: an atomically replaceable in-memory one. */
import { badInput } from '../lib/errors.js';
import { formatIpv4, isIpv4, parseCidr, prefixMask } from '../lib/net.js';
import { nameToLabels, normalizeName } from './names.js';
import { RClass, RType, type DnsRecord, type SoaData, type SrvData } from './types.js';

export type ZoneRecord =
  | { name: string; type: 'A'; ttl: number; data: string }
  | { name: string; type: 'PTR' | 'CNAME' | 'NS'; ttl: number; data: string }
  | { name: string; type: 'SRV'; ttl: number; data: SrvData }
  | { name: string; type: 'SOA'; ttl: number; data: SoaData }
  | { name: string; type: 'TXT'; ttl: number; data: string | string[] };

export interface ZoneOptions {
  /** Networks whose in-addr.arpa zones we are authoritative for, e.g. ['10.0.0.0/24']. */
  reverseCidrs?: string[];
  /** Serial of the SOA synthesised for an apex that has none (default: seconds since the epoch at build). */
  serial?: number;
}

/** What the resolver needs; names are lower-case without the trailing dot. */
/** Everything needed to build an equal Zone elsewhere (another process): plain data, JSON-safe. */
export interface ZoneSpec {
  domain: string;
  records: readonly ZoneRecord[];
  /** With the serial the synthesised SOAs got, so a copy answers with the same bytes. */
  options: ZoneOptions & { serial: number };
}

export interface ZoneView {
  readonly domain: string;
  /** The apex of our zone containing `name`, or undefined if the name is not ours (forward it). */
  apexOf(name: string): string | undefined;
  lookup(name: string, type: number): DnsRecord[] | 'nxdomain' | 'nodata';
  soa(apex: string): DnsRecord;
  /** Every existing name (including empty non-terminals) and the types it holds. */
  entries(): IterableIterator<[string, ReadonlyMap<number, DnsRecord[]>]>;
}

const typeCode = { A: RType.A, PTR: RType.PTR, CNAME: RType.CNAME, NS: RType.NS, SOA: RType.SOA, TXT: RType.TXT, SRV: RType.SRV } as const;

/** In-addr.arpa zone names for a CIDR, rounding the prefix up to whole octets (10.0.0.0/22 → four /24 zones). */
export function reverseZones(cidr: string): string[] {
  const { network, prefix } = parseCidr(cidr);
  const octets = Math.max(1, Math.ceil(prefix / 8));
  const count = 2 ** (octets * 8 - prefix);
  if (count > 256) throw badInput(`reverse zone for ${cidr} would need ${count} zones: use a prefix of at least ${octets * 8 - 8}`);
  const step = 2 ** (32 - octets * 8);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const ip = formatIpv4(((network & prefixMask(prefix)) >>> 0) + i * step).split('.').slice(0, octets);
    out.push(ip.reverse().join('.') + '.in-addr.arpa');
  }
  return out;
}

/** A and PTR records for hosts: the usual bulk of a cluster zone. */
export function hostRecords(hosts: readonly { name: string; ip: string }[], ttl: number): ZoneRecord[] {
  return hosts.flatMap((h): ZoneRecord[] => [
    { name: h.name, type: 'A', ttl, data: h.ip },
    { name: h.ip.split('.').reverse().join('.') + '.in-addr.arpa', type: 'PTR', ttl, data: h.name },
  ]);
}

class ZoneSnapshot implements ZoneView {
  constructor(
    readonly domain: string,
    private readonly apexes: readonly string[],
    private readonly nodes: ReadonlyMap<string, ReadonlyMap<number, DnsRecord[]>>,
  ) {}

  apexOf(name: string): string | undefined {
    for (const apex of this.apexes) {
      if (name === apex || (name.endsWith(apex) && name.charCodeAt(name.length - apex.length - 1) === 0x2e)) return apex;
    }
    return undefined;
  }

  lookup(name: string, type: number): DnsRecord[] | 'nxdomain' | 'nodata' {
    const node = this.nodes.get(name);
    if (!node) return 'nxdomain';
    if (type === RType.ANY) {
      const all = [...node.values()].flat();
      return all.length ? all : 'nodata';
    }
    return node.get(type) ?? 'nodata';
  }

  soa(apex: string): DnsRecord {
    return this.nodes.get(apex)!.get(RType.SOA)![0]!;
  }

  entries(): IterableIterator<[string, ReadonlyMap<number, DnsRecord[]>]> {
    return this.nodes.entries();
  }
}

/**
 * The cluster's records. `replace` builds a complete new snapshot and swaps one reference, so a
 * query sees either the old zone or the new one, never a mix. Invalid input throws and keeps the old zone.
 */
export class Zone {
  private snapshot: ZoneSnapshot;
  private records: readonly ZoneRecord[];
  private serial = 0;
  private readonly apexes: string[];
  private readonly listeners = new Set<(view: ZoneView) => void>();

  constructor(domain: string, records: readonly ZoneRecord[], private readonly opts: ZoneOptions = {}) {
    const d = normalizeName(domain);
    nameToLabels(d);
    const reverse = (opts.reverseCidrs ?? []).flatMap(reverseZones);
    // Longest first, so a reverse /24 inside a configured /16 matches its own apex.
    this.apexes = [...new Set([d, ...reverse])].sort((a, b) => b.length - a.length);
    this.snapshot = this.build(d, records);
    this.records = records;
  }

  get domain(): string {
    return this.snapshot.domain;
  }

  view(): ZoneView {
    return this.snapshot;
  }

  /** The current records and options; `new Zone(s.domain, s.records, s.options)` answers as this one does. */
  spec(): ZoneSpec {
    return { domain: this.snapshot.domain, records: this.records, options: { ...this.opts, serial: this.serial } };
  }

  replace(records: readonly ZoneRecord[]): void {
    this.snapshot = this.build(this.snapshot.domain, records);
    this.records = records;
    for (const fn of this.listeners) fn(this.snapshot);
  }

  /** Called after each replace, e.g. to precompute answers; returns an unsubscribe function. */
  onReplace(fn: (view: ZoneView) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private build(domain: string, records: readonly ZoneRecord[]): ZoneSnapshot {
    const probe = new ZoneSnapshot(domain, this.apexes, new Map());
    const nodes = new Map<string, Map<number, DnsRecord[]>>();
    const node = (name: string): Map<number, DnsRecord[]> => {
      let n = nodes.get(name);
      if (!n) nodes.set(name, (n = new Map<number, DnsRecord[]>()));
      return n;
    };
    for (const r of records) {
      const name = normalizeName(r.name);
      const apex = probe.apexOf(name);
      if (apex === undefined) throw badInput(`record ${r.name} ${r.type} is outside the zones ${this.apexes.join(', ')}`);
      const rec = toDnsRecord(name, r);
      const list = node(name);
      const existing = list.get(rec.type);
      if (existing) existing.push(rec);
      else list.set(rec.type, [rec]);
      // Ancestors up to the apex exist as empty non-terminals: NODATA for them, not NXDOMAIN.
      for (let n = name; n !== apex; n = n.slice(n.indexOf('.') + 1)) node(n);
    }
    // One serial for every synthesised SOA of this build (they used to differ across a second boundary).
    const serial = (this.opts.serial ?? Math.floor(Date.now() / 1000)) >>> 0;
    for (const apex of this.apexes) {
      const n = node(apex);
      if (!n.has(RType.SOA)) n.set(RType.SOA, [defaultSoa(apex, domain, n, serial)]);
      else if (n.get(RType.SOA)!.length > 1) throw badInput(`more than one SOA record at ${apex}`);
    }
    for (const [name, types] of nodes) {
      if (types.has(RType.CNAME) && (types.size > 1 || types.get(RType.CNAME)!.length > 1)) {
        throw badInput(`${name} has a CNAME and other data`);
      }
    }
    this.serial = serial;
    return new ZoneSnapshot(domain, this.apexes, nodes);
  }
}

function defaultSoa(apex: string, domain: string, node: Map<number, DnsRecord[]>, serial: number): DnsRecord {
  const ns = node.get(RType.NS)?.[0]?.data;
  const data: SoaData = {
    mname: typeof ns === 'string' ? ns : `ns.${domain}`,
    rname: `hostmaster.${domain}`,
    serial,
    refresh: 3600,
    retry: 600,
    expire: 86400,
    minimum: 30,
  };
  return { name: apex, type: RType.SOA, class: RClass.IN, ttl: 30, data };
}

function toDnsRecord(name: string, r: ZoneRecord): DnsRecord {
  if (!Number.isInteger(r.ttl) || r.ttl < 0 || r.ttl > 0x7fffffff) throw badInput(`bad TTL ${r.ttl} for ${r.name}`);
  const base = { name, type: typeCode[r.type], class: RClass.IN, ttl: r.ttl };
  const checkName = (n: string): string => {
    try {
      nameToLabels(n);
    } catch (err) {
      throw badInput(`bad name in ${r.type} record for ${r.name}: ${(err as Error).message}`);
    }
    return normalizeName(n);
  };
  checkName(r.name);
  switch (r.type) {
    case 'A':
      if (!isIpv4(r.data)) throw badInput(`bad IPv4 address "${r.data}" for ${r.name}`);
      return { ...base, data: r.data.trim() };
    case 'PTR':
    case 'CNAME':
    case 'NS':
      return { ...base, data: checkName(r.data) };
    case 'SRV': {
      const { priority, weight, port, target } = r.data;
      for (const v of [priority, weight, port]) if (!Number.isInteger(v) || v < 0 || v > 65535) throw badInput(`bad SRV field ${v} for ${r.name}`);
      return { ...base, data: { priority, weight, port, target: checkName(target) } };
    }
    case 'SOA': {
      const d = r.data;
      for (const v of [d.serial, d.refresh, d.retry, d.expire, d.minimum]) if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw badInput(`bad SOA field ${v} for ${r.name}`);
      return { ...base, data: { ...d, mname: checkName(d.mname), rname: checkName(d.rname) } };
    }
    case 'TXT': {
      const parts = typeof r.data === 'string' ? splitTxt(r.data) : r.data;
      if (parts.length === 0 || parts.some((p) => p.length > 255 || [...p].some((c) => c.charCodeAt(0) > 255))) throw badInput(`bad TXT data for ${r.name}`);
      return { ...base, data: parts };
    }
  }
}

function splitTxt(s: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i += 255) out.push(s.slice(i, i + 255));
  return out.length ? out : [''];
}
