import { YcError, badInput } from '../lib/errors.js';
import { formatIpv4, normalizeMac, parseIpv4 } from '../lib/net.js';
import { sleep } from '../lib/time.js';
import type { StateClient } from '../state/client.js';
import { encodeValue } from '../state/codec.js';
import { keys, keySuffix, prefixes } from '../state/keys.js';
import { NodeTypeSchema, defaultConfig, type ClusterConfig, type NodeRecord, type NodeType } from '../state/schema.js';
import { RANGE_OF, SERIES, seriesNumber } from './node-types.js';
import { decideType } from './type-rules.js';

export interface AllocateRequest {
  mac: string;
  reportedType?: string;
  /** An operator's explicit choice (CLI `node add --type`): wins over rules. */
  operatorType?: NodeType;
  /** Name and address the installer already gave the node (core nodes at bootstrap): used when free and valid. */
  preferredHostname?: string;
  preferredIp?: string;
}

export async function loadConfig(state: StateClient): Promise<ClusterConfig> {
  return (await state.getValue(keys.config)) ?? defaultConfig;
}

export function parseNodeType(input: string): NodeType {
  const parsed = NodeTypeSchema.safeParse(input);
  if (!parsed.success) throw badInput(`unknown node type "${input}": expected one of ${NodeTypeSchema.options.join(', ')}`);
  return parsed.data;
}

/** The node for a MAC, allocating a name and address in one transaction when it is new. Concurrency-safe. */
export async function allocateNode(state: StateClient, req: AllocateRequest): Promise<{ node: NodeRecord; created: boolean }> {
  const mac = normalizeMac(req.mac);
  const reported = req.reportedType === undefined ? undefined : parseNodeType(req.reportedType);
  for (let attempt = 0; attempt < 50; attempt++) {
    const existing = await state.getValue(keys.nodeByMac(mac));
    if (existing) return { node: existing, created: false };
    const config = await loadConfig(state);
    const [registration, rules, names, ips] = await Promise.all([
      state.getValue(keys.registration(mac)),
      state.list(prefixes.macRules),
      state.list(prefixes.nodeNames),
      state.list(prefixes.nodeIps),
    ]);
    const decided = req.operatorType
      ? { type: req.operatorType, source: 'operator' as const }
      : decideType(mac, registration?.type, rules.entries.map((e) => e.value), reported);
    const taken = new Set(names.entries.map((e) => keySuffix(prefixes.nodeNames, e.key)));
    const usedIps = new Set(ips.entries.map((e) => keySuffix(prefixes.nodeIps, e.key)));
    const preferredName = req.preferredHostname !== undefined && seriesNumber(req.preferredHostname, SERIES[decided.type]) !== undefined && !taken.has(req.preferredHostname) ? req.preferredHostname : undefined;
    const hostname = preferredName ?? firstFreeName(SERIES[decided.type], taken);
    const type = finalType(decided.type, hostname, config);
    const ip = req.preferredIp !== undefined && !usedIps.has(req.preferredIp) && inRange(config, type, req.preferredIp) ? req.preferredIp : firstFreeIp(config, type, usedIps);
    const node: NodeRecord = { mac, hostname, ip, type, typeSource: decided.source, createdAt: new Date().toISOString() };
    const ok = await state.txn({
      compare: [keys.nodeByMac(mac), keys.nodeByName(hostname), keys.nodeByIp(ip)].map((d) => ({ key: d.key, target: 'create' as const, equals: 0 })),
      puts: [
        { key: keys.nodeByMac(mac).key, value: encodeValue(keys.nodeByMac(mac), node) },
        { key: keys.nodeByName(hostname).key, value: encodeValue(keys.nodeByName(hostname), { mac }) },
        { key: keys.nodeByIp(ip).key, value: encodeValue(keys.nodeByIp(ip), { mac }) },
      ],
    });
    if (ok) return { node, created: true };
    // Lost a race for the name or address to another allocator: re-read and try the next free one.
    await sleep(Math.random() * 20 * Math.min(attempt + 1, 5));
  }
  throw new YcError('CONFLICT', `could not allocate ${mac}: too much contention`, { retryable: true });
}

/** The first `coreCount` storage-series nodes are core nodes. */
export function finalType(type: NodeType, hostname: string, config: ClusterConfig): NodeType {
  if (type !== 'storage' && type !== 'core') return type;
  const n = seriesNumber(hostname, 's');
  return n !== undefined && n <= config.coreCount ? 'core' : type === 'core' ? 'core' : 'storage';
}

export function firstFreeName(letter: string, taken: ReadonlySet<string>): string {
  for (let n = 1; n < 10_000; n++) if (!taken.has(`${letter}${n}`)) return `${letter}${n}`;
  throw new YcError('RANGE_FULL', `no free host name in series ${letter}`);
}

function inRange(config: ClusterConfig, type: NodeType, ip: string): boolean {
  const range = config.ranges[RANGE_OF[type]];
  const n = parseIpv4(ip);
  return n >= parseIpv4(range.start) && n <= parseIpv4(range.end) && ip !== config.gatewayVip && ip !== config.storageVip;
}

export function firstFreeIp(config: ClusterConfig, type: NodeType, used: ReadonlySet<string>): string {
  const kind = RANGE_OF[type];
  const range = config.ranges[kind];
  const reserved = new Set([config.gatewayVip, config.storageVip]);
  for (let n = parseIpv4(range.start); n <= parseIpv4(range.end); n++) {
    const ip = formatIpv4(n);
    if (!used.has(ip) && !reserved.has(ip)) return ip;
  }
  throw new YcError('RANGE_FULL', `address range for ${kind} nodes (${range.start}–${range.end}) is full`, { retryable: false, detail: { kind } });
}

/** Removes a node and its indexes together; fails if it changed meanwhile. */
export async function removeNode(state: StateClient, macOrName: string): Promise<NodeRecord> {
  const found = await findNode(state, macOrName);
  if (!found) throw new YcError('NOT_FOUND', `no node "${macOrName}"`);
  const { node, modRevision } = found;
  const ok = await state.txn({
    compare: [{ key: keys.nodeByMac(node.mac).key, target: 'mod', equals: modRevision }],
    deletes: [keys.nodeByMac(node.mac).key, keys.nodeByName(node.hostname).key, keys.nodeByIp(node.ip).key, keys.drain(node.hostname).key],
  });
  if (!ok) throw new YcError('CONFLICT', `node ${node.hostname} changed while removing it; try again`, { retryable: true });
  return node;
}

/** Finds a node by MAC, host name or IP. */
export async function findNode(state: StateClient, ref: string): Promise<{ node: NodeRecord; modRevision: number } | undefined> {
  let mac: string | undefined;
  if (/^([0-9a-fA-F]{2}[:-]?){5}[0-9a-fA-F]{2}$/.test(ref)) mac = normalizeMac(ref);
  else if (/^\d+\.\d+\.\d+\.\d+$/.test(ref)) mac = (await state.getValue(keys.nodeByIp(ref)))?.mac;
  else if (/^[a-z][a-z0-9-]*$/.test(ref)) mac = (await state.getValue(keys.nodeByName(ref)))?.mac;
  else throw badInput(`"${ref}" is not a MAC address, host name or IPv4 address`);
  if (!mac) return undefined;
  const got = await state.get(keys.nodeByMac(mac));
  return got ? { node: got.value, modRevision: got.modRevision } : undefined;
}

/** Changes a node's type: a new series means a new name and address, moved in one transaction. */
export async function setNodeType(state: StateClient, ref: string, typeText: string): Promise<NodeRecord> {
  const type = parseNodeType(typeText);
  for (let attempt = 0; attempt < 20; attempt++) {
    const found = await findNode(state, ref);
    if (!found) throw new YcError('NOT_FOUND', `no node "${ref}"`);
    const old = found.node;
    if (old.type === type) return old;
    const config = await loadConfig(state);
    const sameSeries = SERIES[old.type] === SERIES[type] && RANGE_OF[old.type] === RANGE_OF[type];
    let hostname = old.hostname;
    let ip = old.ip;
    if (!sameSeries) {
      const [names, ips] = await Promise.all([state.list(prefixes.nodeNames), state.list(prefixes.nodeIps)]);
      hostname = firstFreeName(SERIES[type], new Set(names.entries.map((e) => keySuffix(prefixes.nodeNames, e.key))));
      ip = firstFreeIp(config, type, new Set(ips.entries.map((e) => keySuffix(prefixes.nodeIps, e.key))));
    }
    const node: NodeRecord = { ...old, type, hostname, ip, typeSource: 'operator' };
    const compare: { key: string; target: 'create' | 'mod'; equals: number }[] = [{ key: keys.nodeByMac(old.mac).key, target: 'mod', equals: found.modRevision }];
    const puts = [{ key: keys.nodeByMac(old.mac).key, value: encodeValue(keys.nodeByMac(old.mac), node) }];
    const deletes: string[] = [];
    if (!sameSeries) {
      compare.push({ key: keys.nodeByName(hostname).key, target: 'create', equals: 0 }, { key: keys.nodeByIp(ip).key, target: 'create', equals: 0 });
      puts.push({ key: keys.nodeByName(hostname).key, value: encodeValue(keys.nodeByName(hostname), { mac: old.mac }) });
      puts.push({ key: keys.nodeByIp(ip).key, value: encodeValue(keys.nodeByIp(ip), { mac: old.mac }) });
      deletes.push(keys.nodeByName(old.hostname).key, keys.nodeByIp(old.ip).key);
    }
    if (await state.txn({ compare, puts, deletes })) return node;
  }
  throw new YcError('CONFLICT', `could not change the type of ${ref}: too much contention`, { retryable: true });
}
