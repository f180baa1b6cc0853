// The rbd-fuse mapping record names its loop device before the attach (so a crash in between leaves nothing
// unknown), and an unmap detaches the recorded device only when it really carries the mapping's file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loopAttach, loopAttachRecorded, loopBackingFile, loopDetach } from '../../src/storage/blockdev.js';
import { readMapping, unmapFuse } from '../../src/storage/rbd-fuse.js';

function scratch(t: { after: (fn: () => Promise<void>) => void }): { dir: string; devices: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'yc-looprec-'));
  const devices: string[] = [];
  t.after(async () => {
    for (const d of devices) if (loopBackingFile(d) !== undefined) await loopDetach(d);
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, devices };
}

function imageFile(path: string): string {
  writeFileSync(path, '');
  truncateSync(path, 16 * 1024 * 1024);
  return path;
}

test('loopAttachRecorded hands the device over before it is attached, then attaches that very device', async (t) => {
  const { dir, devices } = scratch(t);
  const file = imageFile(join(dir, 'img'));
  const seen: { device: string; attachedWhenRecorded: boolean }[] = [];
  const dev = await loopAttachRecorded(file, async (device) => {
    seen.push({ device, attachedWhenRecorded: loopBackingFile(device) !== undefined });
    devices.push(device);
    await Promise.resolve();
  });
  assert.equal(seen.length, 1);
  assert.deepEqual(seen[0], { device: dev, attachedWhenRecorded: false });
  assert.equal(loopBackingFile(dev), file);
});

test('unmapFuse detaches the recorded device only when it carries the mapping file', async (t) => {
  const { dir, devices } = scratch(t);
  const runDir = join(dir, 'run');
  mkdirSync(runDir);
  // A device recorded, but the crash came before the attach and someone else got the device since.
  const other = await loopAttach(imageFile(join(dir, 'other')));
  devices.push(other);
  const record = (device: string): void => writeFileSync(join(runDir, 'vol.map.json'), JSON.stringify({ pid: process.pid, fuseDir: join(runDir, 'fuse-vol'), device, token: 7 }));
  record(other);
  await unmapFuse(runDir, 'vol');
  assert.equal(loopBackingFile(other), join(dir, 'other'), 'a device carrying another file is left alone');
  assert.equal(await readMapping(runDir, 'vol'), undefined, 'the record is gone');

  // The mapping's own device (its file sits where rbd-fuse would expose it) is detached.
  mkdirSync(join(runDir, 'fuse-vol'));
  const mine = await loopAttach(imageFile(join(runDir, 'fuse-vol', 'vol')));
  devices.push(mine);
  record(mine);
  await unmapFuse(runDir, 'vol');
  assert.equal(loopBackingFile(mine), undefined, 'the mapping device is detached');
  assert.equal(await readMapping(runDir, 'vol'), undefined);
});
