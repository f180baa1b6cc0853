import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { labDir } from '../../src/lab/registry.js';
import { labMeta } from '../../src/lab/lab.js';
import { labStatus, overlaps, readJournals, uniqueLabName, waitForJournal, waitForLeader, ycluster } from '../helpers/lab.js';

const name = uniqueLabName('ycf');

before(async () => {
  const up = await ycluster(['lab', 'up', '--name', name, '--core', '3', '--storage', '1', '--compute', '1'], 180_000);
  assert.equal(up.code, 0, `lab up failed:\n${up.stderr}\n${up.stdout}`);
  assert.match(up.stdout, /Cluster healthy/);
  assert.match(up.stdout, /Dashboard: +http:\/\/127\.0\.0\.1:\d+\//);
  assert.match(up.stderr, /all nodes healthy/, 'lab up shows progress');
});

after(async () => {
  const down = await ycluster(['lab', 'down', name]);
  assert.equal(down.code, 0, down.stderr);
  assert.equal(existsSync(labDir(name)), false, 'state dir removed');
  const ns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  assert.ok(!ns.split('\n').some((l) => l.startsWith(`${name}-`)), `namespaces left: ${ns}`);
  const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  assert.ok(!ps.includes(labDir(name)), 'no process of the lab left');
});

test('the lab is healthy: every node registered with its planned name, address and type; every election has a leader', async () => {
  const s = await labStatus(name);
  assert.equal(s.healthy, true, s.reasons.join('; '));
  assert.deepEqual(s.nodes.map((n) => [n.hostname, n.type, n.ip]), [
    ['c1', 'compute', '10.0.0.51'], ['s1', 'core', '10.0.0.11'], ['s2', 'core', '10.0.0.12'], ['s3', 'core', '10.0.0.13'], ['s4', 'storage', '10.0.0.14'],
  ]);
  assert.ok(s.leaders.dhcp && ['s1', 's2', 's3'].includes(s.leaders.dhcp), 'a core node leads dhcp');
  assert.ok(s.leaders.storage, 'storage has a leader');
  for (const n of s.nodes) assert.ok(n.heartbeatAgeSeconds !== null && n.heartbeatAgeSeconds < 15, `${n.hostname} heartbeat age`);
});

test('ycluster status inside the lab prints the table and exits 0; the API answers health and metrics', async () => {
  const r = await ycluster(['lab', 'exec', name, 's2', '--', 'ycluster', 'status']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^s1 +core +10\.0\.0\.11/m);
  assert.match(r.stdout, /Cluster healthy/);
  const { apiPort } = labMeta(name);
  const health = await fetch(`http://127.0.0.1:${apiPort}/api/health`);
  assert.equal(health.status, 200);
  const body = (await health.json()) as { checks: { name: string; ok: boolean }[] };
  assert.ok(body.checks.some((c) => c.name === 'etcd-member' && c.ok));
  const metrics = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text();
  assert.match(metrics, /^ycluster_node_healthy 1$/m);
  const dash = await fetch(`http://127.0.0.1:${apiPort}/`);
  assert.match(dash.headers.get('content-type') ?? '', /text\/html/);
});

test('bad input: clear errors, non-zero exits, 4xx JSON, nothing written', async () => {
  const before = (await labStatus(name)).nodes.length;
  const badMac = await ycluster(['lab', 'exec', name, 's1', '--', 'ycluster', 'node', 'add', 'zz:00:00:00:00:01']);
  assert.notEqual(badMac.code, 0);
  assert.match(badMac.stderr, /malformed MAC address "zz:00:00:00:00:01"/);
  const badType = await ycluster(['lab', 'exec', name, 's1', '--', 'ycluster', 'node', 'add', '02:00:00:00:00:01', '--type', 'toaster']);
  assert.notEqual(badType.code, 0);
  assert.match(badType.stderr, /unknown node type "toaster"/);
  const badCfg = await ycluster(['lab', 'exec', name, 's1', '--', 'ycluster', 'config', 'set', 'gatewayVip', '10.0.0.12']);
  assert.notEqual(badCfg.code, 0);
  assert.match(badCfg.stderr, /VIP 10\.0\.0\.12 lies inside ranges\.storage/);
  const { apiPort } = labMeta(name);
  const res = await fetch(`http://127.0.0.1:${apiPort}/api/nodes`, { method: 'POST', body: '{not json' });
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as { reason: string }).reason, /not valid JSON/);
  const res2 = await fetch(`http://127.0.0.1:${apiPort}/api/nodes`, { method: 'POST', body: JSON.stringify({ mac: '02:00:00:00:00:01', type: 'toaster' }) });
  assert.equal(res2.status, 400);
  assert.equal((await labStatus(name)).nodes.length, before, 'nothing was registered');
});

test('SIGTERM of the dhcp leader hands over within 500 ms, without overlap', async () => {
  const leader = await waitForLeader(name, 'dhcp', undefined);
  const stop = await ycluster(['lab', 'stop', name, leader]);
  assert.equal(stop.code, 0, stop.stderr);
  const stopped = await waitForJournal(name, (j) => j.node === leader && j.election === 'dhcp' && j.event === 'stopped' && /shutting down/.test(j.reason ?? ''));
  const next = await waitForJournal(name, (j) => j.node !== leader && j.election === 'dhcp' && j.event === 'leading' && j.t >= stopped.t);
  const gap = next.t - stopped.t;
  assert.ok(gap < 500, `handover took ${gap} ms`);
  assert.deepEqual(overlaps(readJournals(name), 'dhcp'), []);
  assert.equal((await ycluster(['lab', 'start', name, leader])).code, 0);
  await waitHealthy();
});

test('kill -9 of the dhcp leader: another core node leads within TTL + 3 s; tokens grow; no overlap', async () => {
  const leader = await waitForLeader(name, 'dhcp', undefined);
  const t0 = Date.now();
  const kill = await ycluster(['lab', 'kill', name, leader]);
  assert.equal(kill.code, 0, kill.stderr);
  const next = await waitForJournal(name, (j) => j.node !== leader && j.election === 'dhcp' && j.event === 'leading' && j.t >= t0, 30_000);
  const gap = next.t - t0;
  assert.ok(gap < 6000, `failover took ${gap} ms (TTL 3 s)`);
  assert.deepEqual(overlaps(readJournals(name), 'dhcp', new Map([[leader, t0]])), []);
  assert.equal((await ycluster(['lab', 'start', name, leader])).code, 0);
  await waitHealthy();
});

test('a partitioned storage leader fences itself before its successor starts', async () => {
  const leader = await waitForLeader(name, 'storage', undefined);
  const t0 = Date.now();
  assert.equal((await ycluster(['lab', 'partition', name, leader])).code, 0);
  try {
    const fenced = await waitForJournal(name, (j) => j.node === leader && j.election === 'storage' && j.event === 'stopped' && j.t >= t0, 30_000);
    const next = await waitForJournal(name, (j) => j.node !== leader && j.election === 'storage' && j.event === 'leading' && j.t >= t0, 30_000);
    assert.ok(fenced.t < next.t, `fenced at +${fenced.t - t0} ms, successor at +${next.t - t0} ms`);
    assert.match(fenced.reason ?? '', /deadline|expired/);
  } finally {
    assert.equal((await ycluster(['lab', 'heal', name, leader])).code, 0);
  }
  assert.deepEqual(overlaps(readJournals(name), 'storage'), []);
  await waitHealthy();
});

test('drain: the drained node resigns and stays out; undrain lets it campaign again', async () => {
  const leader = await waitForLeader(name, 'storage', undefined);
  const t0 = Date.now();
  const drain = await ycluster(['lab', 'exec', name, 's1', '--', 'ycluster', 'node', 'drain', leader]);
  assert.equal(drain.code, 0, drain.stderr);
  const next = await waitForLeader(name, 'storage', leader);
  assert.notEqual(next, leader);
  const stopped = readJournals(name).find((j) => j.node === leader && j.election === 'storage' && j.event === 'stopped' && j.t >= t0);
  assert.match(stopped?.reason ?? '', /drained/);
  const s = await labStatus(name);
  assert.equal(s.nodes.find((n) => n.hostname === leader)?.drained, true);
  assert.equal((await ycluster(['lab', 'exec', name, 's1', '--', 'ycluster', 'node', 'undrain', leader])).code, 0);
  assert.deepEqual(overlaps(readJournals(name), 'storage'), []);
});

async function waitHealthy(): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const s = await labStatus(name).catch(() => undefined);
    if (s?.healthy) return;
    if (Date.now() > deadline) throw new Error(`lab not healthy again: ${s?.reasons.join('; ')}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
