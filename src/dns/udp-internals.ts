/**
 * Two things Node 20's dgram API cannot do, reached through the socket's internal handle: stop
 * reading a bound socket without closing it (the server lets its workers read), and send to
 * literal addresses without dns.lookup's nextTick (a socket received over IPC cannot be given a
 * `lookup`). Both are feature-detected: when Node's internals differ they return false and the
 * caller keeps the public behaviour (reading, or the default lookup), which is slower, not wrong.
 * udp-internals.test.ts fails when detection stops working, so an upgrade does not degrade silently.
 */
import type dgram from 'node:dgram';
import net from 'node:net';

interface UdpHandle {
  recvStart(): number;
  recvStop(): number;
  lookup: unknown;
}

function handleOf(udp: dgram.Socket): UdpHandle | undefined {
  const sym = Object.getOwnPropertySymbols(udp).find((s) => s.description === 'state symbol');
  if (!sym) return undefined;
  const state = (udp as unknown as Record<symbol, { handle?: unknown } | undefined>)[sym];
  const h = state?.handle as Partial<UdpHandle> | undefined;
  if (!h || typeof h.recvStart !== 'function' || typeof h.recvStop !== 'function' || typeof h.lookup !== 'function') return undefined;
  return h as UdpHandle;
}

/** Starts or stops reading datagrams on a bound socket; false if this Node does not allow it. */
export function setReceiving(udp: dgram.Socket, on: boolean): boolean {
  const h = handleOf(udp);
  if (!h) return false;
  // Both are idempotent in libuv; a non-zero result is an error code.
  return (on ? h.recvStart() : h.recvStop()) === 0;
}

/** Replies to IPv4 literals resolve synchronously, as the server's own socket does with its `lookup` option. */
export function literalLookup(udp: dgram.Socket): boolean {
  const h = handleOf(udp);
  if (!h) return false;
  const fallback = h.lookup as (address: string, cb: (err: Error | null, ip: string) => void) => void;
  h.lookup = (address: string, cb: (err: Error | null, ip: string) => void): void => {
    if (net.isIPv4(address)) cb(null, address);
    else fallback(address, cb);
  };
  return true;
}
