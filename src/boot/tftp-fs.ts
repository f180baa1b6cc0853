/** Opens a requested file strictly inside the TFTP root: no "..", no absolute escape, no symlink escape. */
import { open, realpath, type FileHandle } from 'node:fs/promises';
import { join, sep } from 'node:path';

export type OpenResult =
  | { ok: true; source: FileSource }
  | { ok: false; error: 'not-found' | 'access-denied'; reason: string };

/** What a transfer reads from: a file, or a netascii-converted copy in memory. */
export interface FileSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** Files converted to netascii are held in memory; boot files are sent in octet mode anyway. */
const NETASCII_MAX = 16 * 1024 * 1024;

/**
 * Leading slashes and backslashes are taken relative to the root (PXE firmware often asks for
 * "/pxelinux.0" or "\\boot\\x"), so an absolute name can never leave it.
 */
export function splitRequestPath(filename: string): string[] | undefined {
  const segments = filename.replace(/\\/g, '/').split('/').filter((s) => s !== '' && s !== '.');
  if (segments.length === 0) return undefined;
  if (segments.some((s) => s === '..' || s.includes('\0'))) return undefined;
  return segments;
}

export async function openInRoot(root: string, filename: string, mode: string): Promise<OpenResult> {
  const segments = splitRequestPath(filename);
  if (!segments) return { ok: false, error: 'access-denied', reason: 'path leaves the root' };
  let realRoot: string;
  let target: string;
  try {
    realRoot = await realpath(root);
    target = await realpath(join(realRoot, ...segments));
  } catch {
    return { ok: false, error: 'not-found', reason: 'no such file' };
  }
  if (!target.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep)) {
    return { ok: false, error: 'access-denied', reason: 'symlink leaves the root' };
  }
  let fh: FileHandle;
  try {
    fh = await open(target, 'r');
  } catch {
    return { ok: false, error: 'not-found', reason: 'cannot open file' };
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      await fh.close();
      return { ok: false, error: 'not-found', reason: 'not a regular file' };
    }
    if (mode === 'netascii') {
      if (st.size > NETASCII_MAX) {
        await fh.close();
        return { ok: false, error: 'access-denied', reason: 'file too large for netascii mode' };
      }
      const data = toNetascii(await fh.readFile());
      await fh.close();
      return { ok: true, source: memorySource(data) };
    }
    return { ok: true, source: fileSource(fh, st.size) };
  } catch {
    await fh.close().catch(() => undefined);
    return { ok: false, error: 'not-found', reason: 'cannot read file' };
  }
}

/** RFC 764 line endings: LF becomes CR LF, a bare CR becomes CR NUL. */
export function toNetascii(data: Buffer): Buffer {
  const out: number[] = [];
  for (const b of data) {
    if (b === 0x0a) out.push(0x0d, 0x0a);
    else if (b === 0x0d) out.push(0x0d, 0x00);
    else out.push(b);
  }
  return Buffer.from(out);
}

function memorySource(data: Buffer): FileSource {
  return {
    size: data.length,
    read: (offset, length) => Promise.resolve(data.subarray(offset, offset + length)),
    close: () => Promise.resolve(),
  };
}

function fileSource(fh: FileHandle, size: number): FileSource {
  return {
    size,
    async read(offset, length) {
      const buf = Buffer.alloc(length);
      let got = 0;
      // A bounded loop: each read returns at least one byte until the end of the file.
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    },
    close: () => fh.close(),
  };
}
