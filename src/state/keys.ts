import type { z } from 'zod';
import {
  ClusterConfigSchema,
  DrainSchema,
  HeartbeatSchema,
  LeaderSchema,
  MacRuleSchema,
  NodeIndexSchema,
  NodeRecordSchema,
  NodeStatusSchema,
  RegistrationSchema,
  DhcpLeaseSchema,
  DeclinedSchema,
  BootSettingsSchema,
  InstallStateSchema,
  JoinTokenSchema,
  VolumeRecordSchema,
} from './schema.js';

/** Every etcd key ycluster uses is built here, each paired with the schema of its value. */
export const ROOT = '/ycluster/';

export interface KeyDef<T> {
  key: string;
  schema: z.ZodType<T>;
}

export interface PrefixDef<T> {
  prefix: string;
  schema: z.ZodType<T>;
}

const key = <T>(k: string, schema: z.ZodType<T>): KeyDef<T> => ({ key: ROOT + k, schema });
const prefix = <T>(p: string, schema: z.ZodType<T>): PrefixDef<T> => ({ prefix: ROOT + p, schema });

export const keys = {
  config: key('config', ClusterConfigSchema),
  nodeByMac: (mac: string) => key(`nodes/by-mac/${mac}`, NodeRecordSchema),
  nodeByName: (name: string) => key(`nodes/by-name/${name}`, NodeIndexSchema),
  nodeByIp: (ip: string) => key(`nodes/by-ip/${ip}`, NodeIndexSchema),
  macRule: (macPrefix: string) => key(`mac-rules/${macPrefix}`, MacRuleSchema),
  registration: (mac: string) => key(`registrations/${mac}`, RegistrationSchema),
  leader: (election: string) => key(`leaders/${election}`, LeaderSchema),
  heartbeat: (node: string) => key(`heartbeat/${node}`, HeartbeatSchema),
  status: (node: string) => key(`status/${node}`, NodeStatusSchema),
  drain: (node: string) => key(`drain/${node}`, DrainSchema),
  dhcpLease: (mac: string) => key(`dhcp/leases/${mac}`, DhcpLeaseSchema),
  dhcpDeclined: (ip: string) => key(`dhcp/declined/${ip}`, DeclinedSchema),
  bootSettings: key('boot/settings', BootSettingsSchema),
  installState: (mac: string) => key(`boot/install-state/${mac}`, InstallStateSchema),
  joinToken: (mac: string) => key(`boot/join-tokens/${mac}`, JoinTokenSchema),
  volume: (name: string) => key(`storage/volumes/${name}`, VolumeRecordSchema),
};

export const prefixes = {
  nodes: prefix('nodes/by-mac/', NodeRecordSchema),
  nodeNames: prefix('nodes/by-name/', NodeIndexSchema),
  nodeIps: prefix('nodes/by-ip/', NodeIndexSchema),
  macRules: prefix('mac-rules/', MacRuleSchema),
  registrations: prefix('registrations/', RegistrationSchema),
  leaders: prefix('leaders/', LeaderSchema),
  heartbeats: prefix('heartbeat/', HeartbeatSchema),
  statuses: prefix('status/', NodeStatusSchema),
  drains: prefix('drain/', DrainSchema),
  dhcpLeases: prefix('dhcp/leases/', DhcpLeaseSchema),
  dhcpDeclined: prefix('dhcp/declined/', DeclinedSchema),
  volumes: prefix('storage/volumes/', VolumeRecordSchema),
};

/** The part of a key after its prefix: the MAC, node name or election name. */
export function keySuffix(def: PrefixDef<unknown>, fullKey: string): string {
  return fullKey.startsWith(def.prefix) ? fullKey.slice(def.prefix.length) : fullKey;
}
