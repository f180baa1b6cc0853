// run()'s time bound holds even when the killed command cannot be waited for: a process in uninterruptible I/O
// outlives SIGKILL, and one that left a child holding its output never closes. Both look alike to run().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KILL_GRACE_MS, run } from '../../src/lib/exec.js';
import { monoMs, waitFor } from '../../src/lib/time.js';

test('a command whose output stays open after SIGKILL: run rejects within its bound plus the grace, naming what was left', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ycexec-'));
  const pidFile = join(dir, 'child.pid');
  t.after(() => {
    try {
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    } catch {
      /* never started, or gone */
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const t0 = monoMs();
  // The backgrounded sleep keeps the pipes open; the exec'd one is what run() kills.
  await assert.rejects(run('sh', ['-c', `sleep 30 & echo $! > ${pidFile}; exec sleep 30`], { timeoutMs: 300 }), /timed out after 300 ms, and still not gone 2000 ms after SIGKILL .*left behind/);
  const took = monoMs() - t0;
  assert.ok(took >= 300 + KILL_GRACE_MS - 50 && took < 300 + KILL_GRACE_MS + 1500, `rejected after ${Math.round(took)} ms`);
  await waitFor('the pid file', () => (readFileSync(pidFile, 'utf8').trim() ? true : undefined), { timeoutMs: 2000 });
});

test('a command killed on time that does exit is reported as killed, as before', async () => {
  const r = await run('sleep', ['30'], { timeoutMs: 200, allowFailure: true });
  assert.equal(r.signal, 'SIGKILL');
});
