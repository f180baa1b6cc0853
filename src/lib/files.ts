// Files that must survive a crash of the machine, not only of the process.
import { randomBytes } from 'node:crypto';
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Writes `text` to a temp file, fsyncs it, and renames it over `path`: readers see the old or the new whole. */
export async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** writeAtomic, and the rename made durable too (a crash right after still finds the new file). */
export async function writeDurable(path: string, text: string): Promise<void> {
  await writeAtomic(path, text);
  await fsyncDir(dirname(path));
}
