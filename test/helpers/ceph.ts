// A single-host Ceph (1 mon, 1 mgr, 1 memstore OSD, pool size 1) on 127.0.0.1:random port, all under one temp dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/lib/exec.js';
import { waitFor } from '../../src/lib/time.js';
import { cephLabConfig, monMgrCommands, osdCommands, poolCommands, type Cmd } from '../../src/lab/ceph.js';
import { freePort } from './etcd.js';

export interface TestCeph {
  conf: string;
  pool: string;
  dir: string;
  stop(): Promise<void>;
}

export async function startCeph(): Promise<TestCeph> {
  const dir = mkdtempSync(join(tmpdir(), 'yc-ceph-'));
  const procs: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const p of procs.reverse()) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGKILL');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const exec = async (cmds: Cmd[]): Promise<void> => {
    for (const c of cmds) await run(c.command, c.args, { timeoutMs: 60_000 });
  };
  const daemon = (c: Cmd): void => {
    const p = spawn(c.command, c.args, { stdio: 'ignore' });
    p.on('error', () => undefined);
    procs.push(p);
  };
  try {
    const lab = await cephLabConfig(dir, '127.0.0.1', { monPort: await freePort(), objectstore: 'memstore', poolSize: 1, publicNetwork: '127.0.0.0/8' });
    const admin = ['-c', lab.conf, '--id', 'admin', '--connect-timeout', '5'];
    const mon = monMgrCommands(lab);
    await exec(mon.setup);
    mon.run.forEach(daemon);
    const osd = await osdCommands(lab, 0);
    await exec(osd.setup);
    osd.run.forEach(daemon);
    await exec(poolCommands(lab, 'rbd'));
    await waitFor('ceph pgs active+clean', async () => {
      const res = await run('ceph', [...admin, 'status', '--format', 'json'], { timeoutMs: 10_000 });
      const s = JSON.parse(res.stdout) as { pgmap?: { num_pgs?: number; pgs_by_state?: { state_name: string; count: number }[] } };
      const total = s.pgmap?.num_pgs ?? 0;
      const clean = s.pgmap?.pgs_by_state?.find((x) => x.state_name === 'active+clean')?.count ?? 0;
      return total > 0 && clean === total ? true : undefined;
    }, { timeoutMs: 90_000, intervalMs: 500 });
    return { conf: lab.conf, pool: 'rbd', dir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
