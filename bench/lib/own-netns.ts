// Benchmarks that run the project's network daemons (DNS, DHCP, etcd) do so inside a network namespace of their
// own, never in the host namespace: the outer process makes the namespace, runs the benchmark again inside it, and
// removes the namespace and anything left in it afterwards, also on failure or SIGINT.
import { spawn } from 'node:child_process';
import { run } from '../../src/lib/exec.js';
import { sleep } from '../../src/lib/time.js';
import { Cleanup } from './cleanup.js';

/** Re-runs `script` (a bench file) with `args` inside a new namespace named PREFIX-PID; resolves to its exit code. */
export async function rerunInOwnNamespace(prefix: string, script: string, args: readonly string[]): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error('needs root (it makes a network namespace)');
  const ns = `${prefix}-${process.pid}`;
  const cleanup = new Cleanup();
  try {
    cleanup.add(`namespace ${ns}`, () => removeNamespace(ns));
    await run('ip', ['netns', 'add', ns], { timeoutMs: 10_000 });
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up'], { timeoutMs: 10_000 });
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', script, ...args], { stdio: 'inherit' });
    cleanup.child('benchmark inside the namespace', child, 20_000);
    return await new Promise<number>((resolve) => {
      child.once('error', (err) => {
        process.stderr.write(`cannot start the benchmark inside ${ns}: ${err.message}\n`);
        resolve(1);
      });
      child.once('exit', (code, sig) => resolve(code ?? (sig ? 128 : 1)));
    });
  } finally {
    await cleanup.run();
  }
}

/** True when this process runs in the namespace `ns` (checked before binding anything). */
export async function inNamespace(ns: string): Promise<boolean> {
  const here = (await run('ip', ['netns', 'identify', String(process.pid)], { timeoutMs: 5000 })).stdout.split(/\s+/);
  return here.includes(ns);
}

/** Kills (by PID) anything still running in our namespace (only what this run started can be there), then deletes it. */
export async function removeNamespace(ns: string): Promise<void> {
  const r = await run('ip', ['netns', 'pids', ns], { timeoutMs: 10_000, allowFailure: true });
  const pids = r.stdout.split(/\s+/).filter(Boolean).map(Number).filter((p) => p > 1 && p !== process.pid);
  if (pids.length) process.stderr.write(`left running in ${ns}, killed: ${pids.join(', ')}\n`);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
  if (pids.length) await sleep(200);
  await run('ip', ['netns', 'del', ns], { timeoutMs: 10_000 });
}
