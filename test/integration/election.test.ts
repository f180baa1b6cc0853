import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { StateClient } from '../../src/state/client.js';
import { Election, keepaliveOnce } from '../../src/state/election.js';
import { silentLogger } from '../../src/lib/log.js';
import { waitFor } from '../../src/lib/time.js';
import { keys } from '../../src/state/keys.js';

let etcd: TestEtcd;
before(async () => {
  etcd = await startEtcd(1);
});
after(async () => {
  await etcd.stop();
});

interface Journal {
  events: { node: string; event: 'leading' | 'stopped'; token?: number; t: number }[];
}

function candidate(state: StateClient, election: string, node: string, journal: Journal, ttlSeconds = 2): Election {
  return new Election({ state, election, node, ttlSeconds, logger: silentLogger }, {
    onLeading: (token) => void journal.events.push({ node, event: 'leading', token, t: performance.now() }),
    onStopped: () => void journal.events.push({ node, event: 'stopped', t: performance.now() }),
  });
}

/** No two leaders at once: every 'leading' of a node comes after the previous leader's 'stopped'. */
function assertNoOverlap(journal: Journal): void {
  let holder: string | undefined;
  let lastToken = 0;
  for (const e of journal.events) {
    if (e.event === 'leading') {
      assert.equal(holder, undefined, `${e.node} started leading while ${holder} still led`);
      assert.ok(e.token! > lastToken, 'fencing tokens only grow');
      lastToken = e.token!;
      holder = e.node;
    } else if (e.node === holder) holder = undefined;
  }
}

test('one leader; resign hands over fast with a larger token', async () => {
  const journal: Journal = { events: [] };
  const a = new StateClient({ endpoints: etcd.endpoints });
  const b = new StateClient({ endpoints: etcd.endpoints });
  const ea = candidate(a, 'resign-test', 'a', journal);
  const eb = candidate(b, 'resign-test', 'b', journal);
  try {
    ea.campaign();
    await waitFor('a leads', () => (ea.isLeader() ? true : undefined));
    eb.campaign();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(eb.isLeader(), false, 'b must not lead while a does');
    const t0 = performance.now();
    await ea.resign();
    await waitFor('b leads', () => (eb.isLeader() ? true : undefined), { intervalMs: 5 });
    const handover = performance.now() - t0;
    assert.ok(handover < 1000, `handover took ${handover.toFixed(0)} ms`);
    assertNoOverlap(journal);
  } finally {
    await ea.close();
    await eb.close();
    a.close();
    b.close();
  }
});

test('a yielding candidate leads only when nobody else takes the free key first', async () => {
  const journal: Journal = { events: [] };
  const clients = [0, 1, 2].map(() => new StateClient({ endpoints: etcd.endpoints }));
  const [a, y, b] = clients as [StateClient, StateClient, StateClient];
  const ea = candidate(a, 'yield-test', 'a', journal);
  const ey = new Election({ state: y, election: 'yield-test', node: 'y', ttlSeconds: 2, yieldMs: 400, logger: silentLogger }, {
    onLeading: (token) => void journal.events.push({ node: 'y', event: 'leading', token, t: performance.now() }),
    onStopped: () => void journal.events.push({ node: 'y', event: 'stopped', t: performance.now() }),
  });
  const eb = candidate(b, 'yield-test', 'b', journal);
  try {
    ea.campaign();
    await waitFor('a leads', () => (ea.isLeader() ? true : undefined));
    // The yielding candidate campaigns first, so only the yield can make it lose.
    ey.campaign();
    await new Promise((r) => setTimeout(r, 100));
    eb.campaign();
    await new Promise((r) => setTimeout(r, 200));
    await ea.resign();
    await waitFor('someone leads', () => (ey.isLeader() || eb.isLeader() ? true : undefined), { intervalMs: 5 });
    assert.equal(eb.isLeader(), true, 'the candidate that does not yield takes the free key');
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(ey.isLeader(), false);
    // With nobody else left, the yielding candidate leads after its wait.
    await ea.close();
    const t0 = performance.now();
    await eb.resign();
    await waitFor('y leads', () => (ey.isLeader() ? true : undefined), { intervalMs: 5, timeoutMs: 5000 });
    const took = performance.now() - t0;
    assert.ok(took >= 350 && took < 2000, `the yielding candidate led ${took.toFixed(0)} ms after the key was freed`);
    assertNoOverlap(journal);
  } finally {
    await ea.close();
    await ey.close();
    await eb.close();
    for (const c of clients) c.close();
  }
});

test('kill -9 of the leader process: a follower leads within TTL + 1 s', async () => {
  const ttl = 2;
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/campaign-child.ts', etcd.endpoints.join(','), 'kill-test', 'child', String(ttl)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const leading = new Promise<number>((resolve) => lines.on('line', (l) => {
    const ev = JSON.parse(l) as { event: string; token?: number };
    if (ev.event === 'leading') resolve(ev.token!);
  }));
  const journal: Journal = { events: [] };
  const s = new StateClient({ endpoints: etcd.endpoints });
  const e = candidate(s, 'kill-test', 'survivor', journal, ttl);
  try {
    const childToken = await leading;
    e.campaign();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(e.isLeader(), false);
    const t0 = performance.now();
    child.kill('SIGKILL');
    await waitFor('survivor leads', () => (e.isLeader() ? true : undefined), { timeoutMs: 10_000, intervalMs: 10 });
    const gap = performance.now() - t0;
    assert.ok(gap < ttl * 1000 + 1000, `failover took ${gap.toFixed(0)} ms`);
    assert.ok(e.fencingToken()! > childToken, 'new token is larger');
  } finally {
    child.kill('SIGKILL');
    await e.close();
    s.close();
  }
});

test('a partitioned leader fences itself before anyone else starts leading', async () => {
  const proxy = await startFaultProxy(etcd.members[0]!.clientPort);
  const journal: Journal = { events: [] };
  const cut = new StateClient({ endpoints: [`127.0.0.1:${proxy.port}`] });
  const ok = new StateClient({ endpoints: etcd.endpoints });
  const ea = candidate(cut, 'partition-test', 'cut', journal);
  const eb = candidate(ok, 'partition-test', 'ok', journal);
  try {
    ea.campaign();
    await waitFor('cut leads', () => (ea.isLeader() ? true : undefined));
    eb.campaign();
    proxy.partition();
    await waitFor('ok leads', () => (eb.isLeader() ? true : undefined), { timeoutMs: 15_000, intervalMs: 10 });
    const stopped = journal.events.find((x) => x.node === 'cut' && x.event === 'stopped');
    const started = journal.events.find((x) => x.node === 'ok' && x.event === 'leading');
    assert.ok(stopped, 'the partitioned leader fenced itself');
    assert.ok(stopped.t < started!.t, `fenced at ${stopped.t.toFixed(0)}, successor began at ${started!.t.toFixed(0)}`);
    assertNoOverlap(journal);
  } finally {
    proxy.heal();
    await ea.close();
    await eb.close();
    cut.close();
    ok.close();
    await proxy.close();
  }
});

test('a paused candidate resigns and does not campaign until resumed', async () => {
  const journal: Journal = { events: [] };
  const a = new StateClient({ endpoints: etcd.endpoints });
  const ea = candidate(a, 'pause-test', 'a', journal);
  try {
    ea.campaign();
    await waitFor('a leads', () => (ea.isLeader() ? true : undefined));
    await ea.setPaused(true);
    assert.equal(ea.isLeader(), false);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(ea.isLeader(), false, 'a paused candidate does not campaign');
    await ea.setPaused(false);
    await waitFor('a leads again', () => (ea.isLeader() ? true : undefined));
  } finally {
    await ea.close();
    a.close();
  }
});

test('a voluntary resign keeps the lease alive while its stepDown runs past the TTL; nobody else leads meanwhile', async () => {
  const journal: Journal = { events: [] };
  const a = new StateClient({ endpoints: etcd.endpoints });
  const b = new StateClient({ endpoints: etcd.endpoints });
  const ttl = 1;
  const how: boolean[] = [];
  const deadlines: { at: number; deadline: number | undefined }[] = [];
  let stoppingSince = 0;
  // A clean stop that takes 2.5 TTLs (a database's shutdown checkpoint on slow storage).
  const ea = new Election({ state: a, election: 'handover-test', node: 'a', ttlSeconds: ttl, logger: silentLogger }, {
    onLeading: (token) => void journal.events.push({ node: 'a', event: 'leading', token, t: performance.now() }),
    onStopped: async (_reason, h) => {
      how.push(h.voluntary);
      stoppingSince = performance.now();
      await new Promise((r) => setTimeout(r, 2500));
      journal.events.push({ node: 'a', event: 'stopped', t: performance.now() });
    },
    onDeadline: (deadline) => void deadlines.push({ at: performance.now(), deadline }),
  });
  const eb = candidate(b, 'handover-test', 'b', journal, ttl);
  try {
    ea.campaign();
    await waitFor('a leads', () => (ea.isLeader() ? true : undefined));
    eb.campaign();
    await ea.resign('drain');
    assert.deepEqual(how, [true]);
    await waitFor('b leads', () => (eb.isLeader() ? true : undefined), { intervalMs: 5 });
    assertNoOverlap(journal);
    const bLeads = journal.events.find((e) => e.node === 'b' && e.event === 'leading')!.t;
    assert.ok(bLeads - stoppingSince >= 2500, `b led ${(bLeads - stoppingSince).toFixed(0)} ms into a's stop`);
    // The watchdog's deadline moved on during the stop (renewals went on) and was cleared at its end.
    assert.equal(deadlines.at(-1)?.deadline, undefined);
    const renewedDuringStop = deadlines.filter((d) => d.at > stoppingSince + 500 && d.deadline !== undefined);
    assert.ok(renewedDuringStop.length >= 2, `deadline renewals during the stop: ${renewedDuringStop.length}`);
  } finally {
    await ea.close();
    await eb.close();
    a.close();
    b.close();
  }
});

test('a voluntary resign announces the handover on the leader key before releasing it; a forced stop does not', async () => {
  const a = new StateClient({ endpoints: etcd.endpoints });
  const b = new StateClient({ endpoints: etcd.endpoints });
  const seen: { node: string | undefined; handingOver: boolean; t: number }[] = [];
  let stopStarted = 0;
  const ea = new Election({ state: a, election: 'announce-test', node: 'a', ttlSeconds: 2, logger: silentLogger }, {
    onLeading: () => undefined,
    onStopped: async () => {
      stopStarted = performance.now();
      await new Promise((r) => setTimeout(r, 400));
    },
  });
  const eb = new Election({ state: b, election: 'announce-test', node: 'b', ttlSeconds: 2, logger: silentLogger }, {
    onLeading: () => undefined,
    onStopped: () => undefined,
    onNewLeader: (l) => void seen.push({ node: l?.node, handingOver: l?.handingOver === true, t: performance.now() }),
  });
  try {
    ea.campaign();
    await waitFor('a leads', () => (ea.isLeader() ? true : undefined));
    eb.campaign();
    await waitFor('b knows a leads', () => (eb.leader()?.node === 'a' ? true : undefined));
    await ea.resign('drain');
    await waitFor('b leads', () => (eb.isLeader() ? true : undefined), { intervalMs: 5 });
    const announced = seen.find((s) => s.node === 'a' && s.handingOver);
    assert.ok(announced, JSON.stringify(seen));
    const released = seen.findIndex((s) => s.node === undefined);
    assert.ok(seen.indexOf(announced) < released, 'the announcement came before the key was released');
    assert.ok(announced.t - stopStarted < 400, 'announced while the old leader was still stopping');
    // b now leads; its key is lost without a resign (deleted from outside): nothing is announced.
    seen.length = 0;
    await a.etcd.delete().key(keys.leader('announce-test').key);
    await waitFor('b stopped', () => (eb.isLeader() ? undefined : true), { intervalMs: 5 });
    assert.ok(!seen.some((s) => s.handingOver), JSON.stringify(seen));
  } finally {
    await ea.close();
    await eb.close();
    a.close();
    b.close();
  }
});

test('lease keepalives move on to the next member when one does not answer (a dead host that keeps its connections)', async () => {
  // Accepts TCP and never speaks: what a member whose machine died looks like until TCP gives up.
  const sockets: Socket[] = [];
  const silent = createServer((sock) => void sockets.push(sock));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const port = (silent.address() as AddressInfo).port;
  const admin = new StateClient({ endpoints: etcd.endpoints });
  const s = new StateClient({ endpoints: [`127.0.0.1:${port}`, ...etcd.endpoints] });
  try {
    const lease = await admin.etcd.leaseClient.leaseGrant({ TTL: '10' });
    await assert.rejects(keepaliveOnce(s, lease.ID, 500), /keepalive timed out after 500 ms/);
    const ttl = await keepaliveOnce(s, lease.ID, 2000);
    assert.ok(ttl > 0 && ttl <= 10, `TTL after the renewal through the next member: ${ttl}`);
  } finally {
    s.close();
    admin.close();
    for (const sock of sockets) sock.destroy();
    silent.close();
  }
});
