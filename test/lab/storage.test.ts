// The storage leader in a lab (loop volumes): PostgreSQL and the registry through the storage VIP survive
// kill -9, partition, a stopped agent and drain; bad input leaves data alone. Run `npm run build` first.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labVolumesDir } from '../../src/lab/lab.js';
import { nsName } from '../../src/lab/names.js';
import { run } from '../../src/lib/exec.js';
import { waitFor } from '../../src/lib/time.js';
import { labStatus, uniqueLabName, ycluster } from '../helpers/lab.js';
import { StorageHarness } from './storage-harness.js';
import { STORAGE_VIP, Writer, agentPid, holders, inNode, postgresOn, psql } from './storage-probe.js';

const name = uniqueLabName('yst');
const deaths = new Map<string, number>();
const harness = new StorageHarness(name);
const serving = (not?: string): Promise<string> => harness.serving(not);
const ids = (): Promise<Set<number>> => harness.ids();
const waitHealthy = (): Promise<void> => harness.waitHealthy();
const withWriter = (excused: () => string | undefined, fault: (w: Writer) => Promise<void>): Promise<Writer> => harness.withWriter(excused, fault);

before(async () => {
  const up = await ycluster(['lab', 'up', '--name', name, '--core', '3', '--storage', '1', '--compute', '1'], 180_000);
  assert.equal(up.code, 0, `lab up failed:\n${up.stderr}\n${up.stdout}`);
  await serving();
  const r = await psql(name, 'CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY)');
  assert.ok(r.ok, r.err);
});

after(async () => {
  const down = await ycluster(['lab', 'down', name]);
  assert.equal(down.code, 0, down.stderr);
});

test('PostgreSQL and the registry answer through the storage VIP, held by the storage leader alone', async () => {
  const leader = await serving();
  assert.deepEqual(await holders(name, STORAGE_VIP), [leader]);
  const r = await psql(name, `INSERT INTO t(id) VALUES (${harness.takeId()}) RETURNING id`);
  assert.ok(r.ok, r.err);
  const v2 = await inNode(name, 'c1', 'curl', ['-s', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', `http://${STORAGE_VIP}:5000/v2/`]);
  assert.equal(v2.stdout, '200');
  const h = await inNode(name, 'c1', 'curl', ['-s', '-m', '3', `http://${leaderIp(leader)}:8080/api/health`]);
  const checks = (JSON.parse(h.stdout) as { checks: { name: string; ok: boolean; detail: string }[] }).checks;
  assert.match(checks.find((c) => c.name === 'storage-leader')?.detail ?? '', /leading with token \d+/);
  assert.ok(checks.find((c) => c.name === 'service:postgres')?.ok);
});

test('ycluster storage status and volumes show the leader, its services and the volume locks with its token', async () => {
  const leader = await serving();
  const st = await ycluster(['lab', 'exec', name, 'c1', '--', 'ycluster', 'storage', 'status', '--json']);
  assert.equal(st.code, 0, st.stderr + st.stdout);
  const doc = JSON.parse(st.stdout) as { leader: string; services: { name: string; healthy: boolean }[] };
  assert.equal(doc.leader, leader);
  assert.ok(doc.services.some((x) => x.name === 'postgres' && x.healthy));
  const vols = await ycluster(['lab', 'exec', name, 'c1', '--', 'ycluster', 'storage', 'volumes', '--json']);
  assert.equal(vols.code, 0, vols.stderr);
  const v = JSON.parse(vols.stdout) as { volumes: { name: string; holder?: { node: string; token: number }; mountPoint?: string }[] };
  const pg = v.volumes.find((x) => x.name === 'postgres');
  assert.equal(pg?.holder?.node, leader);
  assert.ok((pg?.holder?.token ?? 0) > 0);
  const leaders = await ycluster(['lab', 'exec', name, 'c1', '--', 'ycluster', 'leader', 'show', '--json']);
  const storageLeader = (JSON.parse(leaders.stdout) as { election: string; node: string; token: number }[]).find((l) => l.election === 'storage');
  assert.equal(storageLeader?.token, pg?.holder?.token, 'the lock carries the leader key revision as its fencing token');
});

/** The last storage-related lines of every storage-capable node's logs, for a failure message. */
function storageLogs(): string {
  const out: string[] = [];
  for (const node of ['s1', 's2', 's3', 's4']) {
    for (const file of ['agent.log', 'data/watchdog.log']) {
      try {
        const lines = readFileSync(`/run/ycluster/labs/${name}/nodes/${node}/${file}`, 'utf8').split('\n').filter((l) => /storage|watchdog|leading|fenc|alarm|lock/.test(l));
        out.push(`--- ${node}/${file}`, ...lines.slice(-8).map((l) => l.slice(0, 400)));
      } catch {
        /* not there */
      }
    }
  }
  return out.join('\n');
}

const leaderIp = (node: string): string => `10.0.0.${10 + Number(node.slice(1))}`;

test('kill -9 of the storage leader (power off): writes resume on another node; every acknowledged row is there', async () => {
  const leader = await serving();
  let dead: string | undefined;
  try {
    const w = await withWriter(() => dead, async () => {
      dead = leader;
      deaths.set(leader, Date.now());
      assert.equal((await ycluster(['lab', 'kill', name, leader])).code, 0);
      assert.equal((await ycluster(['lab', 'partition', name, leader])).code, 0);
      await serving(leader);
    });
    assert.ok(w.acked.length > 6);
  } finally {
    // A rebooted machine comes back without the VIP it held.
    await run('ip', ['-n', nsName(name, leader), 'addr', 'del', `${STORAGE_VIP}/24`, 'dev', 'eth0'], { timeoutMs: 5000, allowFailure: true });
    await run('ip', ['-n', nsName(name, leader), 'addr', 'del', '10.0.0.254/24', 'dev', 'eth0'], { timeoutMs: 5000, allowFailure: true });
    await ycluster(['lab', 'heal', name, leader]);
    await ycluster(['lab', 'start', name, leader]);
    await waitHealthy();
  }
});

test('partition of the storage leader: it drops the VIP and stops postgres; another node serves every acknowledged row', async () => {
  await harness.partitionCase(await serving(), { deaths });
});

test('SIGSTOP of the leader agent longer than the TTL: another leader serves; after SIGCONT the old one stops and its writes never reach the volume', async () => {
  const leader = await serving();
  const pid = await agentPid(name, leader);
  assert.ok(pid, 'agent pid');
  let stale = false;
  let staleId = 0;
  try {
    await withWriter(() => (stale ? leader : undefined), async () => {
      stale = true;
      process.kill(pid, 'SIGSTOP');
      await serving(leader).catch((err: unknown) => {
        throw new Error(`${err instanceof Error ? err.message : String(err)}\n${storageLogs()}`);
      });
      // The old postgres still runs and may accept a write sent to its own address: it must land in a fenced copy.
      staleId = harness.takeId();
      await psql(name, `INSERT INTO t(id) VALUES (${staleId})`, { host: leaderIp(leader), timeoutS: 2 });
      process.kill(pid, 'SIGCONT');
      await waitFor('old leader released its VIP and postgres', async () => {
        const vip = await holders(name, STORAGE_VIP, [leader]);
        return vip.length === 0 && (await postgresOn(name, leader)).length === 0 ? true : undefined;
      }, { timeoutMs: 20_000, intervalMs: 200 });
      stale = false;
    });
    assert.equal((await ids()).has(staleId), false, 'a write to the fenced leader reached the volume');
  } finally {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      /* gone */
    }
    // The old leader keeps its storage alarms (teardown, split-brain) for alarmHoldMs on purpose: wait for service, not for all-green.
    await serving();
  }
});

test('drain: planned switchover keeps every row; the old leader hands over (the next starts at once, not after its lease)', async () => {
  await harness.drainCase(await serving());
});



test('an image pushed to the registry is pulled back identical after a failover', async () => {
  await harness.registryCase();
});

async function nodeChecks(node: string): Promise<{ name: string; ok: boolean; detail: string }[]> {
  const h = await inNode(name, 'c1', 'curl', ['-s', '-m', '3', `http://${leaderIp(node)}:8080/api/health`]);
  return (JSON.parse(h.stdout) as { checks: { name: string; ok: boolean; detail: string }[] }).checks;
}

async function postgresAnywhere(): Promise<string[]> {
  const out: string[] = [];
  for (const n of ['s1', 's2', 's3', 's4']) if ((await postgresOn(name, n)).length > 0) out.push(n);
  return out;
}

test('bad input: a volume locked with a larger token and a taken port give clear alarms; no data touched, no second writer', async () => {
  const leader = await serving();
  const count = (await ids()).size;
  const others = ['s1', 's2', 's3', 's4'].filter((n) => n !== leader);
  const [candidate, ...rest] = others as [string, ...string[]];
  const drained = [leader, ...rest];
  const vol = labVolumesDir(name);
  let blocker: number | undefined;
  try {
    // Only `candidate` may lead; first the lock conflict.
    for (const n of rest) assert.equal((await ycluster(['lab', 'exec', name, 's1', '--', 'ycluster', 'node', 'drain', n])).code, 0);
    writeFileSync(join(vol, 'postgres.lock.intruder'), JSON.stringify({ node: 'intruder', token: 1e12 }) + '\n');
    await run('mv', [join(vol, 'postgres.lock.intruder'), join(vol, 'postgres.lock')], { timeoutMs: 5000 });
    const dataBefore = readdirSync(vol).filter((f) => f.startsWith('postgres@'));
    assert.equal((await ycluster(['lab', 'exec', name, 's1', '--', 'ycluster', 'node', 'drain', leader])).code, 0);
    const alarm = await waitFor('lock conflict alarm', async () => (await nodeChecks(candidate)).find((c) => c.name === 'storage-leader' && !c.ok && /locked by intruder \(token 1000000000000\)/.test(c.detail)), { timeoutMs: 30_000, intervalMs: 300 });
    assert.match(alarm.detail, /lead failed at lock postgres/);
    assert.deepEqual(await holders(name, STORAGE_VIP), [], 'nobody holds the VIP');
    assert.deepEqual(await postgresAnywhere(), [], 'no postgres runs');
    assert.deepEqual(readdirSync(vol).filter((f) => f.startsWith('postgres@')), dataBefore, 'volume data untouched');
    assert.deepEqual(JSON.parse(readFileSync(join(vol, 'postgres.lock'), 'utf8')), { node: 'intruder', token: 1e12 });

    // Then a port the service needs is taken on the only candidate.
    const child = spawn('ip', ['netns', 'exec', nsName(name, candidate), process.execPath, '-e', "require('net').createServer().listen(5432,'0.0.0.0');setTimeout(()=>{},120000)"], { stdio: 'ignore' });
    blocker = child.pid;
    await waitFor('port 5432 taken', async () => ((await inNode(name, candidate, 'ss', ['-Hltn', 'sport = :5432'])).stdout.includes('5432') ? true : undefined), { timeoutMs: 5000, intervalMs: 100 });
    rmSync(join(vol, 'postgres.lock'));
    const portAlarm = await waitFor('service alarm', async () => (await nodeChecks(candidate)).find((c) => c.name === 'storage-leader' && !c.ok && /not healthy after/.test(c.detail)), { timeoutMs: 60_000, intervalMs: 500 });
    assert.match(portAlarm.detail, /postgres/);
    assert.deepEqual(await holders(name, STORAGE_VIP), [], 'nobody holds the VIP');
  } finally {
    if (blocker) process.kill(blocker, 'SIGKILL');
    await run('rm', ['-f', join(vol, 'postgres.lock')], { timeoutMs: 5000, allowFailure: true }).catch(() => undefined);
    for (const n of drained) await ycluster(['lab', 'exec', name, 's1', '--', 'ycluster', 'node', 'undrain', n]);
  }
  await serving();
  assert.equal((await ids()).size, count, 'no rows lost or added');
});

test('bad input: a known volume that vanished or reads blank is never re-created or formatted (clear alarm, nothing written); `storage forget --yes` starts it afresh', async () => {
  const leader = await serving();
  const count = (await ids()).size;
  const vol = labVolumesDir(name);
  const others = ['s1', 's2', 's3', 's4'].filter((n) => n !== leader);
  const [candidate, ...rest] = others as [string, ...string[]];
  const cli = (...args: string[]): ReturnType<typeof ycluster> => ycluster(['lab', 'exec', name, 's1', '--', 'ycluster', ...args]);
  const registryFiles = (): string[] => readdirSync(vol).filter((f) => f.startsWith('registry')).sort();
  const alarmOn = (node: string, re: RegExp): Promise<{ detail: string }> =>
    waitFor(`alarm ${String(re)} on ${node}`, async () => (await nodeChecks(node)).find((c) => c.name === 'storage-leader' && !c.ok && re.test(c.detail)), { timeoutMs: 60_000, intervalMs: 300 });
  try {
    for (const n of rest) await harness.drain(n, true);
    // The image vanishes under the running leader (its loop device keeps the unlinked file until it lets go).
    for (const f of registryFiles()) rmSync(join(vol, f), { force: true });
    await harness.drain(leader, true);
    const missing = await alarmOn(candidate, /volume registry is missing/);
    assert.match(missing.detail, /lead failed at lock registry: volume registry is missing: the cluster (created it on|has used it since) .*it is not created again.*storage forget registry --yes/);
    assert.deepEqual(registryFiles(), [], 'no empty volume was created in its place');
    assert.deepEqual(await holders(name, STORAGE_VIP), [], 'nobody holds the VIP');
    assert.deepEqual(await postgresAnywhere(), [], 'nothing of the takeover was left running');

    const refused = await cli('storage', 'forget', 'registry');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /add --yes/);
    const forgot = await cli('storage', 'forget', 'registry', '--yes');
    assert.equal(forgot.code, 0, forgot.stderr);
    assert.equal((await serving()), candidate, 'forgotten, the volume is made afresh and the candidate leads');
    const recorded = JSON.parse((await cli('storage', 'volumes', '--json')).stdout) as { volumes: { name: string; record: { formattedAt?: string; adopted: boolean } | null }[] };
    const reg = recorded.volumes.find((v) => v.name === 'registry')?.record;
    assert.ok(reg?.formattedAt && !reg.adopted, `registry record: ${JSON.stringify(reg)}`);

    // Now it reads blank (its file system's first MiB zeroed while nobody holds it): not formatted over.
    await harness.drain(candidate, true);
    await waitFor('nobody leads storage', async () => (!(await labStatus(name)).leaders.storage ? true : undefined), { timeoutMs: 30_000, intervalMs: 300 });
    await run('dd', ['if=/dev/zero', `of=${join(vol, 'registry.img')}`, 'bs=1M', 'count=1', 'conv=notrunc,fsync'], { timeoutMs: 10_000 });
    const before = head(join(vol, 'registry.img'), 4 << 20);
    await harness.drain(candidate, false);
    const blank = await alarmOn(candidate, /volume registry reads blank/);
    assert.match(blank.detail, /a file system has been on it since .*: it is not formatted again/);
    assert.ok(head(join(vol, 'registry.img'), 4 << 20).equals(before), 'the blank volume was not written');
    assert.deepEqual(await holders(name, STORAGE_VIP), [], 'nobody holds the VIP');
    assert.equal((await cli('storage', 'forget', 'registry', '--yes')).code, 0);
    assert.equal(await serving(), candidate);
  } finally {
    for (const n of ['s1', 's2', 's3', 's4']) await harness.drain(n, false);
  }
  await serving();
  assert.equal((await ids()).size, count, 'no rows lost or added');
});

/** The first `n` bytes of a file (volume images are large). */
function head(path: string, n: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    return buf.subarray(0, readSync(fd, buf, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}
