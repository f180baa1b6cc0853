// Root: a lab network in namespaces, forwards from 127.0.0.1, faults, and teardown that leaves nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  addAddress, addNode, createLabNetwork, delAddress, execInNode, newLabName, nodePids, nsName, spawnInNode,
} from '../../src/lab/netns.js';
import { healNode, killNode, partitionNode, stopNode } from '../../src/lab/faults.js';
import { startForward, stopForward } from '../../src/lab/forward.js';
import { destroyLab, labDir, listNetns, mountPoints, readRegistry, recordLoop, recordMount } from '../../src/lab/registry.js';
import { run } from '../../src/lib/exec.js';
import { findByCmdline, isSameAlive, procRef } from '../../src/lab/proc.js';
import { waitFor } from '../../src/lib/time.js';

const HTTP_SERVER = "require('http').createServer((q,r)=>r.end('hi')).listen(8080,'0.0.0.0')";

async function ping(lab: string, from: string, ip: string): Promise<boolean> {
  const r = await execInNode(lab, from, 'busybox', ['ping', '-c1', '-W1', ip], { timeoutMs: 5_000, allowFailure: true });
  return r.code === 0;
}

async function get(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(3_000) });
  return res.text();
}

async function assertGone(lab: string): Promise<void> {
  assert.deepEqual((await listNetns()).filter((n) => n.startsWith(`${lab}-`)), [], 'no namespaces left');
  assert.deepEqual(findByCmdline(labDir(lab)).filter(isSameAlive), [], 'no processes naming the state dir');
  assert.equal(existsSync(labDir(lab)), false, 'state dir removed');
}

test('three nodes: ping, forward, failover, partition/heal, VIP, stop, kill, destroy', async (t) => {
  const lab = newLabName();
  t.after(() => destroyLab(lab));
  await createLabNetwork(lab, { cidrPrefix: 24, adminIp: '10.0.0.250' });
  await Promise.all(['s1', 's2', 's3'].map((n, i) => addNode(lab, n, `10.0.0.1${i + 1}`, 24, `02:00:00:00:00:1${i + 1}`)));
  const link = await execInNode(lab, 's1', 'ip', ['-br', 'link', 'show', 'eth0']);
  assert.match(link.stdout, /02:00:00:00:00:11/);

  assert.ok(await ping(lab, 's1', '10.0.0.12'), 's1 reaches s2');
  assert.ok(await ping(lab, 's3', '10.0.0.11'), 's3 reaches s1');
  assert.ok(await ping(lab, 'adm', '10.0.0.13'), 'admin reaches s3');

  const logFile = join(labDir(lab), 'logs', 's2-http.log');
  spawnInNode(lab, 's2', process.execPath, ['--input-type=commonjs', '-e', HTTP_SERVER], { logFile, what: 'http' }).unref();
  // s1 has no server: connection refused there, so the forward falls over to s2.
  const fwd = await startForward(lab, { targetIp: '10.0.0.11', failover: ['10.0.0.12'], targetPort: 8080 });
  assert.ok(fwd.hostPort > 0);
  assert.equal(await waitFor('http via forward', async () => ((await get(fwd.hostPort)) === 'hi' ? true : undefined), { timeoutMs: 10_000 }), true);
  assert.equal(readRegistry(lab)?.forwards.length, 1);

  await partitionNode(lab, 's1');
  assert.equal(await ping(lab, 's1', '10.0.0.12'), false, 'partitioned s1 cannot reach s2');
  assert.equal(await ping(lab, 's3', '10.0.0.11'), false, 's3 cannot reach partitioned s1');
  await healNode(lab, 's1');
  await waitFor('s1 back', async () => ((await ping(lab, 's1', '10.0.0.12')) ? true : undefined), { timeoutMs: 10_000, intervalMs: 100 });

  assert.equal(await addAddress(lab, 's3', '10.0.0.100/24'), true);
  assert.equal(await addAddress(lab, 's3', '10.0.0.100/24'), false);
  assert.ok(await ping(lab, 's1', '10.0.0.100'), 'VIP answers');
  assert.equal(await delAddress(lab, 's3', '10.0.0.100/24'), true);
  assert.equal(await delAddress(lab, 's3', '10.0.0.100/24'), false);

  // stopNode: a process that ignores nothing stops on SIGTERM; one that traps it is forced.
  spawnInNode(lab, 's3', 'sleep', ['600'], { logFile: join(labDir(lab), 'logs', 's3.log') }).unref();
  spawnInNode(lab, 's3', 'sh', ['-c', 'trap "" TERM; sleep 600 & wait'], { logFile: join(labDir(lab), 'logs', 's3.log') }).unref();
  const stopped = await stopNode(lab, 's3', { graceMs: 500 });
  assert.ok(stopped.signalled.length >= 2);
  assert.ok(stopped.forced.length >= 1, 'the TERM-trapping shell needed SIGKILL');
  assert.deepEqual(await nodePids(lab, 's3'), []);

  const before = await nodePids(lab, 's2');
  assert.equal(before.length, 1);
  const killed = await killNode(lab, 's2');
  assert.deepEqual(killed.signalled, before);
  assert.deepEqual(await nodePids(lab, 's2'), []);
  await assert.rejects(get(fwd.hostPort), 'nothing answers after s2 was killed');

  assert.equal(await stopForward(lab, fwd.hostPort), true);
  assert.equal(readRegistry(lab)?.forwards.length, 0);

  await destroyLab(lab);
  await assertGone(lab);
  await destroyLab(lab); // idempotent
});

// A process that made a lab and died by SIGKILL: its relays and node processes live on and must still be found.
const CRASHER = `
const netns = await import(${JSON.stringify(new URL('../../src/lab/netns.ts', import.meta.url).href)});
const fwd = await import(${JSON.stringify(new URL('../../src/lab/forward.ts', import.meta.url).href)});
const lab = process.argv[1];
await netns.createLabNetwork(lab, { cidrPrefix: 24, adminIp: '10.0.0.250' });
await netns.addNode(lab, 's1', '10.0.0.11', 24);
netns.spawnInNode(lab, 's1', 'sleep', ['600'], { logFile: '/run/ycluster/labs/' + lab + '/logs/s1.log' }).unref();
const f = await fwd.startForward(lab, { targetIp: '10.0.0.11', targetPort: 8080 });
process.stdout.write('UP ' + f.hostPort + '\\n');
setInterval(() => {}, 1000);
`;

test('destroyLab after the creating process was SIGKILLed, leaving another lab alone', async (t) => {
  const other = newLabName();
  const lab = newLabName();
  t.after(async () => {
    await destroyLab(lab);
    await destroyLab(other);
  });
  // A bystander lab with a running process: destroying `lab` must not touch it.
  await createLabNetwork(other, { cidrPrefix: 24, adminIp: '10.0.0.250' });
  await addNode(other, 's1', '10.0.0.11', 24);
  const bystander = spawnInNode(other, 's1', 'sleep', ['600'], { logFile: join(labDir(other), 'logs', 's1.log') });
  bystander.unref();
  const bystanderRef = procRef(bystander.pid!)!;

  const tsx = import.meta.resolve('tsx');
  const child = spawn(process.execPath, ['--import', tsx, '--input-type=module', '-e', CRASHER, lab], {
    stdio: ['ignore', 'pipe', 'inherit'], cwd: fileURLToPath(new URL('../..', import.meta.url)),
  });
  const exited = once(child, 'exit');
  const [line] = (await Promise.race([
    once(child.stdout.setEncoding('utf8'), 'data'),
    exited.then(() => { throw new Error('crasher exited early'); }),
  ])) as [string];
  assert.match(line, /^UP \d+/);
  child.kill('SIGKILL');
  await exited;

  const survivors = findByCmdline(labDir(lab)).filter(isSameAlive);
  assert.ok(survivors.length >= 2, 'both relays outlived their creator');
  assert.equal((await nodePids(lab, 's1')).length, 1, 'the node process outlived its creator');

  const report = await destroyLab(lab);
  assert.ok(report.killed >= 3);
  await assertGone(lab);

  assert.ok(isSameAlive(bystanderRef), 'the other lab\'s process is untouched');
  assert.ok((await listNetns()).includes(nsName(other, 's1')), 'the other lab\'s namespace is untouched');
  await destroyLab(other);
  await assertGone(other);
  assert.equal(isSameAlive(bystanderRef), false);
});

test('destroyLab unmounts recorded mounts and detaches loop devices of the lab', async (t) => {
  const lab = newLabName();
  t.after(() => destroyLab(lab));
  await createLabNetwork(lab, { cidrPrefix: 24, adminIp: '10.0.0.250' });
  const dir = labDir(lab);
  const img = join(dir, 'disk.img');
  await run('truncate', ['-s', '8M', img]);
  const dev = (await run('losetup', ['-f', '--show', img])).stdout.trim();
  recordLoop(lab, { device: dev, backingFile: img });
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  recordMount(lab, mnt);
  await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
  writeFileSync(join(mnt, 'data'), 'x');

  const report = await destroyLab(lab);
  assert.deepEqual(report.detached, [dev]);
  assert.deepEqual(report.unmounted, [mnt]);
  assert.equal((await run('losetup', ['-j', img])).stdout.trim(), '');
  assert.equal(mountPoints().includes(mnt), false);
  await assertGone(lab);
});
