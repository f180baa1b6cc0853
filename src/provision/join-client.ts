// The joining side of src/provision/join.ts. First start of an installed machine: its config is the installer's
// bootstrap file (src/boot/autoinstall.ts, with a one-time join token and no etcd endpoints). Redeem the token at
// the admin API (POST /api/join), then replace the file with a full agent config, without the token, so every
// later start skips this. Used by the agent (src/agent/join.ts) and by `ycluster join`.
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { YcError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { normalizeMac } from '../lib/net.js';
import { backoffMs, sleep } from '../lib/time.js';
import { NodeTypeSchema } from '../state/schema.js';

export const DEFAULT_DATA_DIR = '/var/lib/ycluster';

export const BootstrapConfigSchema = z
  .object({
    serverUrl: z.string(),
    mac: z.string(),
    hostname: z.string(),
    fqdn: z.string(),
    ip: z.string(),
    type: NodeTypeSchema,
    joinToken: z.string(),
    apiUrls: z.array(z.string().url()).min(1),
    cephDataDevice: z.string().optional(),
  })
  .strict();
export type BootstrapConfig = z.infer<typeof BootstrapConfigSchema>;

export const JoinGrantSchema = z.object({
  mac: z.string(),
  hostname: z.string(),
  fqdn: z.string(),
  ip: z.string(),
  type: NodeTypeSchema,
  domain: z.string(),
  gatewayVip: z.string(),
  etcdEndpoints: z.array(z.string()).min(1),
  joinedAt: z.string(),
});
export type JoinGrantReply = z.infer<typeof JoinGrantSchema>;

export interface JoinOptions {
  fetch?: typeof fetch;
  /** Per request. */
  timeoutMs?: number;
  /** Rounds over all URLs before giving up (network errors, 5xx, 409); a refusal (4xx) ends at once. */
  rounds?: number;
  logger?: Logger;
}

/** Presents MAC and token to each admin API URL in turn until one answers. */
export async function redeemJoin(boot: Pick<BootstrapConfig, 'mac' | 'joinToken' | 'apiUrls'>, opts: JoinOptions = {}): Promise<JoinGrantReply> {
  const doFetch = opts.fetch ?? fetch;
  const rounds = opts.rounds ?? 5;
  let last = 'no admin API URL';
  for (let round = 0; round < rounds; round++) {
    if (round > 0) await sleep(backoffMs(round, 500, 5_000));
    for (const base of boot.apiUrls) {
      const url = `${base.replace(/\/+$/, '')}/api/join`;
      let res: Response;
      try {
        res = await doFetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ mac: boot.mac, token: boot.joinToken }),
          signal: AbortSignal.timeout(opts.timeoutMs ?? 5_000),
        });
      } catch (err) {
        last = `${url}: ${errorMessage(err)}`;
        opts.logger?.warn('join: admin API unreachable', { url, error: errorMessage(err) });
        continue;
      }
      const body = (await res.json().catch(() => ({}))) as { reason?: string };
      if (res.status === 200) {
        const grant = JoinGrantSchema.safeParse(body);
        if (!grant.success) throw new YcError('INTERNAL', `join: ${url} answered 200 with an unexpected body`);
        if (normalizeMac(grant.data.mac) !== normalizeMac(boot.mac)) throw new YcError('INTERNAL', `join: ${url} answered for MAC ${grant.data.mac}`);
        return grant.data;
      }
      last = `${url}: ${res.status} ${body.reason ?? ''}`.trim();
      // A refusal is the same from every core node: the token is spent, expired or wrong. Only a race (409) or a
      // server-side failure is worth asking again.
      if (res.status >= 400 && res.status < 500 && res.status !== 409) throw new YcError('BAD_INPUT', `join refused by ${url} (${res.status}): ${body.reason ?? 'no reason given'}`, { retryable: false });
      opts.logger?.warn('join: admin API did not grant', { url, status: res.status, reason: body.reason });
    }
  }
  throw new YcError('UNAVAILABLE', `join: no admin API granted the join after ${rounds} rounds; last: ${last}`);
}

/** The interface that carries this MAC (the installed system's names differ from the installer's). */
export function interfaceByMac(mac: string, sysNet = '/sys/class/net'): string | undefined {
  const want = normalizeMac(mac);
  if (!existsSync(sysNet)) return undefined;
  for (const dev of readdirSync(sysNet).sort()) {
    try {
      if (normalizeMac(readFileSync(join(sysNet, dev, 'address'), 'utf8').trim()) === want) return dev;
    } catch {
      // Not every entry has a MAC (lo has 00:00:..., some virtual devices none at all).
    }
  }
  return undefined;
}

/** The agent config (src/agent/config.ts AgentConfigSchema) a granted join leads to. */
export function agentConfigFromGrant(grant: JoinGrantReply, opts: { dataDir?: string; iface?: string } = {}): Record<string, unknown> {
  return {
    mac: normalizeMac(grant.mac),
    reportedType: grant.type,
    hostname: grant.hostname,
    ip: grant.ip,
    etcdEndpoints: grant.etcdEndpoints,
    dataDir: opts.dataDir ?? DEFAULT_DATA_DIR,
    ...(opts.iface ? { interface: opts.iface } : {}),
  };
}

export type EnsureJoined = { joined: false } | { joined: true; grant: JoinGrantReply };

/**
 * If the file at `path` is a bootstrap config, joins and rewrites it as an agent config (atomically, mode
 * 0600); if it already is an agent config (has etcdEndpoints), does nothing. A refused join throws and leaves
 * the file as it was.
 */
export async function ensureJoined(path: string, opts: JoinOptions & { dataDir?: string; sysNet?: string } = {}): Promise<EnsureJoined> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new YcError('BAD_INPUT', `cannot read agent config ${path}: ${errorMessage(err)}`);
  }
  if (raw && typeof raw === 'object' && 'etcdEndpoints' in raw) return { joined: false };
  const boot = BootstrapConfigSchema.safeParse(raw);
  if (!boot.success) throw new YcError('BAD_INPUT', `${path} is neither an agent config nor a bootstrap config: ${boot.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const grant = await redeemJoin(boot.data, opts);
  const iface = interfaceByMac(boot.data.mac, opts.sysNet);
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(agentConfigFromGrant(grant, { ...(opts.dataDir ? { dataDir: opts.dataDir } : {}), ...(iface ? { iface } : {}) }), null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
  opts.logger?.info('joined the cluster', { hostname: grant.hostname, ip: grant.ip, type: grant.type, etcd: grant.etcdEndpoints.join(',') });
  return { joined: true, grant };
}
