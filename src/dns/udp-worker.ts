/**
 * A UDP worker process (forked by workers.ts): answers datagrams on the server's bound UDP
 * sockets, handed over the IPC channel, from its own copy of the zone. The kernel spreads
 * datagrams across every process reading the socket. Forwarding uses the worker's own Forwarder.
 */
import dgram from 'node:dgram';
import { errorMessage } from '../lib/errors.js';
import { RateLimitedLog, type Logger } from '../lib/log.js';
import { Forwarder } from './forwarder.js';
import { Zone, type ZoneSpec, type ZoneView } from './records.js';
import { CacheHolder, Responder } from './responder.js';
import { literalLookup } from './udp-internals.js';
import { tagOf, type FromWorker, type ToWorker } from './worker-protocol.js';

function send(m: FromWorker): void {
  if (process.connected) process.send!(m);
}

/** Logs go to the server process, which writes them with its own logger and fields. */
function ipcLogger(base: Record<string, unknown> = {}): Logger {
  const emit = (level: 'debug' | 'info' | 'warn' | 'error') => (msg: string, fields?: Record<string, unknown>): void =>
    send({ t: 'log', level, msg, fields: { ...base, ...fields } });
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error'), child: (f) => ipcLogger({ ...base, ...f }) };
}

const log = ipcLogger();
const drops = new RateLimitedLog(log);
let view: ZoneView | undefined;
let holder: CacheHolder | undefined;
let forwarder: Forwarder | undefined;
const sockets = new Map<string, { udp: dgram.Socket; responder: Responder }>();
let lastStats = '';

function setZone(gen: number, spec: ZoneSpec): boolean {
  try {
    view = new Zone(spec.domain, spec.records, spec.options).view();
    holder?.current();
    return true;
  } catch (err) {
    // The parent validated these records; failing here is a bug, and the old zone keeps serving.
    log.error('DNS worker could not build the zone', { gen, error: errorMessage(err) });
    return false;
  }
}

function reportStats(force: boolean): void {
  const out: Record<string, Record<string, number>> = {};
  for (const [id, s] of sockets) out[id] = s.responder.counters;
  const text = JSON.stringify(out);
  if (!force && text === lastStats) return;
  lastStats = text;
  send({ t: 'stats', sockets: out });
}

function attach(id: string, udp: dgram.Socket): void {
  if (sockets.has(id)) {
    // A second copy of a socket we serve: keep reading the first.
    udp.close(() => send({ t: 'attached', id }));
    return;
  }
  if (!holder || !forwarder) {
    log.error('DNS worker got a socket it cannot serve', { id, ready: !!holder });
    // Closed this copy only: the socket the server and other workers hold stays open.
    udp.close(() => send({ t: 'detached', id }));
    return;
  }
  if (!literalLookup(udp)) log.warn('DNS worker: replies go through dns.lookup (slower): this Node has no UDP handle to patch');
  const responder = new Responder(holder, forwarder, log.child({ socket: id }), drops);
  udp.on('message', responder.udpListener(udp));
  udp.on('error', (err) => log.warn('DNS UDP socket error', { socket: id, error: err.message }));
  sockets.set(id, { udp, responder });
  send({ t: 'attached', id });
}

function detach(id: string): void {
  const s = sockets.get(id);
  if (!s) {
    send({ t: 'detached', id });
    return;
  }
  reportStats(true);
  sockets.delete(id);
  s.udp.close(() => send({ t: 'detached', id }));
}

async function init(m: Extract<ToWorker, { t: 'init' }>): Promise<void> {
  if (!setZone(m.gen, m.zone)) throw new Error('initial zone rejected');
  holder = new CacheHolder(() => view!);
  forwarder = await Forwarder.create({ upstreams: m.init.upstreams, timeoutMs: m.init.forwardTimeoutMs, logger: log });
  setInterval(() => reportStats(false), m.init.statsIntervalMs).unref();
  send({ t: 'ready', gen: m.gen });
}

process.on('message', (raw: unknown, handle: unknown) => {
  const m = raw as ToWorker;
  switch (tagOf(raw)) {
    case 'init':
      init(m as Extract<ToWorker, { t: 'init' }>).catch((err: unknown) => {
        log.error('DNS worker failed to start', { error: errorMessage(err) });
        process.exit(1);
      });
      break;
    case 'zone': {
      const z = m as Extract<ToWorker, { t: 'zone' }>;
      if (setZone(z.gen, z.zone)) send({ t: 'zone-ack', gen: z.gen });
      break;
    }
    case 'socket':
      if (handle instanceof dgram.Socket) attach((m as Extract<ToWorker, { t: 'socket' }>).id, handle);
      else log.error('DNS worker: socket message without a UDP socket');
      break;
    case 'detach':
      detach((m as Extract<ToWorker, { t: 'detach' }>).id);
      break;
    case 'stats?':
      reportStats(true);
      break;
    default:
      log.warn('DNS worker: unknown message', { tag: tagOf(raw) });
  }
});

// The server process is gone (or closed the channel): nobody keeps our zone current, so stop answering.
process.on('disconnect', () => process.exit(0));
if (!process.send) {
  process.stderr.write('udp-worker.ts is started by the DNS server (child_process.fork), not by hand\n');
  process.exit(2);
}
