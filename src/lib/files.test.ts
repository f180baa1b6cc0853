import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeAtomic, writeDurable } from './files.js';

test('writeAtomic and writeDurable replace the whole file, private to its owner, and leave no temp file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ycfiles-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'marker');
  await writeAtomic(path, 'first, and longer\n');
  await writeDurable(path, 'second\n');
  assert.equal(readFileSync(path, 'utf8'), 'second\n');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir), ['marker']);
  await assert.rejects(writeDurable(join(dir, 'missing-dir', 'x'), 'x'), /ENOENT/);
});
