import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, withTimeout } from './time.js';

test('withTimeout: the value in time, a TIMEOUT naming what was waited for otherwise', async () => {
  assert.equal(await withTimeout(Promise.resolve(7), 100, 'seven'), 7);
  await assert.rejects(withTimeout(sleep(200), 20, 'a slow step'), { code: 'TIMEOUT', message: 'a slow step took longer than 20 ms' });
});

test('withTimeout: a rejection that comes after the timeout is not left unhandled', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (r: unknown): void => void unhandled.push(r);
  process.on('unhandledRejection', onUnhandled);
  try {
    const late = sleep(30).then(() => Promise.reject(new Error('late failure')));
    await assert.rejects(withTimeout(late, 5, 'a step'), /took longer than 5 ms/);
    await sleep(80);
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
