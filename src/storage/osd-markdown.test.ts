import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { OsdFailureDetector, markUnreachableOsdsDown, osdsToMarkDown, parseOsdDump, probeTcp, type ProbeResult } from './osd-markdown.js';

const dump = JSON.stringify({
  epoch: 20,
  osds: [
    { osd: 0, up: 1, public_addrs: { addrvec: [{ type: 'v1', addr: '10.0.0.14:6800', nonce: 3579 }] }, public_addr: '10.0.0.14:6800/3579' },
    { osd: 1, up: 1, public_addr: '10.0.0.15:6802/3394' },
    { osd: 2, up: 0, public_addr: '10.0.0.16:6800/1' },
    { osd: 3, up: 1, public_addr: 'garbage' },
    { up: 1, public_addr: '10.0.0.17:6800/1' },
  ],
});

test('parseOsdDump: up OSDs with a readable address (the addrvec first), and the epoch', () => {
  assert.deepEqual(parseOsdDump(dump).up, [
    { id: 0, host: '10.0.0.14', port: 6800 },
    { id: 1, host: '10.0.0.15', port: 6802 },
  ]);
  assert.equal(parseOsdDump(dump).epoch, 20);
  assert.deepEqual(parseOsdDump('{}'), { epoch: undefined, fingerprint: undefined, up: [] });
  assert.throws(() => parseOsdDump('not json'));
});

test('osdsToMarkDown: the unreachable ones, and none when nothing answered (we are the ones cut off)', () => {
  const osd = (id: number) => ({ id, host: '10.0.0.1', port: 1 });
  assert.deepEqual(osdsToMarkDown([{ osd: osd(0), probe: 'open' }, { osd: osd(1), probe: 'silent' }, { osd: osd(2), probe: 'refused' }]), [1, 2]);
  assert.deepEqual(osdsToMarkDown([{ osd: osd(0), probe: 'silent' }, { osd: osd(1), probe: 'refused' }]), []);
  assert.deepEqual(osdsToMarkDown([{ osd: osd(0), probe: 'open' }]), []);
});

test('markUnreachableOsdsDown marks exactly the OSDs whose probe failed, in one call', async () => {
  const calls: number[][] = [];
  const answers: Record<string, ProbeResult> = { '10.0.0.14': 'open', '10.0.0.15': 'silent' };
  const down = await markUnreachableOsdsDown({
    dumpOsds: () => Promise.resolve(parseOsdDump(dump)),
    markDown: (ids) => {
      calls.push(ids);
      return Promise.resolve();
    },
    probe: (host) => Promise.resolve(answers[host] ?? 'silent'),
  });
  assert.deepEqual(down, [1]);
  assert.deepEqual(calls, [[1]]);
});

test('probeTcp tells a listening port from a closed one (loopback)', async (t) => {
  const server = createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const addr = server.address();
  assert.ok(addr && typeof addr === 'object');
  assert.equal(await probeTcp('127.0.0.1', addr.port, 1000), 'open');
  server.close();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await probeTcp('127.0.0.1', addr.port, 1000), 'refused');
});

test('OsdFailureDetector marks an OSD down only after two missed probes in a row, and never when it reaches none', async () => {
  const marked: number[][] = [];
  let answers: Record<string, ProbeResult> = { '10.0.0.14': 'open', '10.0.0.15': 'silent' };
  const det = new OsdFailureDetector({
    dumpOsds: () => Promise.resolve(parseOsdDump(dump)),
    markDown: (ids) => {
      marked.push(ids);
      return Promise.resolve();
    },
    probe: (host) => Promise.resolve(answers[host] ?? 'silent'),
  });
  assert.deepEqual(await det.pass(), [], 'one miss is not enough');
  answers = { '10.0.0.14': 'open', '10.0.0.15': 'open' };
  assert.deepEqual(await det.pass(), [], 'an answer resets the count');
  answers = { '10.0.0.14': 'open', '10.0.0.15': 'refused' };
  assert.deepEqual(await det.pass(), []);
  assert.deepEqual(await det.pass(), [1], 'two misses in a row');
  assert.deepEqual(marked, [[1]]);
  answers = { '10.0.0.14': 'silent', '10.0.0.15': 'silent' };
  assert.deepEqual(await det.pass(), []);
  assert.deepEqual(await det.pass(), [], 'nothing answers: this node is the one cut off');
  assert.deepEqual(marked, [[1]]);
});

test('the fingerprint changes when an OSD goes down or comes back at a new address, not with the epoch or the order', () => {
  const base = JSON.parse(dump) as { epoch: number; osds: Record<string, unknown>[] };
  const osdFingerprint = (json: string) => parseOsdDump(json).fingerprint;
  const fp = osdFingerprint(dump);
  assert.ok(fp !== undefined);
  assert.equal(osdFingerprint(JSON.stringify({ ...base, epoch: 21, osds: [...base.osds].reverse() })), fp);
  const down = structuredClone(base);
  down.osds[1]!.up = 0;
  assert.notEqual(osdFingerprint(JSON.stringify(down)), fp);
  const moved = structuredClone(base);
  moved.osds[1]!.public_addr = '10.0.0.15:6802/9999';
  assert.notEqual(osdFingerprint(JSON.stringify(moved)), fp);
  assert.equal(osdFingerprint('{"epoch":3}'), undefined);
});
