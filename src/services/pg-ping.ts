// PostgreSQL's readiness as pg_isready (libpq's PQping) judges it, asked in-process: a takeover polls it every
// few milliseconds, and a pg_isready process per poll costs more CPU than the answer is worth on a small node.
import { createConnection } from 'node:net';

export type PingResult = 'ready' | 'rejecting' | 'no-response';

/** Protocol 3.0 StartupMessage for the given user and database, and any further run-time parameters. */
export function startupMessage(user: string, database: string, params: Record<string, string> = {}): Buffer {
  const extra = Object.entries(params).map(([k, v]) => `${k}\0${v}\0`).join('');
  const body = Buffer.from(`user\0${user}\0database\0${database}\0${extra}\0`, 'utf8');
  const msg = Buffer.alloc(8 + body.length);
  msg.writeInt32BE(msg.length, 0);
  msg.writeInt32BE(196608, 4);
  body.copy(msg, 8);
  return msg;
}

/**
 * Reads the server's first answer the way PQping does: any authentication request or any error other than
 * "cannot connect now" (SQLSTATE 57P03: starting up, shutting down, in recovery) means the server accepts
 * connections; undefined while the answer is still incomplete.
 */
export function judgeFirstReply(buf: Buffer): PingResult | undefined {
  if (buf.length < 5) return undefined;
  const type = String.fromCharCode(buf[0]!);
  const len = buf.readInt32BE(1);
  if (type === 'R' || type === 'N' || type === 'S') return 'ready';
  if (type !== 'E') return 'ready';
  if (len < 4 || len > 64 * 1024) return 'rejecting';
  if (buf.length < 1 + len) return undefined;
  const fields = buf.subarray(5, 1 + len).toString('utf8').split('\0');
  const code = fields.find((f) => f.startsWith('C'))?.slice(1);
  return code === '57P03' ? 'rejecting' : 'ready';
}

/** One readiness check over a Unix socket path or a TCP host and port, bounded by timeoutMs. */
export function pgPing(target: { path: string } | { host: string; port: number }, timeoutMs: number, user = 'postgres'): Promise<PingResult> {
  return new Promise((resolve) => {
    const sock = 'path' in target ? createConnection({ path: target.path }) : createConnection({ host: target.host, port: target.port });
    let got = Buffer.alloc(0);
    const done = (r: PingResult): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done('no-response'), timeoutMs);
    sock.once('connect', () => sock.write(startupMessage(user, 'postgres')));
    sock.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const r = judgeFirstReply(got);
      if (r !== undefined) done(r);
    });
    sock.once('error', () => done('no-response'));
    sock.once('close', () => done('no-response'));
  });
}
