// Child processes for benchmarks: started in the foreground, optionally inside a network namespace,
// registered with the Cleanup so they are stopped by PID whatever happens.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { clientUrl, etcdArgs, etcdHealthy, type EtcdMember } from '../../src/services/etcd.js';
import { run } from '../../src/lib/exec.js';
import { waitFor } from '../../src/lib/time.js';
import type { Cleanup } from './cleanup.js';

export interface Started {
  child: ChildProcess;
  /** The match of `ready` in the child's output. */
  match: RegExpExecArray;
  /** Everything the child printed so far (kept bounded). */
  output: () => string;
}

/** Spawns cmd (inside netns when given) and resolves once `ready` matches its output, within timeoutMs. */
export function startChild(cleanup: Cleanup, what: string, cmd: string, args: readonly string[], ready: RegExp, o: { netns?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Started> {
  const argv = o.netns ? ['netns', 'exec', o.netns, cmd, ...args] : [...args];
  const child = spawn(o.netns ? 'ip' : cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: o.env ?? process.env });
  cleanup.child(what, child);
  let out = '';
  const output = (): string => out;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not ready after ${o.timeoutMs ?? 15_000} ms: ${out.slice(-800)}`)), o.timeoutMs ?? 15_000);
    let done = false;
    const onData = (d: Buffer): void => {
      out = (out + d.toString()).slice(-200_000);
      const m = done ? null : ready.exec(out);
      if (m) {
        done = true;
        clearTimeout(timer);
        resolve({ child, match: m, output });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      if (!done) reject(new Error(`${what} exited (${code ?? sig}) before it was ready: ${out.slice(-800)}`));
    });
  });
}

export interface EtcdCluster {
  members: EtcdMember[];
  endpoints: string[];
  procs: (ChildProcess | undefined)[];
}

export interface EtcdClusterOptions {
  size: number;
  dir: string;
  /** First client port; member i uses basePort + 2i (client) and basePort + 2i + 1 (peer). */
  basePort: number;
  netns?: string;
  heartbeatMs: number;
  electionMs: number;
}

/**
 * A real etcd cluster on 127.0.0.1 (of the host or of netns), with the timers the lab's agents give
 * their members, so baselines and the lab run on the same etcd behaviour. Resolves when all are healthy.
 */
export async function startEtcdCluster(cleanup: Cleanup, o: EtcdClusterOptions): Promise<EtcdCluster> {
  const members: EtcdMember[] = Array.from({ length: o.size }, (_, i) => ({ name: `b${i}`, ip: '127.0.0.1', clientPort: o.basePort + 2 * i, peerPort: o.basePort + 2 * i + 1 }));
  const procs: (ChildProcess | undefined)[] = [];
  mkdirSync(o.dir, { recursive: true });
  const token = `bench-${process.pid}-${Date.now()}`;
  for (const self of members) {
    const args = etcdArgs({ self, members, dataDir: join(o.dir, self.name), clusterToken: token, heartbeatMs: o.heartbeatMs, electionMs: o.electionMs });
    const child = o.netns ? spawn('ip', ['netns', 'exec', o.netns, 'etcd', ...args], { stdio: 'ignore' }) : spawn('etcd', args, { stdio: 'ignore' });
    cleanup.child(`etcd ${self.name}`, child, 5000);
    procs.push(child);
  }
  const healthy = async (m: EtcdMember): Promise<boolean> => {
    if (!o.netns) return etcdHealthy(clientUrl(m));
    const r = await run('ip', ['netns', 'exec', o.netns, 'etcdctl', '--endpoints', `127.0.0.1:${m.clientPort}`, '--command-timeout=1s', 'endpoint', 'health'], { timeoutMs: 3000, allowFailure: true });
    return r.code === 0;
  };
  await waitFor('bench etcd cluster healthy', async () => {
    for (const m of members) if (!(await healthy(m))) return undefined;
    return true;
  }, { timeoutMs: 30_000, intervalMs: 100 });
  return { members, endpoints: members.map((m) => `127.0.0.1:${m.clientPort}`), procs };
}
