import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { YcError } from '../lib/errors.js';
import { NodeTypeSchema } from '../state/schema.js';

const Member = z.object({ name: z.string(), ip: z.string(), clientPort: z.number().int(), peerPort: z.number().int() }).strict();

export const StorageConfigSchema = z
  .object({
    /** Only the loop driver is wired so far (lab); rbd drivers exist in src/storage but are not selectable here yet. */
    driver: z.literal('loop'),
    /** Loop driver: directory of volume images shared by every storage-capable node. */
    volumesDir: z.string(),
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
  })
  .strict();
export type StorageConfig = z.infer<typeof StorageConfigSchema>;

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
