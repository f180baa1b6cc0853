/** The thin socket layer: a UDP socket on port 67 feeding processDatagram and sending what it decides. */
import dgram from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { YcError } from '../lib/errors.js';
import { RateLimitedLog, type Logger } from '../lib/log.js';
import type { DhcpHandler } from './handler.js';
import { DhcpStats, processDatagram } from './intake.js';

export interface DhcpServerOptions {
  handler: DhcpHandler;
  port?: number;
  /** Defaults to 0.0.0.0: clients without an address send from 0.0.0.0 to 255.255.255.255. */
  bindAddress?: string;
  /**
   * The served link. It must exist and carry an IPv4 address; node:dgram cannot set SO_BINDTODEVICE,
   * so on a multi-homed host the namespace (or bindAddress) is what limits the server to one link.
   */
  interfaceName?: string;
  logger: Logger;
}

export interface DhcpServer {
  stats(): Record<string, number>;
  close(): Promise<void>;
  address: { address: string; port: number };
}

export async function startDhcpServer(opts: DhcpServerOptions): Promise<DhcpServer> {
  const log = opts.logger;
  const dropLog = new RateLimitedLog(log);
  const stats = new DhcpStats();
  if (opts.interfaceName !== undefined) checkInterface(opts.interfaceName);
  const sock = dgram.createSocket({ type: 'udp4' });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ port: opts.port ?? 67, address: opts.bindAddress ?? '0.0.0.0' }, () => {
      sock.off('error', reject);
      resolve();
    });
  });
  sock.setBroadcast(true);
  let closed = false;
  sock.on('error', (err) => log.error('dhcp socket error', { error: err.message }));
  sock.on('message', (msg, rinfo) => {
    void processDatagram(msg, opts.handler, stats).then((r) => {
      if (r.kind === 'drop') {
        dropLog.warn(r.reason, 'dropped DHCP packet', { reason: r.reason, detail: r.detail, from: `${rinfo.address}:${rinfo.port}` });
        return;
      }
      log.debug(r.note);
      if (r.kind !== 'send' || closed) return;
      const onError = (err: Error): void => dropLog.warn(`send:${err.message}`, 'cannot send DHCP reply', { to: r.to, error: err.message });
      try {
        sock.send(r.bytes, r.to.port, r.to.address, (err) => err && onError(err));
      } catch (err) {
        onError(err as Error);
      }
    });
  });
  const a = sock.address();
  log.info('dhcp server listening', { address: a.address, port: a.port, interface: opts.interfaceName });
  return {
    stats: () => stats.snapshot(),
    address: { address: a.address, port: a.port },
    close: () => {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise<void>((resolve) => sock.close(() => resolve()));
    },
  };
}

function checkInterface(name: string): void {
  const addrs = networkInterfaces()[name];
  if (!addrs?.some((a) => a.family === 'IPv4')) throw new YcError('BAD_INPUT', `interface "${name}" does not exist or has no IPv4 address`);
}
