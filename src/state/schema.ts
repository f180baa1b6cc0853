import { z } from 'zod';
import { isIpv4, isMac, parseCidr } from '../lib/net.js';

export const NODE_TYPES = ['core', 'storage', 'compute', 'macos', 'frontend'] as const;
export const NodeTypeSchema = z.enum(NODE_TYPES);
export type NodeType = z.infer<typeof NodeTypeSchema>;

const ipv4 = z.string().refine(isIpv4, 'not an IPv4 address');
const mac = z.string().refine(isMac, 'not a normalized MAC address (aa:bb:cc:dd:ee:ff)');
const cidr = z.string().refine((s) => {
  try {
    parseCidr(s);
    return true;
  } catch {
    return false;
  }
}, 'not a CIDR like 10.0.0.0/24');
const hostname = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'not a host name');

export const RangeSchema = z.object({ start: ipv4, end: ipv4 }).strict();
export type Range = z.infer<typeof RangeSchema>;

/** The address pools by hostname series; core nodes are storage-series nodes, so they share its range. */
export const RANGE_KINDS = ['storage', 'compute', 'macos', 'frontend'] as const;
export type RangeKind = (typeof RANGE_KINDS)[number];

export const ClusterConfigSchema = z
  .object({
    network: cidr,
    domain: z.string().regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/, 'not a DNS domain'),
    gatewayVip: ipv4,
    storageVip: ipv4,
    ranges: z.object({ storage: RangeSchema, compute: RangeSchema, macos: RangeSchema, frontend: RangeSchema }).strict(),
    /** How many storage-series nodes (the first ones) are core nodes. */
    coreCount: z.number().int().min(1).max(7),
    electionTtlSeconds: z.number().int().min(2).max(60),
    dnsUpstreams: z.array(z.string()).max(8),
    dhcpLeaseSeconds: z.number().int().min(60).max(7 * 86400),
  })
  .strict();
export type ClusterConfig = z.infer<typeof ClusterConfigSchema>;

export const defaultConfig: ClusterConfig = {
  network: '10.0.0.0/24',
  domain: 'cluster.local',
  gatewayVip: '10.0.0.254',
  storageVip: '10.0.0.100',
  ranges: {
    storage: { start: '10.0.0.11', end: '10.0.0.30' },
    compute: { start: '10.0.0.51', end: '10.0.0.70' },
    macos: { start: '10.0.0.71', end: '10.0.0.90' },
    frontend: { start: '10.0.0.91', end: '10.0.0.99' },
  },
  coreCount: 3,
  electionTtlSeconds: 3,
  dnsUpstreams: [],
  dhcpLeaseSeconds: 3600,
};

export const NodeRecordSchema = z
  .object({
    mac,
    hostname,
    ip: ipv4,
    type: NodeTypeSchema,
    /** Where the type came from: registration, rule, reported or default. */
    typeSource: z.enum(['registration', 'rule', 'reported', 'default', 'operator']),
    createdAt: z.string(),
  })
  .strict();
export type NodeRecord = z.infer<typeof NodeRecordSchema>;

/** Secondary indexes point back to the MAC, the primary key. */
export const NodeIndexSchema = z.object({ mac }).strict();

export const MacRuleSchema = z
  .object({ prefix: z.string().regex(/^([0-9a-f]{2})(:[0-9a-f]{2}){0,5}$/, 'not a MAC prefix like aa:bb:cc'), type: NodeTypeSchema })
  .strict();
export type MacRule = z.infer<typeof MacRuleSchema>;

export const RegistrationSchema = z.object({ type: NodeTypeSchema, note: z.string().max(200).optional() }).strict();
export type Registration = z.infer<typeof RegistrationSchema>;

/** handingOver: the leader is stepping down of its own accord (drain, shutdown); its key goes once it has. */
export const LeaderSchema = z.object({ node: z.string(), since: z.string(), handingOver: z.boolean().optional() }).strict();
export type LeaderValue = z.infer<typeof LeaderSchema>;

export const HeartbeatSchema = z.object({ node: z.string(), startedAt: z.string(), ip: ipv4.optional() }).strict();

export const CheckSchema = z.object({ name: z.string(), ok: z.boolean(), detail: z.string() }).strict();
export type Check = z.infer<typeof CheckSchema>;

export const ServiceStatusSchema = z
  .object({ name: z.string(), state: z.string(), healthy: z.boolean(), restarts: z.number(), pid: z.number().optional(), lastError: z.string().optional() })
  .strict();

export const NodeStatusSchema = z
  .object({
    node: z.string(),
    healthy: z.boolean(),
    checks: z.array(CheckSchema),
    services: z.array(ServiceStatusSchema),
    leaderships: z.array(z.string()),
    updatedAt: z.string(),
  })
  .strict();
export type NodeStatus = z.infer<typeof NodeStatusSchema>;

export const DrainSchema = z.object({ reason: z.string().max(200), at: z.string() }).strict();

export const DhcpLeaseSchema = z.object({ mac, ip: ipv4, hostname, expiresAt: z.string() }).strict();
export type DhcpLease = z.infer<typeof DhcpLeaseSchema>;

export const DeclinedSchema = z.object({ ip: ipv4, mac, at: z.string() }).strict();

/** What the operator supplies for installs; ycluster never downloads installer images itself. */
export const BootSettingsSchema = z
  .object({
    installerKernelUrl: z.string().url(),
    installerInitrdUrl: z.string().url(),
    isoUrl: z.string().url(),
    sshAuthorizedKeys: z.array(z.string().min(1)).max(50),
    proxy: z.string().url().optional(),
    agentPackageUrl: z.string().url().optional(),
  })
  .strict();
export type BootSettings = z.infer<typeof BootSettingsSchema>;

export const InstallStateSchema = z.object({ state: z.enum(['install', 'installed']), at: z.string() }).strict();

/** Only the hash of a join token is stored; the token is shown once, in the node's user-data. */
/**
 * What the cluster knows of a storage volume, so that a volume that vanished or reads blank is never silently
 * re-created or formatted over (that would hide the loss of its data behind an empty database).
 */
export const VolumeRecordSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9-]{1,40}$/),
    fsType: z.enum(['xfs', 'ext4']),
    createdAt: z.string(),
    /** Who created it (or first found it, when `adopted`), with the fencing token of that leadership. */
    createdBy: z.object({ node: hostname, token: z.number().int().nonnegative() }).strict(),
    adopted: z.boolean(),
    /** Set once a file system is known to be on it. */
    formattedAt: z.string().optional(),
  })
  .strict();
export type VolumeRecord = z.infer<typeof VolumeRecordSchema>;

export const JoinTokenSchema = z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), expiresAt: z.string() }).strict();
