import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServiceSpec } from '../lib/supervisor.js';
import { asUser, ownedDir, userIds } from './postgres.js';

export interface RegistryServiceOptions {
  /** Blob and manifest storage: on the mounted volume. */
  dataDir: string;
  /** Node-private directory for the generated config. */
  runDir: string;
  /** host:port the registry listens on, e.g. "127.0.0.1:5000". */
  addr: string;
  user?: string;
  logFile?: string;
  stopTimeoutMs?: number;
}

/** Our own config: Debian's shipped one turns on htpasswd auth on :5000. No auth here; access is the network's job. */
export function renderRegistryConfig(o: Pick<RegistryServiceOptions, 'dataDir' | 'addr'>): string {
  return [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(o.dataDir)}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${JSON.stringify(o.addr)}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
    '',
  ].join('\n');
}

export const registryConfigPath = (o: Pick<RegistryServiceOptions, 'runDir'>): string => join(o.runDir, 'registry.yml');

export async function prepareRegistry(o: RegistryServiceOptions): Promise<void> {
  const user = o.user ?? 'docker-registry';
  const ids = await userIds(user);
  await ownedDir(o.runDir, ids, 0o755);
  await ownedDir(o.dataDir, ids, 0o750);
  const path = registryConfigPath(o);
  await writeFile(`${path}.tmp`, renderRegistryConfig(o), { mode: 0o644 });
  await rename(`${path}.tmp`, path);
}

export async function registryHealthy(addr: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const res = await fetch(`http://${addr}/v2/`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** Debian's docker-registry (distribution 2.8) in the foreground as its own user. */
export function registryService(o: RegistryServiceOptions): ServiceSpec {
  const { command, args } = asUser(o.user ?? 'docker-registry', ['/usr/bin/docker-registry', 'serve', registryConfigPath(o)]);
  return {
    name: 'registry',
    command,
    args,
    prepare: () => prepareRegistry(o),
    health: () => registryHealthy(o.addr),
    healthIntervalMs: 1000,
    unhealthyRestartAfter: 10,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: o.stopTimeoutMs ?? 3000,
    ...(o.logFile ? { logFile: o.logFile } : {}),
  };
}
