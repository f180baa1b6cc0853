// What TFTP serves: the iPXE binaries the DHCP server names, copied into a directory of their own. Debian's
// /usr/lib/ipxe/ipxe.efi is a symlink to /boot/ipxe.efi, which the TFTP server rightly refuses to follow out of
// its root (UEFI clients got a TFTP error); serving /boot instead would expose kernels and initrds. The copy
// follows the package's own links once, as root, and the served directory holds regular files only.
import { copyFileSync, mkdirSync, realpathSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The boot files DHCP hands out (src/dhcp/pxe.ts), plus snponly.efi for UEFI machines whose NIC iPXE cannot drive. */
export const BOOT_FILES = ['undionly.kpxe', 'ipxe.efi', 'snponly.efi'] as const;

export interface TftpRoot {
  dir: string;
  served: string[];
  missing: string[];
}

export function prepareTftpRoot(sourceDir: string, dir: string, files: readonly string[] = BOOT_FILES): TftpRoot {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const served: string[] = [];
  const missing: string[] = [];
  for (const f of files) {
    let src: string;
    try {
      src = realpathSync(join(sourceDir, f));
      if (!statSync(src).isFile()) throw new Error('not a file');
    } catch {
      missing.push(f);
      continue;
    }
    const tmp = join(dir, `.${f}.tmp`);
    copyFileSync(src, tmp);
    renameSync(tmp, join(dir, f));
    served.push(f);
  }
  return { dir, served, missing };
}
