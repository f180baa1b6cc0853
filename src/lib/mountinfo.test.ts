import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUnder, parseMountinfo } from './mountinfo.js';

test('parseMountinfo reads mount point, type, source and minor; decodes escapes; skips what is not a mount line', () => {
  const text = [
    '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
    '301 22 0:58 / /run/yc/my\\040lab/fuse-postgres rw,nosuid shared:170 master:3 - fuse rbd-fuse rw,user_id=0',
    '302 22 7:3 / /mnt/tab\\011and\\134slash rw - xfs /dev/loop3 rw,nouuid',
    'garbage',
    '',
  ].join('\n');
  assert.deepEqual(parseMountinfo(text), [
    { mountPoint: '/', fsType: 'ext4', source: '/dev/sda1', minor: 1 },
    { mountPoint: '/run/yc/my lab/fuse-postgres', fsType: 'fuse', source: 'rbd-fuse', minor: 58 },
    { mountPoint: '/mnt/tab\tand\\slash', fsType: 'xfs', source: '/dev/loop3', minor: 3 },
  ]);
});

test('isUnder: the directory itself and what lies beneath, not a sibling sharing its prefix', () => {
  assert.ok(isUnder('/a/b', '/a/b'));
  assert.ok(isUnder('/a/b/c', '/a/b/'));
  assert.ok(!isUnder('/a/bc', '/a/b'));
  assert.ok(isUnder('/x', '/'));
});
