// The floor of a planned switchover's data path: what a drain must do one step after another whatever the
// election, locks and VIP cost. The old holder stops PostgreSQL, unmounts and unmaps; the new one maps, mounts,
// starts PostgreSQL until it answers, and commits the first INSERT. Measured with the agent's own functions on a
// scratch RBD image through rbd-fuse + loop (the storage path of this machine, which has no kernel RBD) and,
// alternating trial by trial as the baseline, on a local image file through loop (the lab's loop driver).
// Needs root and `npm run build` (it brings up a Ceph lab).
// Usage: node --import tsx bench/volume-floor.ts [--trials 20]
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, rm, truncate, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { labUp } from '../src/lab/lab.js';
import { ADMIN_NODE, nsName } from '../src/lab/names.js';
import { destroyLab, labDir } from '../src/lab/registry.js';
import { LAB_POOL } from '../src/lab/ceph-setup.js';
import { run } from '../src/lib/exec.js';
import { monoMs, sleep, waitFor } from '../src/lib/time.js';
import { asUser, postgresArgv, postgresCheckpoint, postgresHealthy, postgresSql, preparePostgres, type PostgresServiceOptions } from '../src/services/postgres.js';
import { formatIfBlank, loopAttach, loopDetach, mountDevice, unmountDir } from '../src/storage/blockdev.js';
import { CephCli } from '../src/storage/ceph-cli.js';
import { attachLoop, startFuse, unmapFuse, type FuseMapping } from '../src/storage/rbd-fuse.js';
import { pgQuery } from '../test/helpers/pg-wire.js';
import { Cleanup } from './lib/cleanup.js';
import { say, summarize, table } from './lib/report.js';

const { values } = parseArgs({ options: { trials: { type: 'string', default: '20' }, inner: { type: 'string' }, work: { type: 'string' } } });
const trials = Math.max(1, Math.min(50, Number(values.trials) || 20));
const SIZE_MIB = 512;
const GOAL_MS = 1000;
/** Only for this scratch cluster; the INSERTs come over TCP with SCRAM, as the drain bench's probe sends them. */
const PASSWORD = 'floor-bench';
const STEPS = ['stop postgres', 'unmount', 'unmap', 'map', 'mount', 'start→answer', 'first INSERT'] as const;
type Step = (typeof STEPS)[number];

/** One storage path: how to map and unmap its block device (the untimed warm-up of rbd-fuse included). */
interface Backend {
  label: string;
  /** Untimed: what the new holder has ready before the handover (rbd-fuse's warm start). */
  ready(): Promise<void>;
  map(): Promise<string>;
  unmap(device: string): Promise<void>;
}

function fuseBackend(cli: CephCli, runDir: string, image: string): Backend {
  let warm: FuseMapping | undefined;
  return {
    label: 'RBD via rbd-fuse + loop (2 replicas)',
    ready: async () => {
      warm = await startFuse(cli, runDir, LAB_POOL, image, 0);
    },
    map: async () => (await attachLoop(runDir, image, warm!, 1)).device,
    unmap: () => unmapFuse(runDir, image),
  };
}

function localBackend(file: string): Backend {
  return { label: 'local image file + loop (baseline)', ready: () => Promise.resolve(), map: () => loopAttach(file), unmap: (device) => loopDetach(device) };
}

/**
 * A new holder's caches are cold; so are ours after this. Without it the local image would be read from the
 * host's page cache and the baseline would look faster than a switchover to another machine could be.
 */
const dropPageCache = (): Promise<void> => writeFile('/proc/sys/vm/drop_caches', '1');

interface Volume {
  backend: Backend;
  mountPoint: string;
  pg: PostgresServiceOptions;
  logFile: string;
}

interface Running {
  stop(): Promise<void>;
}
/** The PostgreSQL this run has started and not yet stopped: a failed trial's cleanup stops it before unmounting. */
let running: Running | undefined;

function startPostgres(v: Volume): Running {
  const { command, args } = asUser('postgres', postgresArgv(v.pg));
  const log = openSync(v.logFile, 'a');
  const child = spawn(command, args, { stdio: ['ignore', log, log] });
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const r: Running = {
    stop: async () => {
      // A fast shutdown, as the agent's stop sends; SIGKILL only if it outlives the agent's own bound.
      child.kill('SIGINT');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
      if (running === r) running = undefined;
    },
  };
  running = r;
  return r;
}

const sql = (v: Volume, statement: string): Promise<void> => postgresSql(v.pg, statement, 10_000);

async function untilAnswers(v: Volume): Promise<void> {
  await waitFor('postgres to answer', async () => ((await postgresHealthy(v.pg, 1000)) ? true : undefined), { timeoutMs: 60_000, intervalMs: 25 });
}

/** Formats the volume and makes the cluster with its table, untimed. */
async function initialize(v: Volume): Promise<void> {
  await v.backend.ready();
  const device = await v.backend.map();
  await formatIfBlank(device, 'xfs');
  await mountDevice(device, v.mountPoint, 'xfs');
  await preparePostgres(v.pg);
  const pg = startPostgres(v);
  await untilAnswers(v);
  await sql(v, 'CREATE TABLE IF NOT EXISTS t (id bigint)');
  await sql(v, `ALTER ROLE postgres PASSWORD '${PASSWORD}'`);
  await pg.stop();
  await unmountDir(v.mountPoint, 30_000);
  await v.backend.unmap(device);
}

/** One switchover on the same machine: the new holder's half, then (after the agent's pre-handover checkpoint) the old holder's. */
async function trial(v: Volume, n: number): Promise<Record<Step, number>> {
  const took = {} as Record<Step, number>;
  const step = async <T>(name: Step, fn: () => Promise<T>): Promise<T> => {
    const t0 = monoMs();
    const r = await fn();
    took[name] = Math.round(monoMs() - t0);
    return r;
  };
  await v.backend.ready();
  await dropPageCache();
  const device = await step('map', () => v.backend.map());
  await step('mount', () => mountDevice(device, v.mountPoint, 'xfs'));
  const pg = await step('start→answer', async () => {
    await preparePostgres(v.pg);
    const started = startPostgres(v);
    await untilAnswers(v);
    return started;
  });
  await step('first INSERT', () => pgQuery({ host: '127.0.0.1', port: v.pg.port, user: 'postgres', database: 'postgres', password: PASSWORD }, `INSERT INTO t VALUES (${n})`, 10_000));
  await postgresCheckpoint(v.pg, 10_000);
  await step('stop postgres', () => pg.stop());
  await step('unmount', () => unmountDir(v.mountPoint, 30_000));
  await step('unmap', () => v.backend.unmap(device));
  return took;
}

async function inner(lab: string, work: string): Promise<void> {
  const cleanup = new Cleanup();
  const cli = new CephCli({ conf: join(labDir(lab), 'ceph', 'ceph.conf'), id: 'admin' });
  const image = `floor${process.pid}`;
  const volume = (name: string, backend: Backend): Volume => ({
    backend,
    mountPoint: join(work, name, 'mnt'),
    logFile: join(work, name, 'postgres.log'),
    pg: { dataDir: join(work, name, 'mnt', 'pgdata'), runDir: join(work, name, 'run'), listen: '127.0.0.1', port: 5432 },
  });
  try {
    await run('rbd', ['-c', cli.opts.conf, ...cli.identityArgs(), 'create', '--size', `${SIZE_MIB}M`, '--image-feature', 'layering', `${LAB_POOL}/${image}`], { timeoutMs: 60_000 });
    cleanup.add(`rbd image ${image}`, async () => void (await run('rbd', ['-c', cli.opts.conf, ...cli.identityArgs(), 'rm', '--no-progress', `${LAB_POOL}/${image}`], { timeoutMs: 60_000, allowFailure: true })));
    const fuseRun = join(work, 'rbd');
    await mkdir(fuseRun, { recursive: true });
    cleanup.add('rbd-fuse', () => unmapFuse(fuseRun, image));
    const localFile = join(work, 'local.img');
    await writeFile(localFile, '');
    await truncate(localFile, SIZE_MIB * 1024 * 1024);
    const volumes = [volume('rbd', fuseBackend(cli, fuseRun, image)), volume('local', localBackend(localFile))];
    for (const v of volumes) {
      await mkdir(v.mountPoint, { recursive: true });
      cleanup.add(`mount ${v.mountPoint}`, async () => {
        await run('umount', [v.mountPoint], { timeoutMs: 30_000, allowFailure: true });
        const loops = await run('losetup', ['--associated', localFile, '--noheadings', '--output', 'NAME'], { timeoutMs: 5000, allowFailure: true });
        for (const d of loops.stdout.split('\n').filter(Boolean)) await loopDetach(d).catch(() => undefined);
      });
    }
    // Registered last, so undone first: a PostgreSQL left by a failed trial would keep its volume busy.
    cleanup.add('postgres', () => running?.stop());
    for (const v of volumes) {
      say(`initializing ${v.backend.label}`);
      await initialize(v);
    }
    const times = new Map<string, Map<Step, number[]>>(volumes.map((v) => [v.backend.label, new Map(STEPS.map((s) => [s, []]))]));
    const totals = new Map<string, number[]>(volumes.map((v) => [v.backend.label, []]));
    for (let i = 1; i <= trials && !cleanup.stopping; i++) {
      for (const v of volumes) {
        const took = await trial(v, i);
        const sum = STEPS.reduce((a, s) => a + took[s], 0);
        for (const s of STEPS) times.get(v.backend.label)!.get(s)!.push(took[s]);
        totals.get(v.backend.label)!.push(sum);
        say(`#${i} ${v.backend.label}: ${sum} ms (${STEPS.map((s) => `${s} ${took[s]}`).join(', ')})`);
        await sleep(200);
      }
    }
    const rows: (string | number)[][] = [];
    for (const v of volumes) {
      for (const s of STEPS) {
        const x = summarize(times.get(v.backend.label)!.get(s)!);
        rows.push([v.backend.label, s, x.n, x.p50, x.p99, x.min]);
      }
      const t = summarize(totals.get(v.backend.label)!);
      rows.push([v.backend.label, 'SUM: the switchover floor', t.n, t.p50, t.p99, t.min]);
    }
    process.stdout.write(`\nSwitchover floor (ms): the steps a drain does one after another, without election, locks or VIP\n`);
    process.stdout.write(table(['storage path', 'step', 'n', 'p50', 'p99', 'min'], rows));
    process.stdout.write(`(goal of issue 4: a drain's write gap at most ${GOAL_MS} ms)\n`);
  } finally {
    await cleanup.run();
  }
}

async function outer(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root (it brings up a lab)');
  const name = `yfl${Math.random().toString(36).slice(2, 5)}`;
  const work = join('/var/tmp', `ycluster-floor-${process.pid}`);
  const cleanup = new Cleanup();
  const load0 = loadavg().map((x) => x.toFixed(2)).join(' ');
  try {
    cleanup.add(`lab ${name}`, async () => void (await destroyLab(name)));
    say(`bringing up lab ${name} (load average ${load0})`);
    await labUp({ name, core: 3, storage: 2, compute: 1, frontend: 0, ceph: true, progress: say });
    cleanup.add(`work dir ${work}`, () => rm(work, { recursive: true, force: true }));
    await mkdir(work, { recursive: true });
    // Only the network namespace changes (the lab's admin one): the host never talks to the lab's addresses, and
    // rbd-fuse's mount, the loop devices and PostgreSQL stay in one mount namespace with this run.
    const child = spawn('nsenter', [`--net=/run/netns/${nsName(name, ADMIN_NODE)}`, '--', process.execPath, '--import', 'tsx', process.argv[1]!, '--inner', name, '--work', work, '--trials', String(trials)], { stdio: 'inherit' });
    cleanup.child('benchmark in the lab namespace', child, 60_000);
    const code = await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? 1)));
    if (code !== 0) throw new Error(`the run inside the lab exited with ${code}`);
    process.stdout.write(`load average at start ${load0}, at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
  } finally {
    await cleanup.run();
  }
}

(values.inner ? inner(values.inner, values.work!) : outer()).catch((err: unknown) => {
  say(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
