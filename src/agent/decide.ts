import type { NodeType } from '../state/schema.js';

/** What the agent knows at one instant; decide() sees nothing else. */
export interface Snapshot {
  registered: { hostname: string; type: NodeType } | undefined;
  etcdReachable: boolean;
  drained: boolean;
  /** Elections this node's type takes part in, and always-on roles it runs. */
  wantedElections: readonly string[];
  wantedRoles: readonly string[];
  /** What is running now. */
  elections: readonly { name: string; paused: boolean }[];
  roles: readonly string[];
  /** Fingerprint of the status last published, and of the current one. */
  publishedStatus: string | undefined;
  currentStatus: string;
}

export type Action =
  | { kind: 'register' }
  | { kind: 'campaign'; election: string }
  | { kind: 'withdraw'; election: string }
  | { kind: 'pause'; election: string }
  | { kind: 'resume'; election: string }
  | { kind: 'start-role'; role: string }
  | { kind: 'stop-role'; role: string }
  | { kind: 'publish-status' };

export interface Decision {
  actions: Action[];
  /** One line that says why: logged, shown in health, and asserted in tests. */
  reason: string;
}

export function decide(s: Snapshot): Decision {
  if (!s.etcdReachable) return { actions: [], reason: 'etcd unreachable: waiting (leaders fence themselves at their deadline)' };
  if (!s.registered) return { actions: [{ kind: 'register' }], reason: 'not registered: registering by MAC' };

  const actions: Action[] = [];
  const why: string[] = [];
  const running = new Map(s.elections.map((e) => [e.name, e]));
  for (const name of s.wantedElections) {
    const e = running.get(name);
    if (!e) {
      actions.push({ kind: 'campaign', election: name });
      why.push(`${s.registered.type} node joins election ${name}`);
      if (s.drained) {
        actions.push({ kind: 'pause', election: name });
        why.push(`drained: ${name} paused`);
      }
    } else if (s.drained && !e.paused) {
      actions.push({ kind: 'pause', election: name });
      why.push(`drained: resigning ${name} and not campaigning`);
    } else if (!s.drained && e.paused) {
      actions.push({ kind: 'resume', election: name });
      why.push(`undrained: campaigning for ${name} again`);
    }
  }
  for (const e of s.elections) {
    if (!s.wantedElections.includes(e.name)) {
      actions.push({ kind: 'withdraw', election: e.name });
      why.push(`${s.registered.type} node leaves election ${e.name}`);
    }
  }
  for (const role of s.wantedRoles) {
    if (!s.roles.includes(role)) {
      actions.push({ kind: 'start-role', role });
      why.push(`${s.registered.type} node starts ${role}`);
    }
  }
  for (const role of s.roles) {
    if (!s.wantedRoles.includes(role)) {
      actions.push({ kind: 'stop-role', role });
      why.push(`${s.registered.type} node stops ${role}`);
    }
  }
  if (s.publishedStatus !== s.currentStatus) {
    actions.push({ kind: 'publish-status' });
    why.push('status changed: publishing');
  }
  return { actions, reason: why.length ? why.join('; ') : `steady: ${s.registered.hostname} (${s.registered.type}) as wanted` };
}
