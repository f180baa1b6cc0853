// The storage leader on real Ceph (lab up --ceph: mon.a+mgr.x on s1, mon.b on s2, mon.c on s3, osd.0 on s4, osd.1
// on s5, rbd-fuse volumes): PostgreSQL through the storage VIP survives kill -9 of the leader, also of s1 with the
// mon leader and the mgr (the other two mons keep a quorum); a frozen old leader is fenced by Ceph
// (its rbd-fuse clients blocklisted) and cannot write; the registry keeps an image across a failover; a volume
// locked by a live holder raises a clear alarm and nothing is touched. Run `npm run build` first.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { labStorageRunDir } from '../../src/lab/lab.js';
import { nsName } from '../../src/lab/names.js';
import { isSameAlive, procRef } from '../../src/lab/proc.js';
import { labDir } from '../../src/lab/registry.js';
import { run } from '../../src/lib/exec.js';
import { waitFor } from '../../src/lib/time.js';
import { labStatus, ycluster, uniqueLabName } from '../helpers/lab.js';
import { CEPH_WAITS, StorageHarness } from './storage-harness.js';
import { STORAGE_VIP, Writer, agentPid, holders, inNode, postgresOn, psql } from './storage-probe.js';

const name = uniqueLabName('ysc');
const NODES = ['s1', 's2', 's3', 's4', 's5'];
/** Runs mon.a (the mon leader while it lives) and the only mgr. */
const MGR_NODE = 's1';
/** Where the test's own ceph/rbd commands run: never killed or frozen here. */
const ADMIN_NODE = 'c1';

const conf = (): string => join(labDir(name), 'ceph', 'ceph.conf');
const nodeIp = (node: string): string => `10.0.0.${10 + Number(node.slice(1))}`;

async function cephCmd(tool: 'ceph' | 'rbd', args: string[]): Promise<string> {
  const r = await inNode(name, ADMIN_NODE, tool, ['-c', conf(), '--id', 'admin', ...args], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, `${tool} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  const up = await ycluster(['lab', 'up', '--name', name, '--ceph', '--core', '3', '--storage', '2', '--compute', '1'], 300_000);
  assert.equal(up.code, 0, `lab up --ceph failed:\n${up.stderr}\n${up.stdout}`);
  await serving();
  const r = await psql(name, 'CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY)');
  assert.ok(r.ok, r.err);
});

after(async () => {
  const down = await ycluster(['lab', 'down', name]);
  assert.equal(down.code, 0, down.stderr);
  const loops = await run('losetup', ['-l', '-n', '-O', 'BACK-FILE'], { timeoutMs: 5000 });
  assert.ok(!loops.stdout.includes(`/labs/${name}/`), `loop devices left: ${loops.stdout}`);
});

const harness = new StorageHarness(name, CEPH_WAITS);
const serving = (not?: string): Promise<string> => harness.serving(not);
const ids = (): Promise<Set<number>> => harness.ids();
const waitHealthy = (): Promise<void> => harness.waitHealthy();
const drain = (node: string, on: boolean): Promise<void> => harness.drain(node, on);
const leaderTo = (node: string): Promise<void> => harness.leaderTo(node, NODES);
const withWriter = (excused: () => string | undefined, fault: () => Promise<void>): Promise<Writer> => harness.withWriter(excused, fault);

/** The mons in quorum (sorted) and their leader. */
async function quorum(): Promise<{ names: string[]; leader: string }> {
  const q = JSON.parse(await cephCmd('ceph', ['quorum_status', '--format', 'json'])) as { quorum_names: string[]; quorum_leader_name: string };
  return { names: [...q.quorum_names].sort(), leader: q.quorum_leader_name };
}

async function nodeChecks(node: string): Promise<{ name: string; ok: boolean; detail: string }[]> {
  const h = await inNode(name, 'c1', 'curl', ['-s', '-m', '3', `http://${nodeIp(node)}:8080/api/health`]);
  return (JSON.parse(h.stdout) as { checks: { name: string; ok: boolean; detail: string }[] }).checks;
}

async function locks(volume: string): Promise<{ id: string; locker: string; address: string }[]> {
  return JSON.parse(await cephCmd('rbd', ['lock', 'ls', `rbd/${volume}`, '--format', 'json'])) as { id: string; locker: string; address: string }[];
}

async function watchers(volume: string): Promise<string[]> {
  const st = JSON.parse(await cephCmd('rbd', ['status', `rbd/${volume}`, '--format', 'json'])) as { watchers?: { address: string }[] };
  return (st.watchers ?? []).map((w) => w.address);
}

/** Blocklisted client addresses. */
async function blocklist(): Promise<string[]> {
  // The JSON array is followed by a "listed N entries" line.
  const out = await cephCmd('ceph', ['osd', 'blocklist', 'ls', '--format', 'json']);
  return [...out.matchAll(/"addr":\s*"([^"]+)"/g)].map((m) => m[1]!);
}

/** PIDs in the node's network namespace whose argv contains every one of `args`. */
async function pidsWith(node: string, args: string[]): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', nsName(name, node)], { timeoutMs: 5000, allowFailure: true });
  const out: number[] = [];
  for (const pid of r.stdout.split('\n').filter(Boolean).map(Number)) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (args.every((a) => argv.includes(a))) out.push(pid);
  }
  return out;
}

test('rows go to PostgreSQL through the VIP; its volumes are RBD images locked with the leader token; every Ceph daemon is a health check', async () => {
  const leader = await serving();
  assert.deepEqual(await holders(name, STORAGE_VIP, NODES), [leader]);
  const r = await psql(name, `INSERT INTO t(id) VALUES (${harness.takeId()}) RETURNING id`);
  assert.ok(r.ok, r.err);
  const vols = await ycluster(['lab', 'exec', name, 'c1', '--', 'ycluster', 'storage', 'volumes', '--json']);
  assert.equal(vols.code, 0, vols.stderr);
  const pg = (JSON.parse(vols.stdout) as { volumes: { name: string; holder?: { node: string; token: number } }[] }).volumes.find((v) => v.name === 'postgres');
  assert.equal(pg?.holder?.node, leader);
  assert.deepEqual((await locks('postgres')).map((l) => l.id), [`ycluster:${leader}:${pg?.holder?.token}`]);
  assert.ok((await watchers('postgres')).every((a) => a.startsWith(`${nodeIp(leader)}:`)), 'only the leader has the image open');
  const s1 = await nodeChecks('s1');
  for (const c of ['ceph:mon.a', 'ceph:mgr.x']) assert.ok(s1.find((x) => x.name === c)?.ok, `${c} on s1: ${JSON.stringify(s1)}`);
  const s2 = await nodeChecks('s2');
  assert.ok(s2.find((x) => x.name === 'ceph:mon.b')?.ok, `mon.b on s2: ${JSON.stringify(s2)}`);
  assert.equal(s2.find((x) => x.name === 'ceph:mgr.x'), undefined, 'one mgr only');
  assert.ok((await nodeChecks('s3')).find((x) => x.name === 'ceph:mon.c')?.ok);
  assert.deepEqual((await quorum()).names, ['a', 'b', 'c']);
  assert.ok((await nodeChecks('s4')).find((x) => x.name === 'ceph:osd.0')?.ok);
  assert.ok((await nodeChecks('s5')).find((x) => x.name === 'ceph:osd.1')?.ok);
  assert.match(await cephCmd('ceph', ['osd', 'pool', 'get', 'rbd', 'size']), /size: 2/);
});

test('kill -9 of the storage leader: PostgreSQL takes writes through the VIP on another node; every acknowledged row is there', async () => {
  const leader = await serving();
  let dead: string | undefined;
  try {
    const w = await withWriter(() => dead, async () => {
      dead = leader;
      assert.equal((await ycluster(['lab', 'kill', name, leader])).code, 0);
      const next = await serving(leader);
      assert.notEqual(next, leader);
    });
    assert.ok(w.acked.length > 6);
    assert.ok((await locks('postgres')).every((l) => !l.id.startsWith(`ycluster:${leader}:`)), 'the dead leader lock was broken');
  } finally {
    await run('ip', ['-n', nsName(name, leader), 'addr', 'del', `${STORAGE_VIP}/24`, 'dev', 'eth0'], { timeoutMs: 5000, allowFailure: true });
    await ycluster(['lab', 'start', name, leader]);
    await waitHealthy();
  }
});

test('a frozen old leader (agent, watchdog and postgres stopped past the TTL) is blocklisted by Ceph and cannot write after it resumes', async () => {
  const leader = await serving();
  const agent = await agentPid(name, leader);
  assert.ok(agent, 'agent pid');
  const frozen = [agent, ...(await pidsWith(leader, ['watchdog', '--file'])), ...(await postgresOn(name, leader))];
  assert.ok(frozen.length >= 3, `agent, watchdog and postgres: ${frozen.join(' ')}`);
  const oldClients = [...(await watchers('postgres')), ...(await watchers('registry'))];
  assert.ok(oldClients.length >= 2, `the leader's rbd-fuse clients: ${oldClients.join(' ')}`);
  const probe = join(labStorageRunDir(name, leader), 'mnt', 'postgres', 'fence-probe');
  let stale = false;
  let staleId = 0;
  let probeRun: Promise<{ code: number; out: string }> | undefined;
  const signal = (sig: NodeJS.Signals): void => {
    for (const pid of frozen) {
      try {
        process.kill(pid, sig);
      } catch {
        /* gone */
      }
    }
  };
  try {
    await withWriter(() => (stale ? leader : undefined), async () => {
      stale = true;
      signal('SIGSTOP');
      const next = await serving(leader);
      // Fenced in Ceph: each of the old node's clients is on the blocklist, the locks are the new leader's.
      const listed = await blocklist();
      for (const c of oldClients) assert.ok(listed.includes(c), `client ${c} of ${leader} is not blocklisted: ${listed.join(' ')}`);
      assert.ok((await locks('postgres')).every((l) => l.id.startsWith(`ycluster:${next}:`)));
      // A write through the old node's mount (its XFS on the rbd-fuse loop device) must fail: rbd-fuse is
      // blocklisted. It may block until the resumed agent stops rbd-fuse, so it runs in the background.
      probeRun = run('nsenter', ['-t', String(agent), '-m', '--', 'timeout', '-s', 'KILL', '60', 'dd', 'if=/dev/urandom', `of=${probe}`, 'bs=4k', 'count=16', 'conv=fsync'], { timeoutMs: 90_000, allowFailure: true })
        .then((r) => ({ code: r.code ?? -1, out: (r.stderr + r.stdout).trim() }));
      signal('SIGCONT');
      staleId = harness.takeId();
      // The old postgres may still take this INSERT on its own address for a moment; it must not reach the volume.
      await psql(name, `INSERT INTO t(id) VALUES (${staleId})`, { host: nodeIp(leader), timeoutS: 2 });
      await waitFor('the old leader released its VIP and postgres', async () => {
        const vip = await holders(name, STORAGE_VIP, [leader]);
        return vip.length === 0 && (await postgresOn(name, leader)).length === 0 ? true : undefined;
      }, { timeoutMs: 30_000, intervalMs: 200 });
      stale = false;
    });
    const p = await probeRun!;
    assert.notEqual(p.code, 0, `a write through the fenced node's mount succeeded: ${p.out}`);
    console.log(`write through the fenced mount: exit ${p.code}: ${p.out.split('\n')[0] ?? ''}`);
    assert.equal((await ids()).has(staleId), false, 'a write to the fenced leader reached the volume');
  } finally {
    signal('SIGCONT');
    await probeRun;
    await serving();
  }
});

test('the agent stops its Ceph daemons when it stops, and runs them again when it starts', async () => {
  const leader = await serving();
  const node = leader === 's5' ? 's4' : 's5';
  const osd = node === 's4' ? '0' : '1';
  const agent = await agentPid(name, node);
  assert.ok(agent, 'agent pid');
  assert.equal((await pidsWith(node, ['ceph-osd', '-i', osd])).length, 1, `osd.${osd} runs on ${node}`);
  const ref = procRef(agent);
  assert.ok(ref);
  try {
    process.kill(agent, 'SIGTERM');
    // Zombies count as gone: PID 1 here reaps late.
    await waitFor('the agent to exit', () => (isSameAlive(ref) ? undefined : true), { timeoutMs: 30_000, intervalMs: 100 });
    assert.deepEqual(await pidsWith(node, ['ceph-osd', '-i', osd]), [], `the agent left osd.${osd} running`);
  } finally {
    await ycluster(['lab', 'start', name, node]);
  }
  // The cluster status may still show the old agent's last report for a moment: ask the new agent itself.
  await waitFor(`osd.${osd} healthy under the new agent`, async () => ((await nodeChecks(node).catch(() => [])).find((c) => c.name === `ceph:osd.${osd}`)?.ok ? true : undefined), { timeoutMs: 90_000, intervalMs: 500 });
  await waitHealthy();
});



test('an image pushed to the registry is pulled back identical after a failover', async () => {
  await harness.registryCase();
});

test('bad input: a volume locked by a live holder with a larger token gives a clear alarm; nothing is opened, broken or written', async () => {
  await serving();
  const count = (await ids()).size;
  const candidate = 's3';
  const INTRUDER = 'ycluster:intruder:1000000000000';
  let holder: ReturnType<typeof spawn> | undefined;
  try {
    // Nobody leads: every storage-capable node drained, then what a stepped-down leader left is released.
    for (const n of NODES) await drain(n, true);
    await waitFor('no storage leader', async () => ((await labStatus(name)).leaders.storage ? undefined : true), { timeoutMs: 30_000, intervalMs: 300 });
    await waitFor('volumes closed', async () => ((await watchers('postgres')).length === 0 ? true : undefined), { timeoutMs: 30_000, intervalMs: 300 });
    for (const l of await locks('postgres')) await cephCmd('rbd', ['lock', 'rm', 'rbd/postgres', l.id, l.locker]);
    // A live holder: a process that has the image locked (and open) with a larger token than any leader's.
    await cephCmd('rbd', ['lock', 'add', 'rbd/postgres', INTRUDER]);
    holder = spawn('ip', ['netns', 'exec', nsName(name, 'c1'), 'rbd', '-c', conf(), '--id', 'admin', 'watch', 'rbd/postgres'], { stdio: ['pipe', 'ignore', 'ignore'] }); // it watches until stdin ends
    await waitFor('the intruder has the image open', async () => ((await watchers('postgres')).length === 1 ? true : undefined), { timeoutMs: 20_000, intervalMs: 200 });
    const [intruderClient] = await watchers('postgres');
    const lockBefore = await locks('postgres');
    const blocklistBefore = await blocklist();

    await drain(candidate, false);
    const alarm = await waitFor('lock conflict alarm', async () => (await nodeChecks(candidate)).find((c) => c.name === 'storage-leader' && !c.ok && /locked by intruder \(token 1000000000000\)/.test(c.detail)), { timeoutMs: 60_000, intervalMs: 300 });
    assert.match(alarm.detail, /lead failed at lock postgres/);
    assert.deepEqual(await holders(name, STORAGE_VIP, NODES), [], 'nobody holds the VIP');
    for (const n of NODES) assert.deepEqual(await postgresOn(name, n), [], `no postgres on ${n}`);
    assert.deepEqual(await locks('postgres'), lockBefore, 'the intruder lock is not broken');
    assert.deepEqual(await watchers('postgres'), [intruderClient], 'nobody else opened the image');
    // The mgr may blocklist its own old clients at any time: only the intruder's side matters (c1, where the lock was added and the watcher runs).
    const added = (await blocklist()).filter((a) => !blocklistBefore.includes(a));
    assert.deepEqual(added.filter((a) => a.startsWith(`${nodeIp('c1')}:`) || a === lockBefore[0]?.address), [], `the live holder was fenced: ${added.join(' ')}`);
  } finally {
    holder?.kill('SIGKILL');
    for (const l of await locks('postgres').catch(() => [])) if (l.id === INTRUDER) await cephCmd('rbd', ['lock', 'rm', 'rbd/postgres', l.id, l.locker]).catch(() => undefined);
    for (const n of NODES) await drain(n, false);
  }
  await serving();
  assert.equal((await ids()).size, count, 'no rows lost or added');
});

test('kill -9 of s1 (mon.a, the mgr and the storage leader): mon.b and mon.c keep a quorum, PostgreSQL takes writes through the VIP on another node; every acknowledged row is there', async () => {
  // The hardest case on purpose: the next leader's takeover (blocklist, lock rm) needs the mons, which must
  // first elect a new leader without mon.a.
  await leaderTo(MGR_NODE);
  assert.equal((await quorum()).leader, 'a');
  let dead: string | undefined;
  try {
    const w = await withWriter(() => dead, async () => {
      dead = MGR_NODE;
      assert.equal((await ycluster(['lab', 'kill', name, MGR_NODE])).code, 0);
      const next = await serving(MGR_NODE);
      assert.notEqual(next, MGR_NODE);
    });
    assert.ok(w.acked.length > 6);
    console.log(`kill -9 of s1: longest gap between acknowledged INSERTs ${w.longestGap()} ms`);
    const q = await quorum();
    assert.deepEqual(q.names, ['b', 'c'], 'the two surviving mons are the quorum');
    assert.notEqual(q.leader, 'a');
    assert.ok((await locks('postgres')).every((l) => !l.id.startsWith(`ycluster:${MGR_NODE}:`)), 'the dead leader lock was broken');
    await waitFor('mon.b healthy in the quorum without mon.a', async () => ((await nodeChecks('s2').catch(() => [])).find((c) => c.name === 'ceph:mon.b')?.ok ? true : undefined), { timeoutMs: 20_000, intervalMs: 500 });
  } finally {
    await run('ip', ['-n', nsName(name, MGR_NODE), 'addr', 'del', `${STORAGE_VIP}/24`, 'dev', 'eth0'], { timeoutMs: 5000, allowFailure: true });
    await ycluster(['lab', 'start', name, MGR_NODE]);
    await waitHealthy();
  }
  // The restarted mon.a syncs and rejoins (its agent's health check says so; the quorum confirms it).
  await waitFor('mon.a back in the quorum', async () => ((await quorum()).names.length === 3 ? true : undefined), { timeoutMs: 30_000, intervalMs: 500 });
});
