import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initRegistryAt, labDir, listLabs, parseRegistry, readRegistryAt, updateRegistryAt, validateLabName } from './registry.js';
import { isYcError } from '../lib/errors.js';

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), 'yc-reg-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('lab names: 1-6 of [a-z0-9], no dash, starting with a letter', () => {
  for (const ok of ['a', 'yc1a2b', 'lab']) assert.doesNotThrow(() => validateLabName(ok));
  for (const bad of ['', 'yc1a2b3', 'a-b', 'Yc', '1ab', 'a/b', '../x']) {
    assert.throws(() => validateLabName(bad), (e) => isYcError(e, 'BAD_INPUT'), bad);
  }
  assert.equal(labDir('yc12', '/r'), '/r/yc12');
  assert.throws(() => labDir('../etc', '/r'));
});

test('init, update and read back; a second init is a conflict', (t) => {
  const dir = join(tmp(t), 'yc1');
  const reg = initRegistryAt(dir, 'yc1');
  assert.deepEqual(reg.namespaces, []);
  updateRegistryAt(dir, (r) => {
    r.namespaces.push('yc1-sw');
    r.pids.push({ pid: 1234, start: '99', what: 'etcd', node: 's1' });
    r.loops.push({ device: '/dev/loop7', backingFile: `${dir}/disk.img` });
  });
  const back = readRegistryAt(dir)!;
  assert.deepEqual(back.namespaces, ['yc1-sw']);
  assert.equal(back.pids[0]?.node, 's1');
  assert.equal(back.loops[0]?.device, '/dev/loop7');
  assert.throws(() => initRegistryAt(dir, 'yc1'), (e) => isYcError(e, 'CONFLICT'));
  assert.ok(JSON.parse(readFileSync(join(dir, 'registry.json'), 'utf8')));
});

test('a missing registry reads as undefined; update of a missing one is NOT_FOUND', (t) => {
  const dir = tmp(t);
  assert.equal(readRegistryAt(dir), undefined);
  assert.throws(() => updateRegistryAt(dir, () => undefined), (e) => isYcError(e, 'NOT_FOUND'));
});

test('damaged registry is CORRUPT_VALUE naming the file', () => {
  assert.throws(() => parseRegistry('{', '/x/registry.json'), (e) => isYcError(e, 'CORRUPT_VALUE') && e.message.includes('/x/registry.json'));
  assert.throws(() => parseRegistry('{"version":2}', 'f'), (e) => isYcError(e, 'CORRUPT_VALUE'));
  assert.throws(() => parseRegistry('null', 'f'), (e) => isYcError(e, 'CORRUPT_VALUE'));
});

test('pid records that could hit the wrong process (PID 1, no start time) are dropped on read', () => {
  const text = JSON.stringify({
    version: 1, name: 'a', createdAt: '', namespaces: [], mounts: [], loops: [], files: [], forwards: [], meta: {},
    pids: [{ pid: 1, start: '1', what: 'x' }, { pid: 50, what: 'x' }, { pid: 'x', start: '1' }, { pid: 77, start: '5', what: 'ok' }],
  });
  assert.deepEqual(parseRegistry(text, 'f').pids.map((p) => p.pid), [77]);
});

test('a lock left by a dead process is taken over', (t) => {
  const dir = join(tmp(t), 'yc2');
  initRegistryAt(dir, 'yc2');
  writeFileSync(join(dir, 'registry.lock'), '999999999');
  updateRegistryAt(dir, (r) => r.files.push('/tmp/a/b'));
  assert.deepEqual(readRegistryAt(dir)!.files, ['/tmp/a/b']);
});

test('listLabs lists good and damaged labs and ignores other entries', (t) => {
  const root = tmp(t);
  initRegistryAt(join(root, 'yc1'), 'yc1');
  mkdirSync(join(root, 'yc2'));
  mkdirSync(join(root, 'yc3'));
  writeFileSync(join(root, 'yc3', 'registry.json'), 'garbage');
  mkdirSync(join(root, 'not-a-lab'));
  const labs = listLabs(root);
  assert.deepEqual(labs.map((l) => l.name), ['yc1', 'yc2', 'yc3']);
  assert.equal(labs[0]?.problem, undefined);
  assert.equal(labs[1]?.problem, 'no registry file');
  assert.match(labs[2]?.problem ?? '', /not JSON/);
  assert.deepEqual(listLabs(join(root, 'absent')), []);
});
