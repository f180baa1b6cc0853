// `lab up --ceph`: makes the lab's Ceph cluster before any agent starts. The lab plays the installer: it
// renders ceph.conf and the keyring, makes the mon's store, runs that mon for a moment (inside the mon node's
// namespace) to register the OSDs and create the rbd pool, makes each OSD's bluestore, and stops the mon again.
// From then on each node's agent runs its daemons (agent config "ceph") and nothing else does.
import { join } from 'node:path';
import { YcError } from '../lib/errors.js';
import { waitFor } from '../lib/time.js';
import { adminSocketPath, daemonHealthy } from '../agent/ceph-daemons.js';
import type { CephDaemonsConfig } from '../agent/config.js';
import { cephLabConfig, monMgrCommands, osdCommands, poolCreateCommands, type CephLab, type Cmd } from './ceph.js';
import { execInNode, spawnInNode } from './netns.js';
import { LAB_SUBNET, planCeph, type CephPlacement, type LabNode } from './plan.js';
import { isSameAlive, procRef, signalRef, waitGone } from './proc.js';
import { forgetPids, labDir, setMeta } from './registry.js';

export const LAB_POOL = 'rbd';
const MON_ID = 'a';
const MGR_ID = 'x';

export interface LabCeph {
  lab: CephLab;
  placement: CephPlacement;
  pool: string;
}

async function execAll(name: string, node: string, cmds: Cmd[]): Promise<void> {
  for (const c of cmds) await execInNode(name, node, c.command, c.args, { timeoutMs: 60_000 });
}

/** Makes the cluster (mon store, OSDs, pool); no Ceph daemon runs when it returns. */
export async function setupLabCeph(name: string, plan: readonly LabNode[], say: (m: string) => void): Promise<LabCeph> {
  const placement = planCeph(plan);
  const lab = await cephLabConfig(labDir(name), placement.monIp, { objectstore: 'bluestore', poolSize: placement.poolSize, publicNetwork: LAB_SUBNET });
  setMeta(name, 'ceph', { conf: lab.conf, keyring: lab.keyring, pool: LAB_POOL, ...placement });
  const mon = monMgrCommands(lab);
  await execAll(name, placement.monNode, mon.setup);
  const monRun = mon.run[0]!;
  const child = spawnInNode(name, placement.monNode, monRun.command, monRun.args, { logFile: join(lab.dir, 'log', 'bootstrap-mon.out'), what: 'ceph-bootstrap-mon' });
  child.unref();
  const ref = child.pid === undefined ? undefined : procRef(child.pid);
  try {
    const sock = await adminSocketPath(lab.conf, { type: 'mon', id: MON_ID });
    await waitFor('the bootstrap mon to form its quorum', async () => {
      if (ref && !isSameAlive(ref)) throw new YcError('UNAVAILABLE', `the bootstrap mon exited; see ${lab.dir}/log`);
      return (await daemonHealthy('mon', sock).catch(() => false)) ? true : undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    say(`ceph: mon ${MON_ID} made on ${placement.monNode}; registering ${placement.osds.length} OSD(s) and the ${LAB_POOL} pool (size ${placement.poolSize})`);
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
    if (ref) {
      signalRef(ref, 'SIGTERM');
      if ((await waitGone([ref], 10_000)).length > 0) signalRef(ref, 'SIGKILL');
      await waitGone([ref], 5_000);
      forgetPids(name, [ref.pid]);
    }
  }
  return { lab, placement, pool: LAB_POOL };
}

/** The agent config's "ceph" section for one node, or undefined when it runs no Ceph daemon. */
export function cephSectionFor(c: LabCeph, node: string, logDir: string): CephDaemonsConfig | undefined {
  const isMon = c.placement.monNode === node;
  const osds = c.placement.osds.filter((o) => o.node === node).map((o) => ({ id: o.id, dataDir: join(c.lab.dir, 'osd', `ceph-${o.id}`) }));
  if (!isMon && osds.length === 0) return undefined;
  return {
    conf: c.lab.conf,
    ...(isMon ? { mon: { id: MON_ID, dataDir: join(c.lab.dir, 'mon', `ceph-${MON_ID}`) }, mgr: { id: MGR_ID, dataDir: join(c.lab.dir, 'mgr', `ceph-${MGR_ID}`) } } : {}),
    osds,
    logDir,
  };
}
