// Redeeming the one-time join token an installed machine got in its user-data (BootLookup.issueJoinToken).
// Only the token's SHA-256 is stored; redeeming it deletes it in the same transaction that marks the node
// installed, so a token joins once, and a user-data fetched again (a new token) makes the old one useless.
import { createHash, timingSafeEqual } from 'node:crypto';
import { badInput } from '../lib/errors.js';
import { normalizeMac } from '../lib/net.js';
import { loadConfig } from '../inventory/allocate.js';
import type { StateClient } from '../state/client.js';
import { encodeValue } from '../state/codec.js';
import { keys, prefixes } from '../state/keys.js';
import type { NodeType } from '../state/schema.js';

export const ETCD_CLIENT_PORT = 2379;
/** Where agents serve the admin API (AgentConfig apiPort's default). */
export const ADMIN_API_PORT = 8080;
/** Same characters as the boot side accepts (src/boot/boot-values.ts safeToken). */
const TOKEN = /^[A-Za-z0-9._~+/=-]{16,512}$/;

/** What a joining agent needs before it can talk to etcd itself. */
export interface JoinGrant {
  mac: string;
  hostname: string;
  fqdn: string;
  ip: string;
  type: NodeType;
  domain: string;
  gatewayVip: string;
  /** Client endpoints of every core node's etcd member, host:port. */
  etcdEndpoints: string[];
  joinedAt: string;
}

export type JoinRefusal = { status: 403 | 404 | 409; error: 'JOIN_REFUSED' | 'NOT_FOUND' | 'CONFLICT'; reason: string };
export type JoinResult = { ok: true; grant: JoinGrant } | ({ ok: false } & JoinRefusal);

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();
const refuse = (reason: string): JoinResult => ({ ok: false, status: 403, error: 'JOIN_REFUSED', reason });

/** Checks the shape of a request; a malformed MAC or token is BAD_INPUT (400), never a refusal. */
export function parseJoinRequest(mac: unknown, token: unknown): { mac: string; token: string } {
  if (typeof mac !== 'string' || typeof token !== 'string') throw badInput('join: mac and token must be strings');
  if (!TOKEN.test(token)) throw badInput('join: malformed token (16-512 characters of A-Z a-z 0-9 . _ ~ + / = -)');
  return { mac: normalizeMac(mac), token };
}

/**
 * One redemption. Refusals (no token on record, used already, expired, wrong) are 403 with a reason the
 * agent logs; they are not retryable. A token that changed during the check (a concurrent redemption, or a
 * new user-data) is 409: the loser of a race never joins too.
 */
export async function redeemJoinToken(state: StateClient, request: { mac: string; token: string }, now = Date.now()): Promise<JoinResult> {
  const { mac, token } = parseJoinRequest(request.mac, request.token);
  const stored = await state.get(keys.joinToken(mac));
  if (!stored) return refuse(`no join token on record for ${mac}: it was never issued, or has been used already`);
  const expiresAt = Date.parse(stored.value.expiresAt);
  if (!(expiresAt > now)) return refuse(`the join token for ${mac} expired at ${stored.value.expiresAt}; fetch the user-data again (reinstall) for a new one`);
  if (!timingSafeEqual(sha256(token), Buffer.from(stored.value.sha256, 'hex'))) return refuse(`wrong join token for ${mac}`);
  const node = await state.get(keys.nodeByMac(mac));
  if (!node) return { ok: false, status: 404, error: 'NOT_FOUND', reason: `no node with MAC ${mac} (removed after its token was issued?)` };
  const config = await loadConfig(state);
  const joinedAt = new Date(now).toISOString();
  const installState = keys.installState(mac);
  const applied = await state.txn({
    compare: [
      { key: stored.key, target: 'mod', equals: stored.modRevision },
      { key: node.key, target: 'mod', equals: node.modRevision },
    ],
    deletes: [stored.key],
    puts: [{ key: installState.key, value: encodeValue(installState, { state: 'installed', at: joinedAt }) }],
  });
  if (!applied) return { ok: false, status: 409, error: 'CONFLICT', reason: `the join token or node record of ${mac} changed during the join (used concurrently, or reissued); not joined` };
  const cores = (await state.list(prefixes.nodes)).entries
    .map((e) => e.value)
    .filter((n) => n.type === 'core')
    .sort((a, b) => a.hostname.localeCompare(b.hostname, 'en', { numeric: true }));
  const n = node.value;
  return {
    ok: true,
    grant: {
      mac,
      hostname: n.hostname,
      fqdn: `${n.hostname}.${config.domain}`,
      ip: n.ip,
      type: n.type,
      domain: config.domain,
      gatewayVip: config.gatewayVip,
      etcdEndpoints: cores.map((c) => `${c.ip}:${ETCD_CLIENT_PORT}`),
      joinedAt,
    },
  };
}
