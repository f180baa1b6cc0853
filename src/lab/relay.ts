// A tiny TCP/unix-socket relay: the two halves of a lab forward (see forward.ts). Runs as its own process:
//   relay.js --listen tcp:127.0.0.1:0 | unix:PATH   --connect tcp:IP:PORT | unix:PATH  [--connect ...]
//            [--connect-timeout MS]
// Prints "READY <port|path>" on stdout once listening. Several --connect targets are tried in order, starting
// with the last one that worked (an API forward reaches any live core node). Logs go to stderr.
import { lstatSync, rmSync } from 'node:fs';
import net from 'node:net';
import { pathToFileURL } from 'node:url';

export type Endpoint = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export function parseEndpoint(s: string): Endpoint {
  if (s.startsWith('unix:') && s.length > 5) return { kind: 'unix', path: s.slice(5) };
  const m = /^tcp:([0-9.]+):(\d{1,5})$/.exec(s);
  if (m?.[1] && m[2] && Number(m[2]) <= 65535) return { kind: 'tcp', host: m[1], port: Number(m[2]) };
  throw new Error(`bad endpoint "${s}": use tcp:IP:PORT or unix:PATH`);
}

export interface RelayArgs {
  listen: Endpoint;
  connect: Endpoint[];
  connectTimeoutMs: number;
}

export function parseRelayArgs(argv: readonly string[]): RelayArgs {
  let listen: Endpoint | undefined;
  const connect: Endpoint[] = [];
  let connectTimeoutMs = 1000;
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`missing value for ${flag}`);
    if (flag === '--listen') listen = parseEndpoint(value);
    else if (flag === '--connect') connect.push(parseEndpoint(value));
    else if (flag === '--connect-timeout') connectTimeoutMs = Number(value);
    else throw new Error(`unknown flag ${flag}`);
  }
  if (!listen || connect.length === 0) throw new Error('need --listen and at least one --connect');
  if (!Number.isInteger(connectTimeoutMs) || connectTimeoutMs <= 0) throw new Error('bad --connect-timeout');
  return { listen, connect, connectTimeoutMs };
}

function connectOnce(ep: Endpoint, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const opts = ep.kind === 'tcp' ? { host: ep.host, port: ep.port } : { path: ep.path };
    const sock = net.connect({ ...opts, allowHalfOpen: true });
    const timer = setTimeout(() => sock.destroy(new Error('connect timeout')), timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

const show = (ep: Endpoint): string => (ep.kind === 'tcp' ? `${ep.host}:${ep.port}` : ep.path);

/** Starts the relay; resolves with the listening server. */
export function startRelay(args: RelayArgs, log: (msg: string) => void): Promise<net.Server> {
  let preferred = 0;
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    client.on('error', () => client.destroy());
    void (async () => {
      const n = args.connect.length;
      for (let k = 0; k < n; k++) {
        const idx = (preferred + k) % n;
        const ep = args.connect[idx]!;
        try {
          const upstream = await connectOnce(ep, args.connectTimeoutMs);
          if (client.destroyed) {
            upstream.destroy();
            return;
          }
          preferred = idx;
          upstream.on('error', () => {
            upstream.destroy();
            client.destroy();
          });
          client.on('error', () => upstream.destroy());
          client.on('close', () => upstream.destroy());
          upstream.on('close', () => client.destroy());
          client.pipe(upstream);
          upstream.pipe(client);
          return;
        } catch (err) {
          log(`connect ${show(ep)}: ${(err as Error).message}`);
        }
      }
      client.destroy();
    })();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    if (args.listen.kind === 'unix') {
      const path = args.listen.path;
      // A socket file left by a killed relay would make listen fail; remove only a socket, never a regular file.
      try {
        if (lstatSync(path).isSocket()) rmSync(path);
      } catch {
        /* absent */
      }
      server.listen(path, () => resolve(server));
    } else {
      server.listen(args.listen.port, args.listen.host, () => resolve(server));
    }
  });
}

async function main(): Promise<void> {
  const args = parseRelayArgs(process.argv.slice(2));
  const log = (msg: string): void => void process.stderr.write(`${new Date().toISOString()} relay ${show(args.listen)}: ${msg}\n`);
  const server = await startRelay(args, log);
  const addr = server.address();
  const where = typeof addr === 'object' && addr !== null ? String(addr.port) : show(args.listen);
  // The reader may have gone (it reads this one line and closes): never die of EPIPE.
  process.stdout.on('error', () => undefined);
  process.stdout.write(`READY ${where}\n`);
  const stop = (): void => {
    server.close();
    process.exitCode = 0;
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`relay: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
