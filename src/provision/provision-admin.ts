// What `ycluster dhcp|dns|boot` and the admin API share: read and change provisioning state in etcd.
import { safeUrl } from '../boot/boot-values.js';
import { bootDecision } from '../boot/http-routes.js';
import { renderBootScript, type BootPlan } from '../boot/ipxe.js';
import { Zone } from '../dns/records.js';
import { resolve } from '../dns/resolver.js';
import { RClass, Rcode, RType, type DnsRecord } from '../dns/types.js';
import { badInput, isYcError, notFound } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { isIpv4, normalizeMac, reverseName } from '../lib/net.js';
import { loadConfig } from '../inventory/allocate.js';
import type { StateClient } from '../state/client.js';
import { keys, keySuffix, prefixes } from '../state/keys.js';
import { BootSettingsSchema, type BootSettings } from '../state/schema.js';
import { EtcdBootLookup } from './boot-lookup.js';
import { CORE_PORTS } from './core-services-role.js';
import { clusterZoneRecords } from './dns-zone.js';
import { setInstallState, type InstallStateValue } from './install-state.js';
import { acquireCache, releaseCache } from './shared-cache.js';

export interface LeaseRow {
  mac: string;
  ip: string;
  hostname: string;
  expiresAt: string;
  expired: boolean;
}

export async function listLeases(state: StateClient, now = Date.now()): Promise<{ leases: LeaseRow[]; corrupt: { key: string; error: string }[] }> {
  const l = await state.list(prefixes.dhcpLeases);
  const leases = l.entries.map((e) => ({ ...e.value, expired: Date.parse(e.value.expiresAt) <= now })).sort((a, b) => a.mac.localeCompare(b.mac));
  return { leases, corrupt: l.corrupt };
}

export interface AllocationRow {
  mac: string;
  ip: string;
  hostname: string;
  type: string;
  typeSource: string;
  /** Expiry of the current lease, if the machine holds one. */
  leaseExpiresAt: string | null;
}

/** What DHCP hands out: every node's MAC, name and address (a MAC's address never changes with its lease). */
export async function listAllocations(state: StateClient): Promise<{ allocations: AllocationRow[]; corrupt: { key: string; error: string }[] }> {
  const [nodes, leases] = await Promise.all([state.list(prefixes.nodes), state.list(prefixes.dhcpLeases)]);
  const leaseOf = new Map(leases.entries.map((e) => [keySuffix(prefixes.dhcpLeases, e.key), e.value.expiresAt]));
  const allocations = nodes.entries
    .map(({ value: n }) => ({ mac: n.mac, ip: n.ip, hostname: n.hostname, type: n.type, typeSource: n.typeSource, leaseExpiresAt: leaseOf.get(n.mac) ?? null }))
    .sort((a, b) => a.hostname.localeCompare(b.hostname, 'en', { numeric: true }));
  return { allocations, corrupt: [...nodes.corrupt, ...leases.corrupt] };
}

/** Deletes the lease only; the node keeps its name and address, and gets them again on its next DISCOVER. */
export async function releaseLease(state: StateClient, macText: string): Promise<{ released: string; ip: string }> {
  const mac = normalizeMac(macText);
  const lease = await state.getValue(keys.dhcpLease(mac));
  if (!lease) throw notFound(`no DHCP lease for ${mac} (see ycluster dhcp leases)`);
  await state.delete(keys.dhcpLease(mac));
  return { released: mac, ip: lease.ip };
}

const LOOKUP_TYPES = { A: RType.A, PTR: RType.PTR, SRV: RType.SRV, NS: RType.NS, SOA: RType.SOA } as const;
export type LookupType = keyof typeof LOOKUP_TYPES;
const TYPE_NAMES = Object.fromEntries(Object.entries(RType).map(([k, v]) => [v, k])) as Record<number, string>;
const RCODE_NAMES = Object.fromEntries(Object.entries(Rcode).map(([k, v]) => [v, k])) as Record<number, string>;

export interface LookupResult {
  name: string;
  type: LookupType;
  rcode: string;
  answers: { name: string; type: string; ttl: number; data: DnsRecord['data'] }[];
}

export function parseLookupType(text: string | undefined): LookupType {
  const t = (text ?? 'A').toUpperCase();
  if (!(t in LOOKUP_TYPES)) throw badInput(`unknown record type "${text}": use ${Object.keys(LOOKUP_TYPES).join(', ')}`);
  return t as LookupType;
}

/**
 * Answers as the cluster's DNS servers would, from the same records, without a network query.
 * A bare host name gets the cluster domain; for PTR an IPv4 address becomes its in-addr.arpa name.
 */
export async function dnsLookup(state: StateClient, nameText: string, typeText?: string): Promise<LookupResult> {
  const type = parseLookupType(typeText);
  const raw = nameText.trim().replace(/\.$/, '').toLowerCase();
  if (!raw) throw badInput('dns lookup: missing NAME');
  const [nodes, config] = await Promise.all([state.list(prefixes.nodes), loadConfig(state)]);
  let name = raw;
  if (type === 'PTR' && isIpv4(raw)) name = reverseName(raw);
  else if (!raw.includes('.')) name = `${raw}.${config.domain}`;
  const zone = new Zone(config.domain, clusterZoneRecords(nodes.entries.map((e) => e.value), config), { reverseCidrs: [config.network] });
  const r = resolve(
    { id: 1, qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, ad: false, cd: false, rcode: 0, questions: [{ name, type: LOOKUP_TYPES[type], class: RClass.IN }], answers: [], authority: [], additional: [] },
    zone.view(),
  );
  if (r.kind === 'forward') throw badInput(`${name} is outside the cluster's zones (${config.domain} and the reverse zone of ${config.network}); ycluster dns lookup answers only cluster names`);
  if (r.kind === 'drop') throw badInput(`query for ${name} was not answerable: ${r.reason}`);
  return {
    name,
    type,
    rcode: RCODE_NAMES[r.response.rcode] ?? String(r.response.rcode),
    answers: r.response.answers.map((a) => ({ name: a.name, type: TYPE_NAMES[a.type] ?? String(a.type), ttl: a.ttl, data: a.data })),
  };
}

/** Base URL of the boot HTTP server a PXE client is sent to: the DHCP leader's, else the first core node's. */
async function bootServerBase(state: StateClient, nodes: readonly { hostname: string; ip: string; type: string }[]): Promise<string> {
  const leader = await state.getValue(keys.leader('dhcp')).catch(() => undefined);
  const host = nodes.find((n) => n.hostname === leader?.node) ?? [...nodes].filter((n) => n.type === 'core').sort((a, b) => a.ip.localeCompare(b.ip, 'en', { numeric: true }))[0];
  return `http://${host?.ip ?? '127.0.0.1'}:${CORE_PORTS.bootHttp}`;
}

export interface BootShow {
  mac: string;
  installState: InstallStateValue | null;
  plan: BootPlan;
  script: string;
}

/** What this MAC would boot now; nothing is written (an unknown MAC is not registered). */
export async function bootShow(state: StateClient, macText: string, logger: Logger): Promise<BootShow> {
  const mac = normalizeMac(macText);
  const cache = await acquireCache(state, logger);
  try {
    const lookup = new EtcdBootLookup(state, cache, await bootServerBase(state, cache.nodes()));
    const plan = await bootDecision(mac, lookup, { register: false });
    const installState = cache.nodeByMac(mac) ? await lookup.installState(mac) : null;
    return { mac, installState, plan, script: renderBootScript(plan) };
  } finally {
    await releaseCache(state);
  }
}

export type BootSettingsPatch = Partial<BootSettings>;

function checkUrl(flag: string, value: string | undefined): void {
  if (value === undefined) return;
  try {
    safeUrl(flag, value);
  } catch (err) {
    throw badInput(`${flag}: "${value}" is not usable in a boot script: ${isYcError(err) ? err.message.replace(/^boot config \S+ "[^"]*" /, '') : String(err)}`);
  }
}

/** Merges the patch into the stored settings, validates the result, writes it in one put. */
export async function configureBoot(state: StateClient, patch: BootSettingsPatch): Promise<BootSettings> {
  const current = await state.getValue(keys.bootSettings);
  const next = { sshAuthorizedKeys: [], ...current, ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) };
  const parsed = BootSettingsSchema.safeParse(next);
  if (!parsed.success) {
    const flag: Record<string, string> = { installerKernelUrl: '--kernel', installerInitrdUrl: '--initrd', isoUrl: '--iso', sshAuthorizedKeys: '--ssh-key', proxy: '--proxy', agentPackageUrl: '--agent-package' };
    const why = parsed.error.issues.map((i) => `${flag[String(i.path[0])] ?? String(i.path[0] ?? 'settings')} (${String(i.path[0] ?? '')}): ${i.message}`).join('; ');
    throw badInput(`boot settings not saved: ${why}`);
  }
  const s = parsed.data;
  checkUrl('--kernel', s.installerKernelUrl);
  checkUrl('--initrd', s.installerInitrdUrl);
  checkUrl('--iso', s.isoUrl);
  checkUrl('--proxy', s.proxy);
  checkUrl('--agent-package', s.agentPackageUrl);
  for (const k of s.sshAuthorizedKeys) {
    if (/[\r\n]/.test(k) || !/^(ssh-|ecdsa-|sk-)\S+ \S+/.test(k)) throw badInput(`--ssh-key: "${k.slice(0, 40)}" is not one OpenSSH public key line (type base64 [comment])`);
  }
  await state.put(keys.bootSettings, s);
  return s;
}

/** Marks a known node to install (or not) on its next network boot. */
export async function markNode(state: StateClient, macText: string, value: InstallStateValue): Promise<{ mac: string; hostname: string; installState: InstallStateValue }> {
  const mac = normalizeMac(macText);
  const node = await state.getValue(keys.nodeByMac(mac));
  if (!node) throw notFound(`no node with MAC ${mac} (see ycluster node list)`);
  await setInstallState(state, mac, value);
  return { mac, hostname: node.hostname, installState: value };
}
