import { accessSync, constants } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServiceSpec } from '../lib/supervisor.js';
import { asUser, ownedDir, userIds } from './postgres.js';

/** The exact state a missing binary reports (and the message its tests skip with). */
export const QDRANT_NOT_INSTALLED = 'qdrant binary not installed';

export interface QdrantServiceOptions {
  /** Path of the qdrant binary: there is no Debian or npm package, so it is configured. */
  binary: string;
  /** Storage and snapshots: on the mounted volume. */
  dataDir: string;
  host: string;
  httpPort: number;
  grpcPort: number;
  /** Runs as root when unset. */
  user?: string;
  logFile?: string;
  stopTimeoutMs?: number;
}

/** undefined when the binary can run; otherwise why not, starting with QDRANT_NOT_INSTALLED. */
export function qdrantUnavailable(o: Pick<QdrantServiceOptions, 'binary'>): string | undefined {
  try {
    accessSync(o.binary, constants.X_OK);
    return undefined;
  } catch {
    return `${QDRANT_NOT_INSTALLED} (${o.binary})`;
  }
}

/** Qdrant reads its settings from QDRANT__SECTION__KEY variables, so no config file is needed. */
export function qdrantEnv(o: QdrantServiceOptions): Record<string, string> {
  return {
    QDRANT__STORAGE__STORAGE_PATH: join(o.dataDir, 'storage'),
    QDRANT__STORAGE__SNAPSHOTS_PATH: join(o.dataDir, 'snapshots'),
    QDRANT__SERVICE__HOST: o.host,
    QDRANT__SERVICE__HTTP_PORT: String(o.httpPort),
    QDRANT__SERVICE__GRPC_PORT: String(o.grpcPort),
    QDRANT__TELEMETRY_DISABLED: 'true',
  };
}

export async function qdrantHealthy(o: Pick<QdrantServiceOptions, 'host' | 'httpPort'>, timeoutMs = 1000): Promise<boolean> {
  try {
    const res = await fetch(`http://${o.host}:${o.httpPort}/readyz`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

export function qdrantService(o: QdrantServiceOptions): ServiceSpec {
  const env = qdrantEnv(o);
  // setpriv --reset-env would drop the QDRANT__ settings, so pass them through env(1) after the switch.
  const argv = ['/usr/bin/env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), o.binary];
  const { command, args } = o.user ? asUser(o.user, argv) : { command: o.binary, args: [] };
  return {
    name: 'qdrant',
    command,
    args,
    env,
    cwd: o.dataDir,
    prepare: async () => {
      const why = qdrantUnavailable(o);
      if (why) throw new Error(why);
      if (o.user) await ownedDir(o.dataDir, await userIds(o.user), 0o750);
      else await mkdir(o.dataDir, { recursive: true, mode: 0o750 });
    },
    health: () => qdrantHealthy(o),
    healthIntervalMs: 1000,
    unhealthyRestartAfter: 10,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: o.stopTimeoutMs ?? 3000,
    ...(o.logFile ? { logFile: o.logFile } : {}),
  };
}
