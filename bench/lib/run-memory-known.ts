/**
 * ycluster's DHCP handler over the memory backend with perfdhcp's first N clients reserved: every packet is
 * a map lookup, so a run measures the protocol and socket cost alone (no allocation, no etcd).
 *   run-memory-known.ts --server-ip 10.0.0.1 --subnet 10.0.0.0/16 --first-ip 10.0.1.1 --clients N [--interface eth0]
 * Prints "DHCP-READY <json>" when listening; on SIGTERM prints "DHCP-STATS <json>" and exits.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../../src/lib/log.js';
import { formatIpv4, parseIpv4 } from '../../src/lib/net.js';
import { createDhcpHandler } from '../../src/dhcp/handler.js';
import { MemoryDhcpBackend } from '../../src/dhcp/memory-backend.js';
import { startDhcpServer } from '../../src/dhcp/server.js';
import { perfdhcpMac } from './perfdhcp-mac.js';

const { values: a } = parseArgs({
  options: {
    'server-ip': { type: 'string' },
    subnet: { type: 'string', default: '10.0.0.0/16' },
    'first-ip': { type: 'string', default: '10.0.1.1' },
    clients: { type: 'string', default: '5000' },
    interface: { type: 'string' },
    port: { type: 'string', default: '67' },
  },
});
const serverIp = a['server-ip'];
if (!serverIp) throw new Error('usage: run-memory-known.ts --server-ip IP [--subnet CIDR] [--first-ip IP] [--clients N]');
const first = parseIpv4(a['first-ip']);
const count = Number(a.clients);
const reservations = Array.from({ length: count }, (_, r) => ({ mac: perfdhcpMac(r), ip: formatIpv4(first + r), hostname: `c${r + 1}`, nodeType: 'compute' }));
// The dynamic range lies past the reservations and is not used by known clients.
const backend = new MemoryDhcpBackend({ rangeStart: formatIpv4(first + count), rangeEnd: formatIpv4(first + count + 10), reservations, leaseSeconds: 3600 });
const handler = createDhcpHandler({ serverIp, subnet: a.subnet, dnsServers: [], ntpServers: [], leaseSeconds: 3600, boot: { tftpServer: serverIp, bootHost: serverIp, bootPort: 8080 } }, backend);
const logger = createLogger({ level: 'warn', fields: { svc: 'dhcp' } });
const server = await startDhcpServer({ handler, port: Number(a.port), ...(a.interface !== undefined && { interfaceName: a.interface }), logger });
process.stdout.write(`DHCP-READY ${JSON.stringify({ ...server.address, reserved: count })}\n`);
const stop = (): void => {
  process.stdout.write(`DHCP-STATS ${JSON.stringify({ ...server.stats(), reserved: count })}\n`);
  void server.close().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
