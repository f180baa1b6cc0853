import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMountinfo } from '../lib/mountinfo.js';
import { fuseMounts, fusectlMount } from './rbd-fuse.js';

test('fuseMounts reads FUSE mounts and their connection numbers from mountinfo, nothing else', () => {
  const mountinfo = [
    '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
    '301 22 0:58 / /run/yc/lab/nodes/s4/rbd/fuse-postgres rw,nosuid,nodev,relatime shared:170 - fuse rbd-fuse rw,user_id=0,group_id=0',
    '302 22 0:61 / /run/yc/lab/nodes/s4/rbd/fuse-registry rw,nosuid,nodev,relatime shared:171 - fuse.sshfs host:/ rw',
    '303 22 0:62 / /sys/fs/fuse/connections rw,relatime - fusectl fusectl rw',
    'garbage',
  ].join('\n');
  assert.deepEqual(fuseMounts(parseMountinfo(mountinfo)), [
    { mountPoint: '/run/yc/lab/nodes/s4/rbd/fuse-postgres', conn: 58 },
    { mountPoint: '/run/yc/lab/nodes/s4/rbd/fuse-registry', conn: 61 },
  ]);
});

test('fusectlMount finds where fusectl is mounted, and nothing when it is not', () => {
  const base = ['22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw', '301 22 0:58 / /run/yc/fuse-postgres rw - fuse rbd-fuse rw'];
  assert.equal(fusectlMount(parseMountinfo(base.join('\n'))), undefined);
  assert.equal(fusectlMount(parseMountinfo([...base, '303 22 0:62 / /var/lib/yc\\040cluster/fusectl rw,relatime - fusectl fusectl rw'].join('\n'))), '/var/lib/yc cluster/fusectl');
});
