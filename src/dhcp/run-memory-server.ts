/**
 * Runs the DHCP server over the memory backend, for lab tests and benchmarks:
 *   node --import tsx src/dhcp/run-memory-server.ts --server-ip 10.77.0.1 --subnet 10.77.0.0/24 \
 *     --range 10.77.0.100-10.77.0.150 [--reserve MAC,IP,HOSTNAME,TYPE]... [--router IP] [--dns IP]... [--ntp IP]...
 *     [--domain NAME] [--lease SECONDS] [--tftp IP] [--boot-host HOST] [--boot-port PORT] [--port 67] [--bind ADDR] [--interface IFACE]
 * Prints "DHCP-READY <json>" when listening; on SIGTERM/SIGINT prints "DHCP-STATS <json>" and exits.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../lib/log.js';
import { createDhcpHandler } from './handler.js';
import { MemoryDhcpBackend, type Reservation } from './memory-backend.js';
import { startDhcpServer } from './server.js';

const { values: a } = parseArgs({
  options: {
    'server-ip': { type: 'string' },
    subnet: { type: 'string' },
    range: { type: 'string' },
    reserve: { type: 'string', multiple: true, default: [] },
    router: { type: 'string' },
    dns: { type: 'string', multiple: true, default: [] },
    ntp: { type: 'string', multiple: true, default: [] },
    domain: { type: 'string' },
    lease: { type: 'string', default: '3600' },
    tftp: { type: 'string' },
    'boot-host': { type: 'string' },
    'boot-port': { type: 'string', default: '8080' },
    port: { type: 'string', default: '67' },
    bind: { type: 'string', default: '0.0.0.0' },
    interface: { type: 'string' },
  },
});

const serverIp = a['server-ip'];
const [rangeStart, rangeEnd] = (a.range ?? '').split('-');
if (!serverIp || !a.subnet || !rangeStart || !rangeEnd) {
  process.stderr.write('usage: run-memory-server.ts --server-ip IP --subnet CIDR --range START-END [options]\n');
  process.exitCode = 2;
} else {
  const reservations: Reservation[] = a.reserve.map((r) => {
    const [mac, ip, hostname, nodeType] = r.split(',');
    if (!mac || !ip || !hostname) throw new Error(`bad --reserve "${r}": expected MAC,IP,HOSTNAME[,TYPE]`);
    return { mac, ip, hostname, nodeType: nodeType ?? 'compute' };
  });
  const leaseSeconds = Number(a.lease);
  const backend = new MemoryDhcpBackend({ rangeStart, rangeEnd, reservations, leaseSeconds });
  const handler = createDhcpHandler({
    serverIp,
    subnet: a.subnet,
    ...(a.router !== undefined && { router: a.router }),
    dnsServers: a.dns,
    ntpServers: a.ntp,
    ...(a.domain !== undefined && { domainName: a.domain }),
    leaseSeconds,
    boot: { tftpServer: a.tftp ?? serverIp, bootHost: a['boot-host'] ?? serverIp, bootPort: Number(a['boot-port']) },
  }, backend);
  const server = await startDhcpServer({ handler, port: Number(a.port), bindAddress: a.bind, ...(a.interface !== undefined && { interfaceName: a.interface }), logger: createLogger({ fields: { svc: 'dhcp' } }) });
  process.stdout.write(`DHCP-READY ${JSON.stringify(server.address)}\n`);
  const stop = (): void => {
    process.stdout.write(`DHCP-STATS ${JSON.stringify({ ...server.stats(), leases: backend.activeLeases().length })}\n`);
    void server.close();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
