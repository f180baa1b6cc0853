import type { Watcher } from 'etcd3';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { StateClient } from '../state/client.js';
import { decodeValue } from '../state/codec.js';
import { keys, prefixes, ROOT } from '../state/keys.js';
import { defaultConfig, type ClusterConfig, type NodeRecord } from '../state/schema.js';

/**
 * An in-memory view of nodes and cluster config, loaded once and kept current by one etcd watch:
 * DHCP, DNS and HTTP boot answer from memory, and a newly registered node is served within milliseconds.
 */
export class ClusterCache {
  private byMac = new Map<string, NodeRecord>();
  private cfg: ClusterConfig = defaultConfig;
  private watcher: Watcher | undefined;
  private readonly listeners = new Set<() => void>();
  private revision = 0;

  constructor(private readonly state: StateClient, private readonly logger: Logger) {}

  async start(): Promise<void> {
    const [nodes, config] = await Promise.all([this.state.list(prefixes.nodes), this.state.get(keys.config)]);
    this.byMac = new Map(nodes.entries.map((e) => [e.value.mac, e.value]));
    this.cfg = config?.value ?? defaultConfig;
    this.revision = nodes.revision;
    // Watch from the revision we read, so no change between the read and the watch is lost.
    this.watcher = await this.state.etcd.watch().prefix(ROOT).startRevision(String(this.revision + 1)).create();
    this.watcher.on('put', (kv) => this.apply(kv.key.toString(), kv.value.toString()));
    this.watcher.on('delete', (kv) => this.apply(kv.key.toString(), undefined));
    this.notify();
  }

  private apply(key: string, value: string | undefined): void {
    try {
      if (key.startsWith(prefixes.nodes.prefix)) {
        const mac = key.slice(prefixes.nodes.prefix.length);
        if (value === undefined) this.byMac.delete(mac);
        else this.byMac.set(mac, decodeValue(prefixes.nodes, key, value));
      } else if (key === keys.config.key) {
        this.cfg = value === undefined ? defaultConfig : decodeValue(keys.config, key, value);
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
    this.byMac.set(node.mac, node);
    this.notify();
  }

  nodeByMac(mac: string): NodeRecord | undefined {
    return this.byMac.get(mac);
  }

  nodes(): NodeRecord[] {
    return [...this.byMac.values()];
  }

  config(): ClusterConfig {
    return this.cfg;
  }

  async stop(): Promise<void> {
    await this.watcher?.cancel().catch(() => undefined);
  }
}
