import { formatIpv4, parseIpv4 } from '../lib/net.js';
import { defaultConfig, type NodeType } from '../state/schema.js';

export interface LabNode {
  node: string;
  mac: string;
  ip: string;
  type: NodeType;
}

export interface LabSize {
  core: number;
  storage: number;
  compute: number;
  frontend: number;
}

const ETCD_CLIENT_PORT = 2379;
const ETCD_PEER_PORT = 2380;
export const AGENT_API_PORT = 8080;
export const ADMIN_IP = '10.0.0.250';

/** The lab's nodes, named and addressed as the allocator would: core s1..sN, then storage, compute c1.., frontend f1... */
export function planLab(size: LabSize): LabNode[] {
  const plan: LabNode[] = [];
  const add = (letter: string, type: NodeType, count: number, start: string, offset = 0): void => {
    for (let i = 1; i <= count; i++) {
      const n = offset + i;
      plan.push({ node: `${letter}${n}`, mac: `52:54:00:${letter.charCodeAt(0).toString(16)}:00:${n.toString(16).padStart(2, '0')}`, ip: formatIpv4(parseIpv4(start) + n - 1), type });
    }
  };
  add('s', 'core', size.core, defaultConfig.ranges.storage.start);
  add('s', 'storage', size.storage, defaultConfig.ranges.storage.start, size.core);
  add('c', 'compute', size.compute, defaultConfig.ranges.compute.start);
  add('f', 'frontend', size.frontend, defaultConfig.ranges.frontend.start);
  return plan;
}

export const etcdEndpoints = (plan: readonly LabNode[]): string[] => plan.filter((n) => n.type === 'core').map((n) => `${n.ip}:${ETCD_CLIENT_PORT}`);

export function etcdMembers(plan: readonly LabNode[]): { name: string; ip: string; clientPort: number; peerPort: number }[] {
  return plan.filter((n) => n.type === 'core').map((n) => ({ name: n.node, ip: n.ip, clientPort: ETCD_CLIENT_PORT, peerPort: ETCD_PEER_PORT }));
}

export const LAB_SUBNET = '10.0.0.0/24';

export interface CephPlacement {
  /** Runs mon "a" and the one mgr "x" (the first core node); the bootstrap's admin commands run there. */
  monNode: string;
  /** One mon per core node (ids a, b, c, ... in plan order): quorum survives any one of three. */
  mons: { node: string; id: string; ip: string }[];
  /** One OSD per storage node (ids from 0); with no storage node, one on the first core node. */
  osds: { node: string; id: number }[];
  /** Replicas of the rbd pool: one per OSD. */
  poolSize: number;
}

export function planCeph(plan: readonly LabNode[]): CephPlacement {
  const core = plan.filter((n) => n.type === 'core');
  const first = core[0];
  if (!first) throw new Error('a Ceph lab needs a core node for the mon');
  if (core.length > 26) throw new Error(`a Ceph lab names its mons a..z: ${core.length} core nodes are too many`);
  const mons = core.map((n, i) => ({ node: n.node, id: String.fromCharCode(97 + i), ip: n.ip }));
  const storage = plan.filter((n) => n.type === 'storage');
  const osdNodes = storage.length > 0 ? storage : [first];
  const osds = osdNodes.map((n, id) => ({ node: n.node, id }));
  return { monNode: first.node, mons, osds, poolSize: Math.max(1, osds.length) };
}
