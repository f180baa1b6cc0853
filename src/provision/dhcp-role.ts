import { createDhcpHandler } from '../dhcp/handler.js';
import { startDhcpServer, type DhcpServer } from '../dhcp/server.js';
import type { LedRole, RoleContext } from '../agent/role.js';
import type { Check } from '../state/schema.js';
import { CORE_PORTS } from './core-services-role.js';
import { EtcdDhcpBackend } from './dhcp-backend.js';
import { inProcess } from './in-process.js';
import { acquireCache, releaseCache } from './shared-cache.js';

/**
 * DHCP runs on the leader of the `dhcp` election only: one server answers, so two servers never
 * offer different things, and leases are committed to etcd before each ACK (see docs/provisioning.md).
 */
export class DhcpRole implements LedRole {
  private server: DhcpServer | undefined;
  private backend: EtcdDhcpBackend | undefined;
  private since = new Date().toISOString();

  constructor(private readonly ctx: RoleContext) {}

  async lead(): Promise<void> {
    const cache = await acquireCache(this.ctx.state, this.ctx.logger);
    const c = cache.config();
    const cores = cache.nodes().filter((n) => n.type === 'core').map((n) => n.ip).sort();
    const backend = new EtcdDhcpBackend(this.ctx.state, cache, this.ctx.logger.child({ service: 'dhcp' }));
    const handler = createDhcpHandler(
      {
        serverIp: this.ctx.node.ip,
        subnet: c.network,
        router: c.gatewayVip,
        dnsServers: [c.gatewayVip, ...cores],
        ntpServers: [c.gatewayVip],
        domainName: c.domain,
        leaseSeconds: c.dhcpLeaseSeconds,
        boot: { tftpServer: this.ctx.node.ip, bootHost: this.ctx.node.ip, bootPort: CORE_PORTS.bootHttp },
      },
      backend,
    );
    try {
      this.server = await startDhcpServer({ handler, port: 67, interfaceName: this.ctx.config.interface, logger: this.ctx.logger.child({ service: 'dhcp' }) });
    } catch (err) {
      await releaseCache(this.ctx.state);
      throw err;
    }
    this.backend = backend;
    this.since = new Date().toISOString();
  }

  async stepDown(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    this.backend = undefined;
    if (!s) return;
    await s.close();
    await releaseCache(this.ctx.state);
  }

  checks(): Check[] {
    return this.server ? [{ name: 'dhcp', ok: true, detail: `serving on :67 (${JSON.stringify({ ...this.server.stats(), ...this.backend?.stats() })})` }] : [];
  }

  services() {
    return this.server ? [inProcess('dhcp', true, this.since)] : [];
  }
}

export const createDhcpRole = (ctx: RoleContext): DhcpRole => new DhcpRole(ctx);
