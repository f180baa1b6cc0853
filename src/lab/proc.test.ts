import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { findByCmdline, isSameAlive, mentionsDir, parseStat, procRef, signalRef, waitGone } from './proc.js';

test('parseStat counts fields after the last parenthesis', () => {
  const fields = Array.from({ length: 50 }, (_v, i) => String(i + 3));
  const st = parseStat(`123 (we ird) (name) ${fields.join(' ')}`);
  assert.deepEqual(st, { state: '3', pgrp: 5, start: '22' });
  assert.equal(parseStat('garbage'), undefined);
  assert.equal(parseStat('1 (x) S 0'), undefined);
});

test('mentionsDir matches the dir and paths under it, not siblings', () => {
  const dir = '/run/ycluster/labs/yc12';
  assert.ok(mentionsDir(['node', '/run/ycluster/labs/yc12/fwd.sock'], dir));
  assert.ok(mentionsDir(['x', '--data=/run/ycluster/labs/yc12'], dir));
  assert.ok(mentionsDir(['x', 'unix:/run/ycluster/labs/yc12/a,b'], dir));
  assert.ok(!mentionsDir(['x', '/run/ycluster/labs/yc123/fwd.sock'], dir));
  assert.ok(!mentionsDir(['x', '/run/ycluster/labs/yc12.bak'], dir));
  assert.ok(!mentionsDir([], dir));
});

test('a process is found by its command line and killed only while its start time matches', async () => {
  const marker = `/tmp/yc-proc-test-${process.pid}-${Date.now()}`;
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', marker], { stdio: 'ignore' });
  const exited = once(child, 'exit');
  try {
    const ref = procRef(child.pid!)!;
    assert.ok(isSameAlive(ref));
    assert.deepEqual(findByCmdline(marker).map((p) => p.pid), [child.pid]);
    assert.equal(signalRef({ pid: ref.pid, start: String(Number(ref.start) + 1) }, 'SIGKILL'), false);
    assert.ok(isSameAlive(ref));
    assert.equal(signalRef(ref, 'SIGKILL'), true);
    assert.deepEqual(await waitGone([ref], 5000), []);
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
});
