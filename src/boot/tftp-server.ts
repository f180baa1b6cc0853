/** The read-only TFTP daemon: the socket loop around classifyRequest, openInRoot and ReadSession. */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { RateLimitedLog, type Logger } from '../lib/log.js';
import { errorMessage } from '../lib/errors.js';
import { decodePacket, encodeData, encodeError, encodeOack, TftpDecodeError, TftpErrorCode } from './tftp-codec.js';
import { openInRoot, type FileSource } from './tftp-fs.js';
import { negotiate } from './tftp-options.js';
import { classifyRequest } from './tftp-request.js';
import { ReadSession, type SessionAction } from './tftp-session.js';

export interface TftpServerOptions {
  root: string;
  port?: number;
  bindAddress?: string;
  logger: Logger;
  maxRetries?: number;
  timeoutMs?: number;
  /** Transfers beyond this are refused with "server busy", so a flood cannot exhaust sockets. */
  maxTransfers?: number;
}

export interface TftpServer {
  readonly port: number;
  stats(): Record<string, number>;
  close(): Promise<void>;
}

interface Client {
  address: string;
  port: number;
}

function bindSocket(port: number, address: string | undefined): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    sock.once('error', reject);
    sock.bind(port, address, () => {
      sock.off('error', reject);
      resolve(sock);
    });
  });
}

function send(sock: Socket, buf: Buffer, to: Client): Promise<void> {
  return new Promise((resolve, reject) => sock.send(buf, to.port, to.address, (err) => (err ? reject(err) : resolve())));
}

export async function startTftpServer(opts: TftpServerOptions): Promise<TftpServer> {
  const log = opts.logger.child({ component: 'tftp' });
  const limited = new RateLimitedLog(log);
  const maxRetries = opts.maxRetries ?? 5;
  const timeoutMs = opts.timeoutMs ?? 1000;
  const maxTransfers = opts.maxTransfers ?? 256;
  const counters = new Map<string, number>();
  const count = (name: string, n = 1): void => void counters.set(name, (counters.get(name) ?? 0) + n);
  /** Keyed by client address:port: one transfer per client TID. */
  const active = new Map<string, { abort(): void; done: Promise<void> }>();
  let closing = false;

  const drop = (reason: string, from: Client): void => {
    count(`drop.${reason}`);
    limited.warn(`drop.${reason}`, 'dropped TFTP packet', { reason, from: `${from.address}:${from.port}` });
  };

  // RFC 1350: every reply to a request comes from a fresh port (the server's TID).
  const replyError = async (to: Client, code: number, message: string): Promise<void> => {
    const sock = await bindSocket(0, opts.bindAddress);
    try {
      await send(sock, encodeError(code, message), to);
    } finally {
      sock.close();
    }
  };

  async function transfer(client: Client, filename: string, mode: string, requested: Record<string, string>, signal: AbortSignal): Promise<void> {
    const opened = await openInRoot(opts.root, filename, mode);
    if (!opened.ok) {
      count(opened.error);
      log.info('TFTP request refused', { file: filename, client: client.address, reason: opened.reason });
      const code = opened.error === 'not-found' ? TftpErrorCode.FILE_NOT_FOUND : TftpErrorCode.ACCESS_VIOLATION;
      await replyError(client, code, opened.error === 'not-found' ? 'file not found' : 'access violation');
      return;
    }
    const source: FileSource = opened.source;
    const { params, oack } = negotiate(requested, source.size, { timeoutMs });
    const session = new ReadSession(source.size, params, Object.keys(oack).length > 0, maxRetries);
    if (oack.blksize) count('negotiated.blksize');
    if (oack.windowsize) count('negotiated.windowsize');
    if (oack.tsize) count('negotiated.tsize');
    if (oack.timeout) count('negotiated.timeout');
    counters.set('last.blksize', params.blksize);
    counters.set('last.windowsize', params.windowsize);
    const sock = await bindSocket(0, opts.bindAddress);
    let timer: NodeJS.Timeout | undefined;
    let queue = Promise.resolve();
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));

    let ended = false;
    const end = (outcome: 'completed' | 'failed', reason?: string): void => {
      if (timer) clearTimeout(timer);
      if (ended) return;
      ended = true;
      count(`transfers.${outcome}`);
      if (outcome === 'failed') log.info('TFTP transfer failed', { file: filename, client: client.address, reason });
      else log.info('TFTP transfer completed', { file: filename, client: client.address });
      finish();
    };

    const apply = (action: SessionAction): void => {
      queue = queue.then(async () => {
        if (ended) return;
        switch (action.type) {
          case 'send-oack':
            count('oack.sent');
            await send(sock, encodeOack(oack), client);
            break;
          case 'send-blocks':
            for (const block of action.blocks) {
              const { offset, length } = session.blockRange(block);
              const data = await source.read(offset, length);
              await send(sock, encodeData(block, data), client);
              count('blocks.sent');
              count('bytes.sent', data.length);
            }
            break;
          case 'done':
            return end('completed');
          case 'fail':
            return end('failed', action.reason);
          case 'none':
            count(`ignored.${action.reason.replace(/ /g, '-')}`);
            return;
        }
        if (timer) clearTimeout(timer);
        if (ended) return;
        timer = setTimeout(() => {
          count('timeouts');
          apply(session.onTimeout());
        }, params.timeoutMs);
      }).catch((err: unknown) => {
        count('send-errors');
        end('failed', errorMessage(err));
      });
    };

    sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      if (rinfo.address !== client.address || rinfo.port !== client.port) {
        count('unknown-tid');
        void send(sock, encodeError(TftpErrorCode.UNKNOWN_TID, 'unknown transfer ID'), rinfo).catch(() => undefined);
        return;
      }
      let packet;
      try {
        packet = decodePacket(msg);
      } catch (err) {
        return drop(err instanceof TftpDecodeError ? err.reason : 'internal', rinfo);
      }
      if (packet.op === 'ACK') apply(session.onAck(packet.block));
      else if (packet.op === 'ERROR') apply(session.onClientError(packet.message));
      else drop('unexpected-opcode-in-transfer', rinfo);
    });
    sock.on('error', (err) => {
      count('socket-errors');
      limited.warn('transfer-socket-error', 'TFTP transfer socket error', { error: err.message });
    });
    const onAbort = (): void => end('failed', 'server closing');
    signal.addEventListener('abort', onAbort, { once: true });

    count('transfers.started');
    apply(session.start());
    try {
      await finished;
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (timer) clearTimeout(timer);
      sock.close();
      await queue;
      await source.close();
    }
  }

  const main = await bindSocket(opts.port ?? 69, opts.bindAddress);
  main.on('error', (err) => {
    count('socket-errors');
    limited.warn('server-socket-error', 'TFTP server socket error', { error: err.message });
  });
  main.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    if (closing) return;
    const client: Client = { address: rinfo.address, port: rinfo.port };
    let decision;
    try {
      decision = classifyRequest(msg);
    } catch {
      return drop('internal', client);
    }
    if (decision.kind === 'drop') return drop(decision.reason, client);
    if (decision.kind === 'refuse') {
      count(decision.counter);
      void replyError(client, decision.code, decision.message).catch(() => count('send-errors'));
      return;
    }
    count('rrq');
    const key = `${client.address}:${client.port}`;
    // A client that retransmits its request before our first reply must not start a second transfer.
    if (active.has(key)) return count('duplicate-rrq');
    if (active.size >= maxTransfers) {
      count('busy');
      void replyError(client, TftpErrorCode.NOT_DEFINED, 'server busy').catch(() => count('send-errors'));
      return;
    }
    const abort = new AbortController();
    const done = transfer(client, decision.filename, decision.mode, decision.options, abort.signal)
      .catch((err: unknown) => {
        count('transfer-errors');
        limited.warn('transfer-error', 'TFTP transfer error', { error: errorMessage(err) });
      })
      .finally(() => active.delete(key));
    active.set(key, { abort: () => abort.abort(), done });
  });
  const address = main.address();
  log.info('TFTP server listening', { address: address.address, port: address.port, root: opts.root });

  return {
    port: address.port,
    stats: () => ({ ...Object.fromEntries(counters), 'transfers.active': active.size }),
    async close() {
      if (closing) return;
      closing = true;
      const pending = [...active.values()];
      for (const t of pending) t.abort();
      await Promise.all(pending.map((t) => t.done));
      await new Promise<void>((resolve) => main.close(() => resolve()));
    },
  };
}
