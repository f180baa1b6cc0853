// On-disk layout of the loop driver's shared volume directory, and the small atomic-file tools it needs.
//   NAME.img    symlink to the current data file NAME@GEN.img (swapped with rename when a lock is broken)
//   NAME.lock   lock record {node, token}, written to a temp file and renamed into place
//   NAME.mutex  directory held (mkdir) for the read-compare-write of the lock record
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readlink, rename, rmdir, stat, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { YcError } from '../lib/errors.js';
import { fsyncDir, writeAtomic } from '../lib/files.js';
import { monoMs, sleep } from '../lib/time.js';
import type { LockHolder } from './driver.js';

export class LoopFiles {
  constructor(readonly dir: string) {}

  link(name: string): string {
    return join(this.dir, `${name}.img`);
  }
  lockFile(name: string): string {
    return join(this.dir, `${name}.lock`);
  }
  dataName(name: string, gen: number): string {
    return `${name}@${gen}.img`;
  }
  /** True for any data file of this volume, current or fenced. */
  isDataFile(name: string, path: string): boolean {
    const p = path.replace(/ \(deleted\)$/, '');
    return p.startsWith(join(this.dir, `${name}@`)) && p.endsWith('.img');
  }

  /** Absolute path of the current data file, or undefined when the volume does not exist. */
  async currentData(name: string): Promise<string | undefined> {
    try {
      return join(this.dir, await readlink(this.link(name)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Points NAME.img at dataName atomically (a new symlink renamed over the old one). */
  async pointTo(name: string, dataName: string): Promise<void> {
    const tmp = join(this.dir, `.${name}.img.${randomBytes(4).toString('hex')}`);
    await symlink(dataName, tmp);
    await rename(tmp, this.link(name));
    await fsyncDir(this.dir);
  }

  async readHolder(name: string): Promise<LockHolder | undefined> {
    let text: string;
    try {
      text = await readFile(this.lockFile(name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (typeof v.node !== 'string' || typeof v.token !== 'number') {
      throw new YcError('CORRUPT_VALUE', `lock record ${this.lockFile(name)} is not {node, token}`);
    }
    return { node: v.node, token: v.token };
  }

  async writeHolder(name: string, holder: LockHolder | undefined): Promise<void> {
    if (holder === undefined) {
      await unlink(this.lockFile(name)).catch(ignoreEnoent);
    } else {
      await writeAtomic(this.lockFile(name), JSON.stringify({ node: holder.node, token: holder.token }) + '\n');
    }
    await fsyncDir(this.dir);
  }

  /**
   * Runs fn while holding NAME.mutex. Lab nodes share one kernel but not one process, so the mutex is a
   * directory; one left behind by a crashed process is taken over after staleMs.
   */
  async withMutex<T>(name: string, fn: () => Promise<T>, opts: { waitMs?: number; staleMs?: number } = {}): Promise<T> {
    const dir = join(this.dir, `${name}.mutex`);
    const deadline = monoMs() + (opts.waitMs ?? 10_000);
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(dir);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const st = await stat(dir).catch(() => undefined);
        if (st && Date.now() - st.mtimeMs > (opts.staleMs ?? 300_000)) {
          await rmdir(dir).catch(ignoreEnoent);
          continue;
        }
        if (monoMs() > deadline) throw new YcError('UNAVAILABLE', `volume ${name} is busy (mutex ${dir} held)`);
        await sleep(Math.min(200, 10 * 2 ** Math.min(attempt, 5)));
      }
    }
    try {
      return await fn();
    } finally {
      await rmdir(dir).catch(ignoreEnoent);
    }
  }
}

export function ignoreEnoent(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}
