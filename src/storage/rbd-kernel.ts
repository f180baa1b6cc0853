// Kernel RBD mapping (production nodes with the rbd module). Not exercised here: this machine has no rbd module.
import { YcError } from '../lib/errors.js';
import type { CephCli } from './ceph-cli.js';

interface Mapped {
  pool: string;
  name: string;
  device: string;
}

export async function kernelMapped(cli: CephCli, pool: string, name: string): Promise<string | undefined> {
  const list = await cli.rbdJson<Mapped[]>(['showmapped']);
  return list.find((m) => m.pool === pool && m.name === name)?.device;
}

export async function kernelMap(cli: CephCli, pool: string, name: string): Promise<string> {
  // exclusive-lock is off on our images, so the kernel client does not fight over the lock we hold.
  const res = await cli.rbd(['map', `${pool}/${name}`]);
  const device = res.stdout.trim();
  if (!device.startsWith('/dev/')) throw new YcError('INTERNAL', `rbd map ${pool}/${name} printed "${device}"`);
  return device;
}

/** Forced unmap: requests sent after it fail (kernel ≥ 4.9); not exercised here (no rbd module). */
export async function kernelAbort(cli: CephCli, pool: string, name: string): Promise<void> {
  const device = await kernelMapped(cli, pool, name);
  if (device !== undefined) await cli.rbd(['unmap', '-o', 'force', device], { allowFailure: true });
}

export async function kernelUnmap(cli: CephCli, pool: string, name: string): Promise<void> {
  const device = await kernelMapped(cli, pool, name);
  if (device !== undefined) await cli.rbd(['unmap', device]);
}
