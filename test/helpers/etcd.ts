// Starts real etcd members (Debian etcd-server) on 127.0.0.1 with random ports and temp dirs.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientUrl, etcdArgs, etcdHealthy, type EtcdMember } from '../../src/services/etcd.js';
import { waitFor } from '../../src/lib/time.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface TestEtcd {
  endpoints: string[];
  members: EtcdMember[];
  procs: (ChildProcess | undefined)[];
  dir: string;
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  start(i: number): Promise<void>;
  leaderIndex(): Promise<number>;
  stop(): Promise<void>;
}

export async function startEtcd(size = 1): Promise<TestEtcd> {
  const dir = mkdtempSync(join(tmpdir(), 'yc-etcd-'));
  const members: EtcdMember[] = [];
  for (let i = 0; i < size; i++) members.push({ name: `m${i}`, ip: '127.0.0.1', clientPort: await freePort(), peerPort: await freePort() });
  const token = `t-${process.pid}-${Date.now()}`;
  const procs: (ChildProcess | undefined)[] = [];
  const exits = new Map<number, Promise<void>>();

  const launch = (i: number): void => {
    const child = spawn('etcd', etcdArgs({ self: members[i]!, members, dataDir: join(dir, members[i]!.name), clusterToken: token, heartbeatMs: 50, electionMs: 500 }), { stdio: 'ignore' });
    procs[i] = child;
    exits.set(i, new Promise((r) => child.once('exit', () => r())));
  };
  for (let i = 0; i < size; i++) launch(i);

  const env: TestEtcd = {
    endpoints: members.map(clientUrl),
    members,
    procs,
    dir,
    async kill(i, signal = 'SIGKILL') {
      const p = procs[i];
      if (!p) return;
      p.kill(signal);
      await exits.get(i);
      procs[i] = undefined;
    },
    async start(i) {
      launch(i);
      await waitFor(`etcd ${members[i]!.name} healthy`, async () => ((await etcdHealthy(clientUrl(members[i]!))) ? true : undefined), { timeoutMs: 20_000, intervalMs: 100 });
    },
    async leaderIndex() {
      for (let i = 0; i < size; i++) {
        if (!procs[i]) continue;
        try {
          const res = await fetch(`${clientUrl(members[i]!)}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
          const body = (await res.json()) as { header: { member_id: string }; leader: string };
          if (body.leader === body.header.member_id) return i;
        } catch {
          /* member down */
        }
      }
      return -1;
    },
    async stop() {
      for (let i = 0; i < size; i++) await env.kill(i);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor('etcd cluster healthy', async () => {
      for (const m of members) if (!(await etcdHealthy(clientUrl(m)))) return undefined;
      return true;
    }, { timeoutMs: 20_000, intervalMs: 100 });
  } catch (err) {
    await env.stop();
    throw err;
  }
  return env;
}
