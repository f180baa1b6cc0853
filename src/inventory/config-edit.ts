import { YcError, badInput } from '../lib/errors.js';
import { cidrContains, parseCidr, parseIpv4 } from '../lib/net.js';
import type { StateClient } from '../state/client.js';
import { encodeValue } from '../state/codec.js';
import { keys } from '../state/keys.js';
import { ClusterConfigSchema, RANGE_KINDS, defaultConfig, type ClusterConfig } from '../state/schema.js';

/** Checks that go beyond the schema: every address inside the network, ranges ordered and disjoint, VIPs outside ranges. */
export function semanticErrors(c: ClusterConfig): string[] {
  const errors: string[] = [];
  const net = parseCidr(c.network);
  const inNet = (label: string, ip: string): void => {
    if (!cidrContains(net, parseIpv4(ip))) errors.push(`${label} ${ip} is outside the network ${c.network}`);
  };
  inNet('gatewayVip', c.gatewayVip);
  inNet('storageVip', c.storageVip);
  if (c.gatewayVip === c.storageVip) errors.push('gatewayVip and storageVip must differ');
  const spans = RANGE_KINDS.map((k) => ({ k, start: parseIpv4(c.ranges[k].start), end: parseIpv4(c.ranges[k].end) }));
  for (const s of spans) {
    inNet(`ranges.${s.k}.start`, c.ranges[s.k].start);
    inNet(`ranges.${s.k}.end`, c.ranges[s.k].end);
    if (s.start > s.end) errors.push(`ranges.${s.k}: start is after end`);
    for (const vip of [c.gatewayVip, c.storageVip]) {
      const v = parseIpv4(vip);
      if (v >= s.start && v <= s.end) errors.push(`VIP ${vip} lies inside ranges.${s.k}`);
    }
  }
  for (let i = 0; i < spans.length; i++)
    for (let j = i + 1; j < spans.length; j++) {
      const a = spans[i]!;
      const b = spans[j]!;
      if (a.start <= b.end && b.start <= a.end) errors.push(`ranges.${a.k} and ranges.${b.k} overlap`);
    }
  return errors;
}

/** Sets one field by dotted path (e.g. ranges.compute.end); the value is parsed as JSON when it can be. */
export function applySetting(config: ClusterConfig, path: string, rawValue: string): ClusterConfig {
  const parts = path.split('.');
  const next = structuredClone(config) as unknown as Record<string, unknown>;
  let cursor: Record<string, unknown> = next;
  for (const p of parts.slice(0, -1)) {
    const child = cursor[p];
    if (typeof child !== 'object' || child === null || Array.isArray(child)) throw badInput(`unknown config key "${path}"`);
    cursor = child as Record<string, unknown>;
  }
  const leaf = parts.at(-1)!;
  if (!(leaf in cursor)) throw badInput(`unknown config key "${path}"`);
  let value: unknown = rawValue;
  try {
    value = JSON.parse(rawValue);
  } catch {
    /* a bare string */
  }
  cursor[leaf] = value;
  return validateConfig(next);
}

export function validateConfig(candidate: unknown): ClusterConfig {
  const parsed = ClusterConfigSchema.safeParse(candidate);
  if (!parsed.success) throw badInput(`invalid config: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const errors = semanticErrors(parsed.data);
  if (errors.length) throw badInput(`invalid config: ${errors.join('; ')}`);
  return parsed.data;
}

/** Read-modify-write guarded by the config's revision, so two operators never overwrite each other. */
export async function updateConfig(state: StateClient, change: (c: ClusterConfig) => ClusterConfig): Promise<ClusterConfig> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await state.get(keys.config);
    const next = validateConfig(change(current?.value ?? defaultConfig));
    const ok = await state.txn({
      compare: [{ key: keys.config.key, target: current ? 'mod' : 'create', equals: current ? current.modRevision : 0 }],
      puts: [{ key: keys.config.key, value: encodeValue(keys.config, next) }],
    });
    if (ok) return next;
  }
  throw new YcError('CONFLICT', 'the config kept changing while updating it; try again', { retryable: true });
}
