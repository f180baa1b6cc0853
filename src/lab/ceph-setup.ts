// `lab up --ceph`: makes the lab's Ceph cluster before any agent starts. The lab plays the installer: it
// renders ceph.conf and the keyring, makes every mon's store from one monmap (a mon per core node), runs those
// mons for a moment (each inside its node's namespace) to register the OSDs and create the rbd pool, makes each
// OSD's bluestore, and stops the mons again. From then on each node's agent runs its daemons (agent config
// "ceph") and nothing else does.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { YcError } from '../lib/errors.js';
import { waitFor } from '../lib/time.js';
import { adminSocketPath, daemonHealthy } from '../agent/ceph-daemons.js';
import type { CephDaemonsConfig } from '../agent/config.js';
import { cephLabConfig, monCommands, monmapCommand, osdCommands, poolCreateCommands, type CephLab, type Cmd } from './ceph.js';
import { execInNode, spawnInNode } from './netns.js';
import { LAB_SUBNET, planCeph, type CephPlacement, type LabNode } from './plan.js';
import { isSameAlive, procRef, signalRef, waitGone, type ProcRef } from './proc.js';
import { forgetPids, labDir, setMeta } from './registry.js';

export const LAB_POOL = 'rbd';
const MGR_ID = 'x';

export interface LabCeph {
  lab: CephLab;
  placement: CephPlacement;
  pool: string;
}

async function execAll(name: string, node: string, cmds: Cmd[]): Promise<void> {
  for (const c of cmds) await execInNode(name, node, c.command, c.args, { timeoutMs: 60_000 });
}

/** Makes the cluster (mon stores, OSDs, pool); no Ceph daemon runs when it returns. */
export async function setupLabCeph(name: string, plan: readonly LabNode[], say: (m: string) => void): Promise<LabCeph> {
  const placement = planCeph(plan);
  const lab = await cephLabConfig(labDir(name), placement.mons.map((m) => ({ id: m.id, ip: m.ip })), { objectstore: 'bluestore', poolSize: placement.poolSize, publicNetwork: LAB_SUBNET });
  setMeta(name, 'ceph', { conf: lab.conf, keyring: lab.keyring, pool: LAB_POOL, ...placement });
  await execAll(name, placement.monNode, [monmapCommand(lab)]);
  const mons = placement.mons.map((m) => ({ ...m, cmds: monCommands(lab, m.id) }));
  await Promise.all(mons.map((m) => execAll(name, m.node, m.cmds.setup)));
  // The mgr keeps nothing there (its key is in the shared keyring), but the agent wants the dir made.
  await mkdir(join(lab.dir, 'mgr', `ceph-${MGR_ID}`), { recursive: true });
  // Every mon of the monmap runs during the bootstrap: a quorum needs a majority of them, and each store then
  // holds the OSDs and the pool from the start (none has to sync when the agents start them).
  const refs: ProcRef[] = [];
  try {
    const running = mons.map((m) => {
      const child = spawnInNode(name, m.node, m.cmds.run.command, m.cmds.run.args, { logFile: join(lab.dir, 'log', `bootstrap-mon.${m.id}.out`), what: 'ceph-bootstrap-mon' });
      child.unref();
      const ref = child.pid === undefined ? undefined : procRef(child.pid);
      if (ref) refs.push(ref);
      return { ...m, ref };
    });
    await Promise.all(running.map(async (m) => {
      const sock = await adminSocketPath(lab.conf, { type: 'mon', id: m.id });
      await waitFor(`bootstrap mon.${m.id} on ${m.node} to join the quorum`, async () => {
        if (m.ref && !isSameAlive(m.ref)) throw new YcError('UNAVAILABLE', `the bootstrap mon.${m.id} exited; see ${lab.dir}/log`);
        return (await daemonHealthy('mon', sock).catch(() => false)) ? true : undefined;
      }, { timeoutMs: 30_000, intervalMs: 100 });
    }));
    say(`ceph: mons ${mons.map((m) => `${m.id} on ${m.node}`).join(', ')} in quorum; registering ${placement.osds.length} OSD(s) and the ${LAB_POOL} pool (size ${placement.poolSize})`);
    const osds = [];
    for (const o of placement.osds) {
      const c = await osdCommands(lab, o.id);
      await execInNode(name, placement.monNode, c.setup[0]!.command, c.setup[0]!.args, { timeoutMs: 60_000 });
      osds.push({ node: o.node, mkfs: c.setup.slice(1) });
    }
    await execAll(name, placement.monNode, poolCreateCommands(lab, LAB_POOL));
    // Each OSD's bluestore is made inside its own node; in parallel, as each takes a few seconds.
    await Promise.all(osds.map((o) => execAll(name, o.node, o.mkfs)));
  } finally {
    for (const r of refs) signalRef(r, 'SIGTERM');
    for (const r of await waitGone(refs, 10_000)) signalRef(r, 'SIGKILL');
    await waitGone(refs, 5_000);
    forgetPids(name, refs.map((r) => r.pid));
  }
  return { lab, placement, pool: LAB_POOL };
}

/** The agent config's "ceph" section for one node, or undefined when it runs no Ceph daemon. */
export function cephSectionFor(c: LabCeph, node: string, logDir: string): CephDaemonsConfig | undefined {
  const mon = c.placement.mons.find((m) => m.node === node);
  const isMgr = c.placement.monNode === node;
  const osds = c.placement.osds.filter((o) => o.node === node).map((o) => ({ id: o.id, dataDir: join(c.lab.dir, 'osd', `ceph-${o.id}`) }));
  if (!mon && !isMgr && osds.length === 0) return undefined;
  return {
    conf: c.lab.conf,
    ...(mon ? { mon: { id: mon.id, dataDir: join(c.lab.dir, 'mon', `ceph-${mon.id}`) } } : {}),
    ...(isMgr ? { mgr: { id: MGR_ID, dataDir: join(c.lab.dir, 'mgr', `ceph-${MGR_ID}`) } } : {}),
    osds,
    logDir,
  };
}
