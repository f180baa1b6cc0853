import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { YcError } from '../lib/errors.js';
import { NodeTypeSchema } from '../state/schema.js';

const Member = z.object({ name: z.string(), ip: z.string(), clientPort: z.number().int(), peerPort: z.number().int() }).strict();

/** What every driver shares: where the leader mounts volumes and how its services run. */
const storageCommon = {
  /** Node-private directory the leader mounts each volume under (mountRoot/<volume>). */
  mountRoot: z.string(),
  /** Node-private directory for service sockets and generated configs; every parent must be walkable by the service users. Default DATADIR/storage-run. */
  runDir: z.string().optional(),
  /** File holding the postgres superuser's password (applied at each start); without it only local peer auth works. */
  postgresPasswordFile: z.string().optional(),
  /** Path of the qdrant binary; qdrant runs only when set. */
  qdrantBinary: z.string().optional(),
  volumeSizeMiB: z.number().int().min(300).default(512),
  /** Bound on waiting for services at takeover. */
  startTimeoutMs: z.number().int().min(1000).max(300_000).default(30_000),
};

export const LoopStorageSchema = z
  .object({
    driver: z.literal('loop'),
    /** Loop driver: directory of volume images shared by every storage-capable node. */
    volumesDir: z.string(),
    ...storageCommon,
  })
  .strict();

export const RbdStorageSchema = z
  .object({
    driver: z.literal('rbd'),
    /** RBD pool holding the volumes. */
    pool: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
    /** ceph.conf the rbd and ceph commands (and rbd-fuse) use; always explicit, never /etc/ceph. */
    cephConf: z.string(),
    /** Keyring of the cephx client. */
    keyring: z.string(),
    /** cephx client id without "client." (default "admin"); it needs "osd blocklist" rights to fence. */
    clientId: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).default('admin'),
    /** Node-private, root-only directory for rbd-fuse mounts and mapping records. Default DATADIR/rbd. */
    mapDir: z.string().optional(),
    /** Kernel RBD (`rbd map`) instead of rbd-fuse; default: when /sys/bus/rbd exists. */
    kernelRbd: z.boolean().optional(),
    ...storageCommon,
  })
  .strict();

/** Storage-capable nodes: the volume driver and its settings, plus what every driver shares. */
export const StorageConfigSchema = z.discriminatedUnion('driver', [LoopStorageSchema, RbdStorageSchema]);
export type StorageConfig = z.infer<typeof StorageConfigSchema>;

const CephId = z.string().regex(/^[A-Za-z0-9_-]{1,32}$/);

/**
 * Ceph daemons this node runs, each supervised by the agent in the foreground. The data directories must
 * already be made (mkfs) by whoever installed the node (the lab does it in `lab up --ceph`); the agent only
 * runs, health-checks, restarts and stops the daemons.
 */
export const CephDaemonsConfigSchema = z
  .object({
    /** ceph.conf every daemon is started with; it names each daemon's data dir, admin socket, keyring and logs. */
    conf: z.string(),
    mon: z.object({ id: CephId, dataDir: z.string() }).strict().optional(),
    mgr: z.object({ id: CephId, dataDir: z.string() }).strict().optional(),
    osds: z.array(z.object({ id: z.number().int().min(0), dataDir: z.string() }).strict()).default([]),
    /** Where each daemon's stdout/stderr go (DIR/ceph-<type>.<id>.out); default DATADIR. */
    logDir: z.string().optional(),
  })
  .strict();
export type CephDaemonsConfig = z.infer<typeof CephDaemonsConfigSchema>;

/** The agent's local configuration: only what it needs before it can reach etcd. Everything else lives in etcd. */
export const AgentConfigSchema = z
  .object({
    mac: z.string(),
    reportedType: NodeTypeSchema.optional(),
    /** Name and address the installer gave this node; used at registration when still free. */
    hostname: z.string().optional(),
    ip: z.string().optional(),
    etcdEndpoints: z.array(z.string()).min(1),
    etcdTls: z.object({ ca: z.string(), cert: z.string().optional(), key: z.string().optional() }).strict().optional(),
    dataDir: z.string(),
    apiPort: z.number().int().min(1).max(65535).default(8080),
    apiBind: z.string().default('0.0.0.0'),
    /** Core nodes run an etcd member; the lab and the installer write its cluster here. */
    etcdMember: z
      .object({ self: Member, members: z.array(Member).min(1), clusterToken: z.string(), heartbeatMs: z.number().optional(), electionMs: z.number().optional() })
      .strict()
      .optional(),
    /** Network interface the node's cluster address lives on (VIPs are added there). */
    interface: z.string().default('eth0'),
    heartbeatTtlSeconds: z.number().int().min(2).max(120).default(10),
    /** Storage-capable nodes: how this node reaches the volumes when it leads storage. Absent: it cannot lead storage. */
    storage: StorageConfigSchema.optional(),
    /** Ceph daemons this node runs under the agent's supervision (see src/agent/ceph-daemons.ts). */
    ceph: CephDaemonsConfigSchema.optional(),
  })
  .strict();
export type AgentConfig = z.infer<typeof AgentConfigSchema>;

export function loadAgentConfig(path: string): AgentConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new YcError('BAD_INPUT', `cannot read agent config ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = AgentConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new YcError('BAD_INPUT', `agent config ${path} is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}
