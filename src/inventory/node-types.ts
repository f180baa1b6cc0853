import type { NodeType, RangeKind } from '../state/schema.js';

/** Hostname letter per node type: core nodes are the first storage-series nodes. */
export const SERIES: Record<NodeType, string> = { core: 's', storage: 's', compute: 'c', macos: 'm', frontend: 'f' };

export const RANGE_OF: Record<NodeType, RangeKind> = { core: 'storage', storage: 'storage', compute: 'compute', macos: 'macos', frontend: 'frontend' };

/** s4 → 4; anything else → undefined. */
export function seriesNumber(hostname: string, letter: string): number | undefined {
  const m = new RegExp(`^${letter}(\\d+)$`).exec(hostname);
  return m ? Number(m[1]) : undefined;
}

/** Elections each node type takes part in: core nodes are storage nodes too. */
export const ELECTIONS_BY_TYPE: Record<NodeType, readonly string[]> = {
  core: ['dhcp', 'storage'],
  storage: ['storage'],
  compute: [],
  macos: [],
  frontend: [],
};

/** Always-on roles per node type. */
export const ROLES_BY_TYPE: Record<NodeType, readonly string[]> = {
  core: ['core-services', 'gateway-vip'],
  storage: [],
  compute: [],
  macos: [],
  frontend: [],
};
