import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openInRoot } from '../boot/tftp-fs.js';
import { prepareTftpRoot } from './tftp-root.js';

test('boot files behind symlinks out of the source (Debian: ipxe.efi → /boot) are served as regular files', async () => {
  const base = mkdtempSync(join(tmpdir(), 'yc-tftproot-'));
  try {
    const src = join(base, 'usr-lib-ipxe');
    const boot = join(base, 'boot');
    mkdirSync(src);
    mkdirSync(boot);
    writeFileSync(join(src, 'undionly.kpxe'), 'bios');
    writeFileSync(join(boot, 'ipxe.efi'), 'uefi');
    writeFileSync(join(boot, 'vmlinuz'), 'secret kernel');
    symlinkSync(join(boot, 'ipxe.efi'), join(src, 'ipxe.efi'));
    mkdirSync(join(src, 'snponly.efi'));
    // Served straight from the source, the linked file is refused: the reason for the copy.
    assert.deepEqual(await openInRoot(src, 'ipxe.efi', 'octet'), { ok: false, error: 'access-denied', reason: 'symlink leaves the root' });

    const root = prepareTftpRoot(src, join(base, 'tftp'));
    assert.deepEqual([root.served, root.missing], [['undionly.kpxe', 'ipxe.efi'], ['snponly.efi']]);
    assert.ok(lstatSync(join(root.dir, 'ipxe.efi')).isFile());
    assert.equal(readFileSync(join(root.dir, 'ipxe.efi'), 'utf8'), 'uefi');
    const opened = await openInRoot(root.dir, 'ipxe.efi', 'octet');
    assert.ok(opened.ok);
    await opened.source.close();
    assert.equal((await openInRoot(root.dir, 'vmlinuz', 'octet')).ok, false, 'nothing else of /boot is reachable');
    // Again (an agent restart): the copies are replaced in place.
    writeFileSync(join(boot, 'ipxe.efi'), 'uefi v2');
    prepareTftpRoot(src, join(base, 'tftp'));
    assert.equal(readFileSync(join(root.dir, 'ipxe.efi'), 'utf8'), 'uefi v2');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
