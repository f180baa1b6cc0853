// The mount table of a mount namespace, read from /proc/PID/mountinfo: a stat or a `findmnt` would ask the file
// systems themselves, and a FUSE mount whose daemon hangs would hang the asker too.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

export interface MountEntry {
  /** Where it is mounted, with the kernel's octal escapes (space, tab, newline, backslash) decoded. */
  mountPoint: string;
  /** e.g. "xfs", "fuse", "fuse.sshfs", "fusectl". */
  fsType: string;
  /** The mount source (a device path, or a name such as "rbd-fuse"), decoded likewise. */
  source: string;
  /** The device's minor number: a FUSE mount's connection number. */
  minor: number;
}

const decode = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));

/**
 * Parses mountinfo (proc(5)): "ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS".
 * Lines that do not have that shape are skipped.
 */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    const mountPoint = f[4];
    const fsType = f[sep + 1];
    if (sep < 0 || mountPoint === undefined || fsType === undefined) continue;
    const minor = Number(f[2]?.split(':')[1]);
    out.push({ mountPoint: decode(mountPoint), fsType, source: decode(f[sep + 2] ?? ''), minor: Number.isInteger(minor) ? minor : -1 });
  }
  return out;
}

/** This process's mount namespace (or another process's), synchronously: for callers outside the hot path. */
export function mountTable(pid: number | 'self' = 'self'): MountEntry[] {
  return parseMountinfo(readFileSync(`/proc/${pid}/mountinfo`, 'utf8'));
}

export async function readMountTable(pid: number | 'self' = 'self'): Promise<MountEntry[]> {
  return parseMountinfo(await readFile(`/proc/${pid}/mountinfo`, 'utf8'));
}

/** Whether `path` is `dir` or lies beneath it (by path, not by following links). */
export function isUnder(path: string, dir: string): boolean {
  const d = dir.replace(/\/+$/, '');
  return path === d || path.startsWith(`${d}/`) || (d === '' && path.startsWith('/'));
}
