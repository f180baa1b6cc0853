/**
 * ycluster's DHCP over the etcd backend, as the 'dhcp' leader runs it (ClusterCache + EtcdDhcpBackend,
 * leases committed to etcd before each ACK), for bench/dhcp.ts. First writes a cluster config whose
 * network and compute range hold the benchmark's clients.
 *   run-etcd-dhcp.ts --endpoints A,B,C --server-ip 10.0.0.1 --network 10.0.0.0/16 \
 *     --compute 10.0.1.1-10.0.40.255 [--interface eth0] [--port 67]
 * Prints "DHCP-READY <json>" when listening; on SIGTERM prints "DHCP-STATS <json>" and exits.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../../src/lib/log.js';
import { createDhcpHandler } from '../../src/dhcp/handler.js';
import { startDhcpServer } from '../../src/dhcp/server.js';
import { ClusterCache } from '../../src/provision/cluster-cache.js';
import { EtcdDhcpBackend } from '../../src/provision/dhcp-backend.js';
import { StateClient } from '../../src/state/client.js';
import { keys } from '../../src/state/keys.js';
import { defaultConfig, type ClusterConfig } from '../../src/state/schema.js';

const { values: a } = parseArgs({
  options: {
    endpoints: { type: 'string' },
    'server-ip': { type: 'string' },
    network: { type: 'string', default: '10.0.0.0/16' },
    compute: { type: 'string', default: '10.0.1.1-10.0.40.255' },
    interface: { type: 'string' },
    port: { type: 'string', default: '67' },
  },
});
const [start, end] = (a.compute ?? '').split('-');
if (!a.endpoints || !a['server-ip'] || !start || !end) throw new Error('usage: run-etcd-dhcp.ts --endpoints A,B,C --server-ip IP [--network CIDR] [--compute START-END]');

const logger = createLogger({ level: 'warn', fields: { svc: 'dhcp' } });
const state = new StateClient({ endpoints: a.endpoints.split(',') });
const config: ClusterConfig = { ...defaultConfig, network: a.network, ranges: { ...defaultConfig.ranges, compute: { start, end } } };
await state.put(keys.config, config);
const cache = new ClusterCache(state, logger);
await cache.start();
const serverIp = a['server-ip'];
const handler = createDhcpHandler({
  serverIp,
  subnet: config.network,
  router: config.gatewayVip,
  dnsServers: [config.gatewayVip],
  ntpServers: [config.gatewayVip],
  domainName: config.domain,
  leaseSeconds: config.dhcpLeaseSeconds,
  boot: { tftpServer: serverIp, bootHost: serverIp, bootPort: 8080 },
}, new EtcdDhcpBackend(state, cache, logger));
const server = await startDhcpServer({ handler, port: Number(a.port), ...(a.interface !== undefined && { interfaceName: a.interface }), logger });
process.stdout.write(`DHCP-READY ${JSON.stringify(server.address)}\n`);
const stop = (): void => {
  process.stdout.write(`DHCP-STATS ${JSON.stringify({ ...server.stats(), nodes: cache.nodes().length })}\n`);
  void server.close().then(() => cache.stop()).finally(() => {
    state.close();
    process.exit(0);
  });
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
