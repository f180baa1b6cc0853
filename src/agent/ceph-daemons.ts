// The Ceph daemons of one node (mon, mgr, OSDs), each a supervised foreground process. Health comes from each
// daemon's admin socket (a local Unix socket: no cephx, no network, no python CLI), so checking every few
// seconds costs next to nothing on a small machine.
import { existsSync, readdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { YcError } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import type { Logger } from '../lib/log.js';
import { Supervised, type ServiceSpec, type ServiceStatus } from '../lib/supervisor.js';
import type { Check } from '../state/schema.js';
import type { CephDaemonsConfig } from './config.js';

export type CephDaemonType = 'mon' | 'mgr' | 'osd';

export interface CephDaemon {
  type: CephDaemonType;
  id: string;
  dataDir: string;
}

/** Start order; stop goes the other way (OSDs first, the mon last). */
export function cephDaemonList(cfg: CephDaemonsConfig): CephDaemon[] {
  return [
    ...(cfg.mon ? [{ type: 'mon' as const, ...cfg.mon }] : []),
    ...(cfg.mgr ? [{ type: 'mgr' as const, ...cfg.mgr }] : []),
    ...cfg.osds.map((o) => ({ type: 'osd' as const, id: String(o.id), dataDir: o.dataDir })),
  ];
}

export const daemonName = (d: Pick<CephDaemon, 'type' | 'id'>): string => `${d.type}.${d.id}`;

/**
 * One admin-socket command: the JSON request ends with a NUL byte; the reply is a 4-byte big-endian length
 * and that many bytes. Bounded by timeoutMs.
 */
export function asokCommand(socketPath: string, prefix: string, timeoutMs = 2000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new YcError('TIMEOUT', `admin socket ${socketPath}: no answer to ${prefix} in ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (err: Error | undefined, value?: unknown): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    sock.on('error', (err) => done(err));
    sock.on('connect', () => sock.write(JSON.stringify({ prefix, format: 'json' }) + '\0'));
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 4) return;
      const len = buf.readUInt32BE(0);
      if (buf.length < 4 + len) return;
      const text = buf.subarray(4, 4 + len).toString('utf8');
      try {
        done(undefined, text.trim() === '' ? {} : JSON.parse(text));
      } catch {
        done(new YcError('INTERNAL', `admin socket ${socketPath}: ${prefix} answered no JSON: ${text.slice(0, 100)}`));
      }
    });
    sock.on('end', () => done(new YcError('UNAVAILABLE', `admin socket ${socketPath}: closed before answering ${prefix}`)));
  });
}

/** What "healthy" means per daemon, read from its admin socket. */
export async function daemonHealthy(type: CephDaemonType, socketPath: string): Promise<boolean> {
  switch (type) {
    case 'mon': {
      const s = (await asokCommand(socketPath, 'mon_status')) as { state?: string };
      return s.state === 'leader' || s.state === 'peon';
    }
    case 'osd': {
      const s = (await asokCommand(socketPath, 'status')) as { state?: string };
      return s.state === 'active';
    }
    case 'mgr': {
      // The mgr has no state of its own to report here; answering its socket means its loop runs.
      await asokCommand(socketPath, 'version');
      return true;
    }
  }
}

/** The admin socket path ceph.conf gives this daemon ($cluster, $name expanded by ceph-conf itself). */
export async function adminSocketPath(conf: string, d: Pick<CephDaemon, 'type' | 'id'>): Promise<string> {
  const r = await run('ceph-conf', ['-c', conf, '--name', daemonName(d), '--show-config-value', 'admin_socket'], { timeoutMs: 10_000 });
  const path = r.stdout.trim();
  if (!path.startsWith('/')) throw new YcError('BAD_INPUT', `${conf}: no admin_socket path for ${daemonName(d)} ("${path}")`);
  return path;
}

/** A data dir that is missing (or, for a mon or OSD, empty) was never made: starting would only loop on errors. */
function requireMade(d: CephDaemon): void {
  // A mgr keeps nothing there when its key lives in the conf's keyring.
  if (!existsSync(d.dataDir) || (d.type !== 'mgr' && readdirSync(d.dataDir).length === 0)) {
    throw new YcError('BAD_INPUT', `${daemonName(d)}: data dir ${d.dataDir} is missing or empty (not made with --mkfs)`);
  }
}

/** The supervised spec of one daemon: foreground, health from its admin socket, bounded SIGTERM stop. */
export function cephDaemonSpec(conf: string, d: CephDaemon, logDir: string): ServiceSpec {
  let socket: string | undefined;
  return {
    name: `ceph-${daemonName(d)}`,
    command: `ceph-${d.type}`,
    args: ['-c', conf, '-f', '-i', d.id],
    logFile: join(logDir, `ceph-${daemonName(d)}.out`),
    prepare: async () => {
      requireMade(d);
      socket ??= await adminSocketPath(conf, d);
    },
    health: async () => (socket === undefined ? false : daemonHealthy(d.type, socket)),
    healthIntervalMs: 2000,
    // An OSD waiting for a lost mon is not cured by a restart: only a daemon silent for a minute is restarted.
    unhealthyRestartAfter: 30,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 5000,
  };
}

/** Every Ceph daemon of this node under supervision; checks are named ceph:mon.a, ceph:osd.0, ... */
export class CephDaemons {
  private readonly daemons: { d: CephDaemon; s: Supervised }[];

  constructor(cfg: CephDaemonsConfig, dataDir: string, logger: Logger) {
    const logDir = cfg.logDir ?? dataDir;
    this.daemons = cephDaemonList(cfg).map((d) => ({ d, s: new Supervised(cephDaemonSpec(cfg.conf, d, logDir), logger) }));
  }

  start(): void {
    for (const x of this.daemons) x.s.start();
  }

  /** OSDs first, then the mgr, the mon last; each bounded by its stop timeout. */
  async stop(): Promise<void> {
    for (const x of [...this.daemons].reverse()) {
      await x.s.stop().catch(() => undefined);
    }
  }

  checks(): Check[] {
    return this.daemons.map(({ d, s }) => {
      const st = s.status();
      const detail = st.healthy
        ? `${st.state}, pid ${st.pid ?? '-'}${st.restarts ? `, ${st.restarts} restarts` : ''}`
        : `${st.state}${st.lastError ? `: ${st.lastError}` : ''}`;
      return { name: `ceph:${daemonName(d)}`, ok: st.healthy, detail };
    });
  }

  services(): ServiceStatus[] {
    return this.daemons.map((x) => x.s.status());
  }
}
