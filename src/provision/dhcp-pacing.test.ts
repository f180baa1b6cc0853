import { test } from 'node:test';
import assert from 'node:assert/strict';
import { releasePaced } from './dhcp-pacing.js';

test('releasePaced: a small commit goes at once; a large one in chunks a millisecond or more apart, in order, each once', async () => {
  const small: number[] = [];
  releasePaced([1, 2, 3], (x) => small.push(x));
  assert.deepEqual(small, [1, 2, 3], 'up to one chunk is released synchronously');

  const items = Array.from({ length: 100 }, (_, i) => i);
  const times: number[] = [];
  const got: number[] = [];
  const done = new Promise<void>((resolve) => {
    releasePaced(items, (x) => {
      got.push(x);
      times.push(performance.now());
      if (got.length === items.length) resolve();
    }, 32, 1);
  });
  assert.equal(got.length, 32, 'the first chunk at once');
  await done;
  assert.deepEqual(got, items);
  // Chunk starts at 0, 32, 64, 96: each later chunk at least ~1 ms after the one before.
  for (const k of [32, 64, 96]) assert.ok(times[k]! - times[k - 1]! >= 0.9, `chunk at ${k} came ${(times[k]! - times[k - 1]!).toFixed(2)} ms after the previous`);
});
