// Health checks of a supervised process: fast until it first answers, then at the normal interval; one at a time;
// a service that stops answering is still restarted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../src/lib/exec.js';
import { silentLogger } from '../../src/lib/log.js';
import { Supervised } from '../../src/lib/supervisor.js';
import { monoMs, sleep, waitFor } from '../../src/lib/time.js';

test('checks every startupHealthIntervalMs until the first answer, then every healthIntervalMs, never two at once', async (t) => {
  const calls: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const sup = new Supervised({
    name: 'sleeper',
    command: 'sleep',
    args: ['30'],
    startupHealthIntervalMs: 20,
    healthIntervalMs: 1000,
    health: async () => {
      calls.push(performance.now());
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await sleep(30);
      inFlight--;
      return calls.length >= 5;
    },
  }, silentLogger);
  t.after(() => sup.stop(2000));
  sup.start();
  await waitFor('healthy', () => (sup.status().healthy ? true : undefined), { timeoutMs: 5000, intervalMs: 5 });
  const startup = calls.slice(0, 5);
  const firstAnswerMs = startup[4]! - startup[0]!;
  // Four waits of 20 ms plus four checks of 30 ms: far below one normal interval.
  assert.ok(firstAnswerMs < 700, `five startup checks took ${firstAnswerMs.toFixed(0)} ms`);
  await sleep(600);
  assert.equal(calls.length, 5, 'no check within the normal interval after the first answer');
  assert.equal(maxInFlight, 1, 'checks never overlap');
});

test('a service that stops answering after it was healthy is restarted', async (t) => {
  let answering = true;
  const sup = new Supervised({
    name: 'flaky',
    command: 'sleep',
    args: ['30'],
    startupHealthIntervalMs: 10,
    healthIntervalMs: 30,
    unhealthyRestartAfter: 3,
    health: () => Promise.resolve(answering),
  }, silentLogger);
  t.after(() => sup.stop(2000));
  sup.start();
  await waitFor('healthy', () => (sup.status().healthy ? true : undefined), { timeoutMs: 5000, intervalMs: 5 });
  const pid = sup.status().pid;
  answering = false;
  await waitFor('a restart', () => (sup.status().restarts > 0 ? true : undefined), { timeoutMs: 10_000, intervalMs: 10 });
  answering = true;
  await waitFor('a new healthy process', () => (sup.status().healthy && sup.status().pid !== pid ? true : undefined), { timeoutMs: 10_000, intervalMs: 10 });
});

test('a stop during a long prepare ends the prepare\'s command at once, and no process is started after it', async () => {
  let prepareStarted = false;
  let prepareEnded: string | undefined;
  const sup = new Supervised({
    name: 'initdb-like',
    command: 'sleep',
    args: ['30'],
    prepare: async (signal) => {
      prepareStarted = true;
      await run('sleep', ['30'], { signal, timeoutMs: 60_000 }).catch((err: unknown) => {
        prepareEnded = String(err);
        throw err;
      });
    },
  }, silentLogger);
  sup.start();
  await waitFor('prepare under way', () => (prepareStarted ? true : undefined), { timeoutMs: 5000, intervalMs: 5 });
  await sleep(100);
  assert.ok(sup.preparationMs() >= 100, `preparation counted: ${sup.preparationMs()} ms`);
  const t0 = monoMs();
  await sup.stop(2000);
  assert.ok(monoMs() - t0 < 1500, `stop took ${Math.round(monoMs() - t0)} ms`);
  assert.match(prepareEnded ?? '', /killed by SIGKILL/);
  await sleep(200);
  assert.equal(sup.status().pid, undefined, 'no process was started after the stop');
  assert.equal(sup.status().state, 'stopped');
});
