import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { startTftpServer, type TftpServer } from '../boot/tftp-server.js';
import { Zone } from '../dns/records.js';
import { startDnsServer, type DnsServer } from '../dns/server.js';
import type { Upstream } from '../dns/forwarder.js';
import { DnsWorkerPool } from '../dns/workers.js';
import { errorMessage } from '../lib/errors.js';
import type { Check } from '../state/schema.js';
import type { AlwaysRole, RoleContext } from '../agent/role.js';
import { EtcdBootLookup } from './boot-lookup.js';
import { startBootHttp } from './boot-http.js';
import type { ClusterCache } from './cluster-cache.js';
import { clusterZoneRecords } from './dns-zone.js';
import { inProcess } from './in-process.js';
import { acquireCache, releaseCache } from './shared-cache.js';
import { prepareTftpRoot, type TftpRoot } from './tftp-root.js';

export const CORE_PORTS = { dns: 53, tftp: 69, bootHttp: 8081 };
/** Where the iPXE package puts its binaries; TFTP serves copies of them (see tftp-root.ts). */
export const IPXE_DIR = '/usr/lib/ipxe';

/**
 * UDP worker processes serving the node-IP and gateway-VIP DNS sockets (one pool for both: each
 * worker is a Node process of about 45 MB). bench/dns.ts on 2 cores: one process ~0.6–0.9× dnsmasq's
 * queries/s, two workers ~1.1–1.3×. Two per node up to 4 cores, more on bigger machines; none on one
 * core, where a worker only adds memory. Not yet a cluster setting (that needs a schema field).
 */
export function defaultDnsUdpWorkers(cores = availableParallelism()): number {
  return cores < 2 ? 0 : Math.min(cores, 4);
}

/** Per network namespace: lets this node bind the gateway VIP before keepalived gives it the address. */
function allowNonLocalBind(): void {
  writeFileSync('/proc/sys/net/ipv4/ip_nonlocal_bind', '1');
}

export function parseUpstream(s: string): Upstream {
  const [host, port] = s.split(':');
  return { host: host!, port: port ? Number(port) : 53 };
}

/** Every core node serves DNS (authoritative for the cluster, forwarding the rest), TFTP and HTTP boot. */
export class CoreServicesRole implements AlwaysRole {
  private cache: ClusterCache | undefined;
  private dnsServers: DnsServer[] = [];
  private dnsWorkers: DnsWorkerPool | undefined;
  private tftp: TftpServer | undefined;
  private tftpRoot: TftpRoot | undefined;
  private http: Server | undefined;
  private zone: Zone | undefined;
  private zoneError: string | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly since = new Date().toISOString();
  /** When the zone last changed, for the registration-to-resolvable measurement. */
  zoneUpdatedAt = 0;

  constructor(private readonly ctx: RoleContext) {}

  async start(): Promise<void> {
    const cache = (this.cache = await acquireCache(this.ctx.state, this.ctx.logger));
    const config = cache.config();
    const zone = (this.zone = new Zone(config.domain, clusterZoneRecords(cache.nodes(), config), { reverseCidrs: [config.network] }));
    this.unsubscribe = cache.onChange(() => {
      try {
        zone.replace(clusterZoneRecords(cache.nodes(), cache.config()));
        this.zoneError = undefined;
        this.zoneUpdatedAt = Date.now();
      } catch (err) {
        this.zoneError = errorMessage(err);
      }
    });
    const log = this.ctx.logger;
    // One socket per address, so an answer leaves from the address it was asked on: a client asking the
    // gateway VIP rejects a reply from the node's own address. The VIP socket needs non-local binding,
    // since the VIP moves between core nodes (keepalived) while the socket stays.
    allowNonLocalBind();
    const dnsLog = log.child({ service: 'dns' });
    const upstreams = config.dnsUpstreams.map(parseUpstream);
    // Clients ask the VIP first and the core nodes next (DHCP's DNS servers): those sockets get the
    // workers. Loopback is the node's own lookups: this process answers them.
    const count = defaultDnsUdpWorkers();
    try {
      if (count > 0) this.dnsWorkers = await DnsWorkerPool.start({ count, zone, upstreams, logger: dnsLog });
    } catch (err) {
      // Slower is better than no DNS: this process answers everything itself.
      dnsLog.error('DNS UDP workers did not start: serving from the agent process only', { count, error: errorMessage(err) });
    }
    for (const bindAddress of ['127.0.0.1', this.ctx.node.ip, config.gatewayVip]) {
      const udpWorkers = bindAddress === '127.0.0.1' ? 0 : this.dnsWorkers;
      this.dnsServers.push(await startDnsServer({ zone, upstreams, port: CORE_PORTS.dns, bindAddress, logger: dnsLog, udpWorkers }));
    }
    const root = (this.tftpRoot = prepareTftpRoot(IPXE_DIR, join(this.ctx.config.dataDir, 'tftp')));
    if (root.missing.length) log.warn('boot files missing: machines that need them cannot network-boot', { dir: IPXE_DIR, missing: root.missing });
    this.tftp = await startTftpServer({ root: root.dir, port: CORE_PORTS.tftp, bindAddress: this.ctx.node.ip, logger: log.child({ service: 'tftp' }) });
    const lookup = new EtcdBootLookup(this.ctx.state, cache, `http://${this.ctx.node.ip}:${CORE_PORTS.bootHttp}`);
    this.http = await startBootHttp(lookup, CORE_PORTS.bootHttp, '0.0.0.0', log.child({ service: 'boot-http' }));
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    await Promise.all([...this.dnsServers.map((d) => d.close()), this.tftp?.close(), new Promise<void>((r) => (this.http ? this.http.close(() => r()) : r()))]);
    this.http?.closeAllConnections();
    await this.dnsWorkers?.close();
    this.dnsWorkers = undefined;
    this.dnsServers = [];
    this.tftp = this.http = undefined;
    if (this.cache) await releaseCache(this.ctx.state);
    this.cache = undefined;
  }

  checks(): Check[] {
    return [
      { name: 'dns', ok: this.dnsServers.length > 0 && !this.zoneError, detail: this.zoneError ? `zone not updated: ${this.zoneError}` : this.dnsServers.length ? `serving ${this.cache?.nodes().length ?? 0} nodes on :${CORE_PORTS.dns}` : 'not running' },
      { name: 'tftp', ok: !!this.tftp, detail: this.tftp ? `serving ${this.tftpRoot?.served.join(', ')} on :${CORE_PORTS.tftp}${this.tftpRoot?.missing.length ? ` (missing: ${this.tftpRoot.missing.join(', ')})` : ''}` : 'not running' },
      { name: 'boot-http', ok: !!this.http, detail: this.http ? `serving on :${CORE_PORTS.bootHttp}` : 'not running' },
    ];
  }

  services() {
    return [inProcess('dns', this.dnsServers.length > 0, this.since, this.zoneError), inProcess('tftp', !!this.tftp, this.since), inProcess('boot-http', !!this.http, this.since)];
  }

  stats(): Record<string, Record<string, number>> {
    return { dns: sumDnsStats(this.dnsServers.map((d) => d.stats())), tftp: this.tftp?.stats() ?? {} };
  }
}

/** Counters added over the node's DNS sockets; figures that describe the whole server (zone size, workers) taken once. */
function sumDnsStats(all: Record<string, number>[]): Record<string, number> {
  const once = new Set(['precomputed', 'udp_workers', 'udp_worker_restarts']);
  const out: Record<string, number> = {};
  for (const s of all) for (const [k, v] of Object.entries(s)) out[k] = once.has(k) ? Math.max(out[k] ?? 0, v) : (out[k] ?? 0) + v;
  return out;
}

export const createCoreServicesRole = (ctx: RoleContext): CoreServicesRole => new CoreServicesRole(ctx);
