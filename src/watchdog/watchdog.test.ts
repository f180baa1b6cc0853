import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../lib/log.js';
import { waitFor } from '../lib/time.js';
import { writeFenceFile } from './fence-file.js';
import { checkOnce } from './watchdog.js';

test('a leadership past its deadline has its processes killed, once; one within its deadline is left alone', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'yc-wd-'));
  const child = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
  const exited = new Promise<string | null>((r) => child.once('exit', (_c, sig) => r(sig)));
  t.after(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const file = join(dir, 'fence.json');
  const now = Date.now();
  writeFenceFile(file, { agentPid: process.pid, leaderships: { dhcp: { deadlineEpochMs: now + 60_000, pids: [child.pid!], vips: [] } } });
  const fenced = new Map<string, number>();
  assert.deepEqual(await checkOnce(file, fenced, silentLogger, now), [], 'nothing before the deadline');
  writeFenceFile(file, { agentPid: process.pid, leaderships: { storage: { deadlineEpochMs: now - 1, pids: [child.pid!], vips: [] } } });
  assert.deepEqual(await checkOnce(file, fenced, silentLogger, now), ['storage']);
  assert.equal(await exited, 'SIGKILL');
  assert.deepEqual(await checkOnce(file, fenced, silentLogger, now), [], 'the same deadline is fenced once');
  await waitFor('nothing more', () => true);
});

test('a missing or damaged file fences nothing', async () => {
  const fenced = new Map<string, number>();
  assert.deepEqual(await checkOnce('/nonexistent/fence.json', fenced, silentLogger), []);
});
