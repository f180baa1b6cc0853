import { createHash, randomBytes } from 'node:crypto';
import { YcError } from '../lib/errors.js';
import { parseCidr } from '../lib/net.js';
import type { BootConfig, BootLookup, BootNode, InstallState } from '../boot/types.js';
import { allocateNode } from '../inventory/allocate.js';
import type { StateClient } from '../state/client.js';
import { keys } from '../state/keys.js';
import type { NodeRecord } from '../state/schema.js';
import type { ClusterCache } from './cluster-cache.js';
import { ADMIN_API_PORT } from './join.js';

const JOIN_TOKEN_TTL_MS = 2 * 60 * 60 * 1000;

const bootNode = (n: NodeRecord): BootNode => ({ mac: n.mac, hostname: n.hostname, ip: n.ip, type: n.type });

/** HTTP boot over cluster state: nodes from the cache, operator settings and install state from etcd. */
export class EtcdBootLookup implements BootLookup {
  constructor(private readonly state: StateClient, private readonly cache: ClusterCache, private readonly serverBaseUrl: string) {}

  nodeByMac(mac: string): Promise<BootNode | undefined> {
    const n = this.cache.nodeByMac(mac);
    return Promise.resolve(n ? bootNode(n) : undefined);
  }

  /** An unknown machine is allocated by the rules at once, like DHCP does, and shows up in `ycluster node list`. */
  async registerUnknown(mac: string): Promise<BootNode | undefined> {
    const { node } = await allocateNode(this.state, { mac });
    this.cache.remember(node);
    return bootNode(node);
  }

  async bootConfig(): Promise<BootConfig> {
    const settings = await this.state.getValue(keys.bootSettings);
    if (!settings) throw new YcError('UNAVAILABLE', 'boot settings are not configured: run ycluster boot configure --kernel URL --initrd URL --iso URL', { retryable: false });
    const c = this.cache.config();
    const cores = this.cache.nodes().filter((n) => n.type === 'core').map((n) => n.ip).sort();
    return {
      serverBaseUrl: this.serverBaseUrl,
      installerKernelUrl: settings.installerKernelUrl,
      installerInitrdUrl: settings.installerInitrdUrl,
      isoUrl: settings.isoUrl,
      sshAuthorizedKeys: settings.sshAuthorizedKeys,
      ...(settings.proxy ? { proxy: settings.proxy } : {}),
      ...(settings.agentPackageUrl ? { agentPackageUrl: settings.agentPackageUrl } : {}),
      domain: c.domain,
      gatewayVip: c.gatewayVip,
      dnsServers: [c.gatewayVip, ...cores],
      prefixLength: parseCidr(c.network).prefix,
      // The VIP answers as long as any core node is up; the nodes' own addresses if keepalived is not.
      adminApiUrls: [c.gatewayVip, ...cores].map((ip) => `http://${ip}:${ADMIN_API_PORT}`),
    };
  }

  async installState(mac: string): Promise<InstallState> {
    return (await this.state.getValue(keys.installState(mac)))?.state ?? 'install';
  }

  /** A new token replaces the previous one, so a user-data fetched twice leaves one valid token. */
  async issueJoinToken(mac: string): Promise<string> {
    const token = randomBytes(24).toString('base64url');
    await this.state.put(keys.joinToken(mac), { sha256: createHash('sha256').update(token).digest('hex'), expiresAt: new Date(Date.now() + JOIN_TOKEN_TTL_MS).toISOString() });
    return token;
  }
}
