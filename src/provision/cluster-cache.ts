import type { Watcher } from 'etcd3';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { parseIpv4 } from '../lib/net.js';
import type { StateClient } from '../state/client.js';
import { decodeValue } from '../state/codec.js';
import { keys, prefixes } from '../state/keys.js';
import { defaultConfig, type ClusterConfig, type MacRule, type NodeRecord, type NodeType } from '../state/schema.js';

const sameNode = (a: NodeRecord | undefined, b: NodeRecord): boolean =>
  a !== undefined && a.createdAt === b.createdAt && a.ip === b.ip && a.hostname === b.hostname && a.type === b.type && a.typeSource === b.typeSource;

/**
 * An in-memory view of nodes and cluster config, loaded once and kept current by etcd watches:
 * DHCP, DNS and HTTP boot answer from memory, and a newly registered node is served within milliseconds.
 * Only the node records and the config key are watched: a watch on the whole tree brought every DHCP
 * lease, heartbeat and status write back to this process (and made etcd send it), one event each.
 */
export class ClusterCache {
  private byMac = new Map<string, NodeRecord>();
  /** Host names and addresses (as numbers) in use, for the allocator's first-free search. */
  private readonly names = new Set<string>();
  private readonly ips = new Set<number>();
  private removed = 0;
  private cfg: ClusterConfig = defaultConfig;
  /** Registrations (MAC → type) and MAC-prefix rules, which decide a new machine's type. */
  private readonly registrations = new Map<string, NodeType>();
  private readonly rules = new Map<string, MacRule>();
  private watchers: Watcher[] = [];
  private readonly listeners = new Set<() => void>();
  private revision = 0;

  constructor(private readonly state: StateClient, private readonly logger: Logger) {}

  async start(): Promise<void> {
    const [nodes, config, regs, rules] = await Promise.all([
      this.state.list(prefixes.nodes), this.state.get(keys.config), this.state.list(prefixes.registrations), this.state.list(prefixes.macRules),
    ]);
    for (const e of nodes.entries) this.set(e.value);
    for (const e of regs.entries) this.registrations.set(e.key.slice(prefixes.registrations.prefix.length), e.value.type);
    for (const e of rules.entries) this.rules.set(e.key, e.value);
    this.cfg = config?.value ?? defaultConfig;
    this.revision = nodes.revision;
    // Watch from the revision of the node listing, so no change after it is lost (a change to the other
    // keys between the reads is replayed, which ends at the same value).
    const from = String(this.revision + 1);
    const onPut = (kv: { key: Buffer; value: Buffer }): void => this.apply(kv.key.toString(), kv.value.toString());
    const onDelete = (kv: { key: Buffer }): void => this.apply(kv.key.toString(), undefined);
    try {
      const w = (): ReturnType<StateClient['etcd']['watch']> => this.state.etcd.watch();
      for (const b of [w().prefix(prefixes.nodes.prefix), w().key(keys.config.key), w().prefix(prefixes.registrations.prefix), w().prefix(prefixes.macRules.prefix)]) {
        const w = await b.startRevision(from).create();
        this.watchers.push(w);
        w.on('put', onPut);
        w.on('delete', onDelete);
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.notify();
  }

  private set(node: NodeRecord): void {
    const old = this.byMac.get(node.mac);
    if (old) this.unindex(old);
    this.byMac.set(node.mac, node);
    this.names.add(node.hostname);
    this.ips.add(parseIpv4(node.ip));
  }

  private unindex(node: NodeRecord): void {
    this.names.delete(node.hostname);
    this.ips.delete(parseIpv4(node.ip));
    this.removed++;
  }

  private apply(key: string, value: string | undefined): void {
    try {
      if (key.startsWith(prefixes.nodes.prefix)) {
        const mac = key.slice(prefixes.nodes.prefix.length);
        if (value === undefined) {
          const old = this.byMac.get(mac);
          if (old) this.unindex(old);
          this.byMac.delete(mac);
        } else {
          const node = decodeValue(prefixes.nodes, key, value);
          // Our own allocation coming back, already remembered: nothing changed.
          if (sameNode(this.byMac.get(node.mac), node)) return;
          this.set(node);
        }
      } else if (key === keys.config.key) {
        this.cfg = value === undefined ? defaultConfig : decodeValue(keys.config, key, value);
      } else if (key.startsWith(prefixes.registrations.prefix)) {
        const mac = key.slice(prefixes.registrations.prefix.length);
        if (value === undefined) this.registrations.delete(mac);
        else this.registrations.set(mac, decodeValue(prefixes.registrations, key, value).type);
        return; // nothing served changes until a machine is allocated
      } else if (key.startsWith(prefixes.macRules.prefix)) {
        if (value === undefined) this.rules.delete(key);
        else this.rules.set(key, decodeValue(prefixes.macRules, key, value));
        return;
      } else return;
      this.notify();
    } catch (err) {
      this.logger.warn('ignoring a value that fails its schema', { key, error: errorMessage(err) });
    }
  }

  private notify(): void {
    for (const fn of this.listeners) fn();
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Adds a node the caller has just written, without waiting for the watch to bring it. */
  remember(node: NodeRecord): void {
    if (this.byMac.get(node.mac)?.createdAt === node.createdAt) return;
    this.set(node);
    this.notify();
  }

  nodeByMac(mac: string): NodeRecord | undefined {
    return this.byMac.get(mac);
  }

  nodes(): NodeRecord[] {
    return [...this.byMac.values()];
  }

  hostnameTaken(name: string): boolean {
    return this.names.has(name);
  }

  /** Whether a node holds this address (given as a number, see parseIpv4). */
  ipTaken(ip: number): boolean {
    return this.ips.has(ip);
  }

  /** Counts names and addresses freed so far: a first-free search may resume where it stopped only while this is unchanged. */
  removals(): number {
    return this.removed;
  }

  /** The type a registration gives this MAC, if any. */
  registeredType(mac: string): NodeType | undefined {
    return this.registrations.get(mac);
  }

  macRules(): MacRule[] {
    return [...this.rules.values()];
  }

  config(): ClusterConfig {
    return this.cfg;
  }

  async stop(): Promise<void> {
    const ws = this.watchers;
    this.watchers = [];
    await Promise.all(ws.map((w) => w.cancel().catch(() => undefined)));
  }
}
