/** The thin socket layer: UDP port 67 feeding processDatagram and sending what it decides. */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
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
   * The served link. Replies are sent from its first IPv4 address (or `sourceAddress`), which makes
   * Linux send 255.255.255.255 out of this link instead of following the routing table.
   * node:dgram cannot set SO_BINDTODEVICE, so requests arriving on other links are still received.
   */
  interfaceName?: string;
  sourceAddress?: string;
  /**
   * SO_RCVBUF of the sockets (the kernel caps it at net.core.rmem_max). The default, 4 MiB, holds a few
   * thousand requests: a burst, or a pause of the event loop (GC, a batch of allocations), is queued
   * instead of dropped by the kernel.
   */
  recvBufferBytes?: number;
  logger: Logger;
}

export interface DhcpServer {
  stats(): Record<string, number>;
  close(): Promise<void>;
  address: { address: string; port: number };
}

function interfaceIpv4(name: string): string {
  const addr = networkInterfaces()[name]?.find((a) => a.family === 'IPv4');
  if (!addr) throw new YcError('BAD_INPUT', `interface "${name}" does not exist or has no IPv4 address`);
  return addr.address;
}

/**
 * Requests the kernel dropped on UDP sockets bound to this port in our network namespace (receive buffer
 * full): the drops column of /proc/net/udp. undefined where that file does not exist.
 */
export function kernelDrops(port: number): number | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/self/net/udp', 'latin1');
  } catch {
    return undefined;
  }
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let drops = 0;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 13 && f[1]!.endsWith(hexPort)) drops += Number(f[f.length - 1]) || 0;
  }
  return drops;
}

const DEFAULT_RECV_BUFFER = 4 * 1024 * 1024;

async function bindSocket(address: string, port: number, reuseAddr: boolean, recvBufferSize: number): Promise<dgram.Socket> {
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr, recvBufferSize });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ port, address }, () => {
      sock.off('error', reject);
      resolve();
    });
  });
  sock.setBroadcast(true);
  return sock;
}

export async function startDhcpServer(opts: DhcpServerOptions): Promise<DhcpServer> {
  const log = opts.logger;
  const dropLog = new RateLimitedLog(log);
  const stats = new DhcpStats();
  const bindAddress = opts.bindAddress ?? '0.0.0.0';
  const source = opts.sourceAddress ?? (opts.interfaceName === undefined ? undefined : interfaceIpv4(opts.interfaceName));
  // Wildcard and address-bound sockets on the same port need SO_REUSEADDR on both.
  const twoSockets = source !== undefined && source !== bindAddress;
  const rcvbuf = opts.recvBufferBytes ?? DEFAULT_RECV_BUFFER;
  const recv = await bindSocket(bindAddress, opts.port ?? 67, twoSockets, rcvbuf);
  const port = recv.address().port;
  let out: dgram.Socket;
  try {
    out = twoSockets ? await bindSocket(source, port, true, rcvbuf) : recv;
  } catch (err) {
    recv.close();
    throw err;
  }
  let closed = false;

  const onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    void processDatagram(msg, opts.handler, stats).then((r) => {
      if (r.kind === 'drop') {
        dropLog.warn(r.reason, 'dropped DHCP packet', { reason: r.reason, detail: r.detail, from: `${rinfo.address}:${rinfo.port}` });
        return;
      }
      log.debug(r.note);
      if (r.kind !== 'send' || closed) return;
      const onError = (err: Error): void => {
        stats.sendErrors++;
        dropLog.warn(`send:${err.message}`, 'cannot send DHCP reply', { to: r.to, error: err.message });
      };
      try {
        out.send(r.bytes, r.to.port, r.to.address, (err) => err && onError(err));
      } catch (err) {
        onError(err as Error);
      }
    });
  };
  const sockets = twoSockets ? [recv, out] : [recv];
  for (const s of sockets) {
    // Unicast to our address (relays, renewals) reaches the address-bound socket, broadcasts the wildcard one.
    s.on('message', onMessage);
    s.on('error', (err) => log.error('dhcp socket error', { error: err.message }));
  }
  log.info('dhcp server listening', { address: bindAddress, port, source, interface: opts.interfaceName, recvBufferBytes: recv.getRecvBufferSize() });
  const dropsAtStart = kernelDrops(port) ?? 0;
  return {
    stats: () => {
      const out = stats.snapshot();
      const k = kernelDrops(port);
      // Packets that never reached us count as drops too (they are not in `received`).
      if (k !== undefined) out['drop.kernel-receive-buffer'] = k - dropsAtStart;
      return out;
    },
    address: { address: bindAddress, port },
    close: async () => {
      if (closed) return;
      closed = true;
      await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
