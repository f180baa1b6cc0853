// A minimal PostgreSQL client (protocol 3.0: startup, SCRAM-SHA-256 or no password, one simple query) for the lab's
// write probes. Each query opens its own connection, as a client does after a failover. In-process, a probe costs
// the cluster a backend and a handshake; a psql process per INSERT (ten a second) also cost process starts on the
// very CPUs whose switchover it timed.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import { startupMessage } from '../../src/services/pg-ping.js';

export interface PgTarget {
  host: string;
  port: number;
  user: string;
  database: string;
  password: string;
}

function frame(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const cstr = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');
const hmac = (key: Buffer, text: string): Buffer => createHmac('sha256', key).update(text).digest();

/** The SCRAM-SHA-256 client proof (RFC 5802, RFC 7677) for the server's first message. */
export function scramFinal(password: string, clientNonce: string, clientFirstBare: string, serverFirst: string): { message: string; serverSignature: Buffer } {
  const attrs = new Map(serverFirst.split(',').map((kv) => [kv.slice(0, 1), kv.slice(2)] as const));
  const nonce = attrs.get('r') ?? '';
  const salt = Buffer.from(attrs.get('s') ?? '', 'base64');
  const iterations = Number(attrs.get('i'));
  if (!nonce.startsWith(clientNonce) || !Number.isInteger(iterations) || iterations < 1) throw new Error(`bad SCRAM server-first message: ${serverFirst}`);
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = hmac(salted, 'Client Key');
  const storedKey = createHash('sha256').update(clientKey).digest();
  const withoutProof = `c=biws,r=${nonce}`;
  const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
  const signature = hmac(storedKey, authMessage);
  const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!));
  return { message: `${withoutProof},p=${proof.toString('base64')}`, serverSignature: hmac(hmac(salted, 'Server Key'), authMessage) };
}

/** Error fields of an ErrorResponse: severity, code and message. */
function errorText(body: Buffer): string {
  const fields = new Map<string, string>();
  for (const f of body.toString('utf8').split('\0')) if (f.length > 1) fields.set(f[0]!, f.slice(1));
  return `${fields.get('S') ?? 'ERROR'} ${fields.get('C') ?? ''}: ${fields.get('M') ?? 'unknown error'}`;
}

/**
 * Connects, authenticates, runs `sql` as one simple query and disconnects, all within timeoutMs. Resolves when
 * the server has acknowledged it (ReadyForQuery after CommandComplete); rejects with the server's error, a
 * connection error or a timeout.
 */
export function pgQuery(t: PgTarget, sql: string, timeoutMs: number, options?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock: Socket = createConnection({ host: t.host, port: t.port });
    let buf = Buffer.alloc(0);
    let settled = false;
    let failed: string | undefined;
    const nonce = randomBytes(18).toString('base64');
    const clientFirstBare = `n=,r=${nonce}`;
    let serverSignature: Buffer | undefined;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!sock.destroyed) sock.end(frame('X', Buffer.alloc(0)));
      sock.destroy();
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    sock.once('connect', () => sock.write(startupMessage(t.user, t.database, options === undefined ? {} : { options })));
    const onMessage = (type: string, body: Buffer): void => {
      if (type === 'E') {
        failed = errorText(body);
        // An error during the startup ends the connection; one after the query is followed by ReadyForQuery.
        if (!authenticated) finish(new Error(failed));
        return;
      }
      if (type === 'R') {
        const code = body.readInt32BE(0);
        if (code === 0) {
          authenticated = true;
          return;
        }
        if (code === 10) {
          const first = `n,,${clientFirstBare}`;
          const len = Buffer.alloc(4);
          len.writeInt32BE(Buffer.byteLength(first), 0);
          sock.write(frame('p', Buffer.concat([cstr('SCRAM-SHA-256'), len, Buffer.from(first)])));
          return;
        }
        if (code === 11) {
          const f = scramFinal(t.password, nonce, clientFirstBare, body.subarray(4).toString('utf8'));
          serverSignature = f.serverSignature;
          sock.write(frame('p', Buffer.from(f.message)));
          return;
        }
        if (code === 12) {
          const v = body.subarray(4).toString('utf8');
          if (!v.startsWith('v=') || !Buffer.from(v.slice(2), 'base64').equals(serverSignature ?? Buffer.alloc(0))) finish(new Error('the server failed SCRAM verification'));
          return;
        }
        if (code === 3) return void sock.write(frame('p', cstr(t.password)));
        finish(new Error(`unsupported authentication request ${code}`));
        return;
      }
      if (type === 'Z') {
        // The first ReadyForQuery ends the startup: send the query. The second ends the query.
        if (!queried) {
          queried = true;
          sock.write(frame('Q', cstr(sql)));
          return;
        }
        finish(failed === undefined ? undefined : new Error(failed));
      }
    };
    let queried = false;
    let authenticated = false;
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 5) {
        const len = buf.readInt32BE(1);
        if (len < 4 || len > 1 << 24) return finish(new Error('malformed message from the server'));
        if (buf.length < 1 + len) return;
        const type = String.fromCharCode(buf[0]!);
        const body = buf.subarray(5, 1 + len);
        buf = buf.subarray(1 + len);
        onMessage(type, body);
        if (settled) return;
      }
    });
    sock.once('error', (err) => finish(err));
    sock.once('close', () => finish(new Error(failed ?? 'connection closed by the server')));
  });
}
