import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { holdsAddress, readPid, stopStaleKeepalived, writeValidatedIfChanged } from './host.js';

const okValidate = (): Promise<{ ok: boolean; detail: string }> => Promise.resolve({ ok: true, detail: 'valid' });

test('writes when changed, not when the same; a rejected config never replaces the good one and leaves no temp file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'yc-gv-'));
  try {
    const f = join(dir, 'k.conf');
    assert.deepEqual(await writeValidatedIfChanged(f, 'a\n', okValidate), { changed: true });
    assert.deepEqual(await writeValidatedIfChanged(f, 'a\n', okValidate), { changed: false });
    const seen: string[] = [];
    const reject = (file: string): Promise<{ ok: boolean; detail: string }> => {
      seen.push(readFileSync(file, 'utf8'));
      return Promise.resolve({ ok: false, detail: 'bad line 3' });
    };
    assert.deepEqual(await writeValidatedIfChanged(f, 'b\n', reject), { changed: false, invalid: 'bad line 3' });
    assert.deepEqual(seen, ['b\n'], 'the validator sees the new text, in a temp file');
    assert.equal(readFileSync(f, 'utf8'), 'a\n');
    assert.deepEqual(await writeValidatedIfChanged(f, 'c\n', okValidate), { changed: true });
    assert.equal(readFileSync(f, 'utf8'), 'c\n');
    assert.deepEqual(readdirSync(dir), ['k.conf']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pid files: garbage or missing is no pid; a stale keepalived is stopped only when its command line names our config', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'yc-gv-'));
  try {
    const pf = join(dir, 'k.pid');
    assert.equal(readPid(pf), undefined);
    writeFileSync(pf, 'nonsense');
    assert.equal(readPid(pf), undefined);
    writeFileSync(pf, `${process.pid}\n`);
    assert.equal(readPid(pf), process.pid);
    // Our own process is alive but its command line does not name the config: left alone.
    assert.equal(await stopStaleKeepalived(pf, join(dir, 'not-in-my-cmdline.conf')), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('holdsAddress reads the interface table without a subprocess', () => {
  assert.equal(holdsAddress('lo', '127.0.0.1'), true);
  assert.equal(holdsAddress('lo', '127.0.0.2'), false);
  assert.equal(holdsAddress('no-such-if', '127.0.0.1'), false);
});
