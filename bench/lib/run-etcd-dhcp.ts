/**
 * ycluster's DHCP over the etcd backend, as the 'dhcp' leader runs it (ClusterCache + EtcdDhcpBackend,
 * leases committed to etcd before each ACK), for bench/dhcp.ts. First writes a cluster config whose
 * network and compute range hold the benchmark's clients.
 *   run-etcd-dhcp.ts --endpoints A,B,C --server-ip 10.0.0.1 --network 10.0.0.0/16 \
 *     --compute 10.0.1.1-10.0.40.255 [--interface eth0] [--port 67] [--seed-perfdhcp N]
 * --seed-perfdhcp N registers perfdhcp's first N client MACs as compute nodes before serving, so a run
 * measures the lease path of known machines (their ACK still waits for the lease in etcd).
 * Prints "DHCP-READY <json>" when listening; on SIGTERM prints "DHCP-STATS <json>" and exits.
 */
import { parseArgs } from 'node:util';
import { formatIpv4, parseIpv4 } from '../../src/lib/net.js';
import { encodeValue } from '../../src/state/codec.js';
import { perfdhcpMac } from './perfdhcp-mac.js';
import { createLogger } from '../../src/lib/log.js';
import { createDhcpHandler } from '../../src/dhcp/handler.js';
import { startDhcpServer } from '../../src/dhcp/server.js';
import { ClusterCache } from '../../src/provision/cluster-cache.js';
import { EtcdDhcpBackend } from '../../src/provision/dhcp-backend.js';
import { StateClient } from '../../src/state/client.js';
import { keys } from '../../src/state/keys.js';
import { defaultConfig, type ClusterConfig, type NodeRecord } from '../../src/state/schema.js';

const { values: a } = parseArgs({
  options: {
    endpoints: { type: 'string' },
    'server-ip': { type: 'string' },
    network: { type: 'string', default: '10.0.0.0/16' },
    compute: { type: 'string', default: '10.0.1.1-10.0.40.255' },
    interface: { type: 'string' },
    port: { type: 'string', default: '67' },
    'seed-perfdhcp': { type: 'string', default: '0' },
  },
});
const [start, end] = (a.compute ?? '').split('-');
if (!a.endpoints || !a['server-ip'] || !start || !end) throw new Error('usage: run-etcd-dhcp.ts --endpoints A,B,C --server-ip IP [--network CIDR] [--compute START-END]');

const logger = createLogger({ level: 'warn', fields: { svc: 'dhcp' } });
const state = new StateClient({ endpoints: a.endpoints.split(',') });
const config: ClusterConfig = { ...defaultConfig, network: a.network, ranges: { ...defaultConfig.ranges, compute: { start, end } } };
await state.put(keys.config, config);
const seeded = await seedPerfdhcpClients(Number(a['seed-perfdhcp']));
const cache = new ClusterCache(state, logger);
await cache.start();
const serverIp = a['server-ip'];
const backend = new EtcdDhcpBackend(state, cache, logger);
const handler = createDhcpHandler({
  serverIp,
  subnet: config.network,
  router: config.gatewayVip,
  dnsServers: [config.gatewayVip],
  ntpServers: [config.gatewayVip],
  domainName: config.domain,
  leaseSeconds: config.dhcpLeaseSeconds,
  boot: { tftpServer: serverIp, bootHost: serverIp, bootPort: 8080 },
}, backend);
const server = await startDhcpServer({ handler, port: Number(a.port), ...(a.interface !== undefined && { interfaceName: a.interface }), logger });
process.stdout.write(`DHCP-READY ${JSON.stringify({ ...server.address, seeded })}\n`);
const stop = (): void => {
  process.stdout.write(`DHCP-STATS ${JSON.stringify({ ...server.stats(), ...backend.stats(), seeded, nodes: cache.nodes().length })}\n`);
  void server.close().then(() => cache.stop()).finally(() => {
    state.close();
    process.exit(0);
  });
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

async function seedPerfdhcpClients(count: number): Promise<number> {
  const first = parseIpv4(start!);
  const perTxn = 40; // three puts a node, under etcd's 128 operations per transaction
  for (let base = 0; base < count; base += perTxn) {
    const puts: { key: string; value: string }[] = [];
    for (let r = base; r < Math.min(count, base + perTxn); r++) {
      const node: NodeRecord = { mac: perfdhcpMac(r), hostname: `c${r + 1}`, ip: formatIpv4(first + r), type: 'compute', typeSource: 'default', createdAt: new Date().toISOString() };
      puts.push({ key: keys.nodeByMac(node.mac).key, value: encodeValue(keys.nodeByMac(node.mac), node) });
      puts.push({ key: keys.nodeByName(node.hostname).key, value: encodeValue(keys.nodeByName(node.hostname), { mac: node.mac }) });
      puts.push({ key: keys.nodeByIp(node.ip).key, value: encodeValue(keys.nodeByIp(node.ip), { mac: node.mac }) });
    }
    await state.txn({ compare: [], puts });
  }
  return count;
}
