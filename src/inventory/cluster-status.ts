import type { StateClient } from '../state/client.js';
import { keySuffix, prefixes } from '../state/keys.js';
import type { NodeType } from '../state/schema.js';
import { ELECTIONS_BY_TYPE } from './node-types.js';

export interface NodeSummary {
  hostname: string;
  mac: string;
  ip: string;
  type: NodeType;
  alive: boolean;
  /** Seconds since the last heartbeat keepalive, from the lease's remaining TTL. */
  heartbeatAgeSeconds: number | null;
  healthy: boolean;
  failedChecks: string[];
  drained: boolean;
  leaderships: string[];
  services: { name: string; state: string; healthy: boolean }[];
}

export interface ClusterStatus {
  healthy: boolean;
  reasons: string[];
  nodes: NodeSummary[];
  leaders: Record<string, string | null>;
  corrupt: { key: string; error: string }[];
  at: string;
}

/** The whole cluster as one document: what `ycluster status`, the API and the dashboard show. */
export async function clusterStatus(state: StateClient): Promise<ClusterStatus> {
  const [nodes, beats, statuses, leaders, drains] = await Promise.all([
    state.list(prefixes.nodes),
    state.list(prefixes.heartbeats),
    state.list(prefixes.statuses),
    state.list(prefixes.leaders),
    state.list(prefixes.drains),
  ]);
  const beatByNode = new Map(beats.entries.map((b) => [keySuffix(prefixes.heartbeats, b.key), b]));
  const statusByNode = new Map(statuses.entries.map((s) => [keySuffix(prefixes.statuses, s.key), s.value]));
  const drained = new Set(drains.entries.map((d) => keySuffix(prefixes.drains, d.key)));
  const leaderOf = new Map(leaders.entries.map((l) => [keySuffix(prefixes.leaders, l.key), l.value.node]));

  const ages = await Promise.all(
    nodes.entries.map(async ({ value: n }) => {
      const beat = beatByNode.get(n.hostname);
      if (!beat || beat.lease === '0') return null;
      try {
        const ttl = await state.etcd.leaseClient.leaseTimeToLive({ ID: beat.lease });
        if (Number(ttl.TTL) < 0) return null;
        return Math.max(0, Number(ttl.grantedTTL) - Number(ttl.TTL));
      } catch {
        return null;
      }
    }),
  );

  const reasons: string[] = [];
  const summaries: NodeSummary[] = nodes.entries.map(({ value: n }, i) => {
    const st = statusByNode.get(n.hostname);
    const alive = beatByNode.has(n.hostname);
    const failed = st ? st.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`) : [];
    const healthy = alive && !!st && st.healthy;
    if (!alive) reasons.push(`${n.hostname}: no heartbeat (down or unreachable)`);
    else if (!st) reasons.push(`${n.hostname}: has not published a status yet`);
    else if (!st.healthy) reasons.push(`${n.hostname}: unhealthy (${failed.join('; ') || 'see its /api/health'})`);
    return {
      hostname: n.hostname,
      mac: n.mac,
      ip: n.ip,
      type: n.type,
      alive,
      heartbeatAgeSeconds: ages[i] ?? null,
      healthy,
      failedChecks: failed,
      drained: drained.has(n.hostname),
      leaderships: [...leaderOf].filter(([, node]) => node === n.hostname).map(([e]) => e),
      services: st?.services.map((s) => ({ name: s.name, state: s.state, healthy: s.healthy })) ?? [],
    };
  });

  const wanted = new Set(nodes.entries.flatMap(({ value: n }) => ELECTIONS_BY_TYPE[n.type]));
  const leadersOut: Record<string, string | null> = {};
  for (const e of new Set([...wanted, ...leaderOf.keys()])) {
    leadersOut[e] = leaderOf.get(e) ?? null;
    if (wanted.has(e) && !leaderOf.has(e)) reasons.push(`election ${e} has no leader`);
  }
  for (const c of [...nodes.corrupt, ...beats.corrupt, ...statuses.corrupt, ...leaders.corrupt, ...drains.corrupt]) reasons.push(`corrupt value: ${c.error}`);
  if (nodes.entries.length === 0) reasons.push('no nodes registered');

  return {
    healthy: reasons.length === 0,
    reasons,
    nodes: summaries.sort((a, b) => a.hostname.localeCompare(b.hostname, 'en', { numeric: true })),
    leaders: leadersOut,
    corrupt: [...nodes.corrupt, ...beats.corrupt, ...statuses.corrupt, ...leaders.corrupt, ...drains.corrupt],
    at: new Date().toISOString(),
  };
}
