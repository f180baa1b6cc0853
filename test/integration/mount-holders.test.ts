// findHolders reads /proc as the storage leader does when a past term's volume will not unmount.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findHolders } from '../../src/storage-leader/procs.js';
import { waitFor } from '../../src/lib/time.js';

test('findHolders names the processes whose working directory or an open file is under a path, and no others', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ycmh-'));
  const elsewhere = mkdtempSync(join(tmpdir(), 'ycmh-other-'));
  writeFileSync(join(dir, 'f'), 'x');
  const inCwd = spawn('sleep', ['30'], { cwd: join(dir), stdio: 'ignore' });
  const withFile = spawn(process.execPath, ['-e', `require('fs').openSync(${JSON.stringify(join(dir, 'f'))}, 'r'); setInterval(() => {}, 1000)`], { cwd: elsewhere, stdio: 'ignore' });
  const neither = spawn('sleep', ['30'], { cwd: elsewhere, stdio: 'ignore' });
  t.after(() => {
    for (const c of [inCwd, withFile, neither]) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    rmSync(elsewhere, { recursive: true, force: true });
  });
  const pids = await waitFor('both holders', async () => {
    const found = (await findHolders(dir)).map((p) => p.pid);
    return found.includes(inCwd.pid!) && found.includes(withFile.pid!) ? found : undefined;
  }, { timeoutMs: 10_000, intervalMs: 100 });
  assert.ok(!pids.includes(neither.pid!), 'a process with nothing under the path is not a holder');
  assert.ok(!pids.includes(process.pid), 'the caller itself is left out');
  const holder = (await findHolders(dir)).find((p) => p.pid === inCwd.pid);
  assert.deepEqual(holder?.argv, ['sleep', '30']);
  assert.deepEqual(await findHolders(join(dir, 'nothing-here')), []);
});
