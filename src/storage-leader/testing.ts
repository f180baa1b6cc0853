import type { RoleContext } from '../agent/role.js';
import { YcError } from '../lib/errors.js';
import { silentLogger } from '../lib/log.js';
import type { AddVipResult } from '../services/vip.js';
import type { AgentConfig } from '../agent/config.js';
import type { StateClient } from '../state/client.js';
import type { NodeRecord } from '../state/schema.js';
import type { LockHolder, PrepareMode, VolumeDriver, VolumeSpec, VolumeStatus } from '../storage/driver.js';
import type { VolumeRecord } from '../state/schema.js';
import type { FoundProcess, ProcessOps, VipOps, VolumeLedger } from './types.js';

/** Test doubles for the role's unit tests: every call lands in one journal, in order. */
export class FakeDriver implements VolumeDriver {
  readonly kind = 'fake';
  readonly journal: string[];
  readonly locks = new Map<string, LockHolder>();
  readonly mounts = new Map<string, string>();
  /** Volume name → error thrown by that operation. */
  fail: Partial<Record<'lock' | 'map' | 'mount' | 'unmount' | 'unmap', Map<string, Error>>> = {};
  /** Called inside unmount, before it takes effect (to look at what is still running). */
  onUnmount: ((mountPoint: string) => void) | undefined;
  /** When set, mount waits for this promise (to abort a lead mid-flight). */
  mountGate: Promise<void> | undefined;

  constructor(journal: string[]) {
    this.journal = journal;
  }

  private failIf(op: keyof FakeDriver['fail'], name: string): void {
    const err = this.fail[op]?.get(name);
    if (err) throw err;
  }

  /** Volumes that exist already (ensure creates the others); formatted ones are in `formatted`. */
  readonly existing = new Set<string>(['a', 'b']);
  readonly formatted = new Set<string>(['a', 'b']);

  ensure(spec: VolumeSpec): Promise<{ created: boolean }> {
    this.journal.push(`ensure ${spec.name}`);
    const created = !this.existing.has(spec.name);
    this.existing.add(spec.name);
    return Promise.resolve({ created });
  }
  exists(name: string): Promise<boolean> {
    return Promise.resolve(this.existing.has(name));
  }
  /** Volumes prepared (warm) and not yet used by a map nor dropped. */
  readonly warm = new Set<string>();
  /** The mode each warm volume was last got ready in. */
  readonly warmMode = new Map<string, PrepareMode>();
  prepare(name: string, mode: PrepareMode): Promise<boolean> {
    if (this.warm.has(name) && (this.warmMode.get(name) === mode || mode === 'standby')) return Promise.resolve(false);
    this.journal.push(`prepare ${name} ${mode}`);
    this.warm.add(name);
    this.warmMode.set(name, mode);
    return Promise.resolve(true);
  }
  unprepare(name: string): Promise<boolean> {
    const had = this.warm.delete(name);
    if (had) this.journal.push(`unprepare ${name}`);
    return Promise.resolve(had);
  }
  status(name: string): Promise<VolumeStatus> {
    return Promise.resolve({ name, exists: this.existing.has(name), holder: this.locks.get(name), mapped: false, mountPoint: undefined, formatted: this.formatted.has(name) });
  }
  lock(name: string, holder: LockHolder, opts: { breakStale: boolean }): Promise<void> {
    this.journal.push(`lock ${name} ${holder.node}/${holder.token}${opts.breakStale ? ' breakStale' : ''}`);
    this.failIf('lock', name);
    if (!this.existing.has(name)) return Promise.reject(new YcError('NOT_FOUND', `volume ${name} does not exist`));
    const cur = this.locks.get(name);
    if (cur && cur.token >= holder.token && cur.node !== holder.node) return Promise.reject(new YcError('CONFLICT', `volume ${name} is locked by ${cur.node} with token ${cur.token}`));
    this.locks.set(name, holder);
    return Promise.resolve();
  }
  unlock(name: string, holder: LockHolder): Promise<void> {
    this.journal.push(`unlock ${name} ${holder.node}/${holder.token}`);
    this.locks.delete(name);
    return Promise.resolve();
  }
  map(name: string): Promise<string> {
    this.journal.push(this.warm.delete(name) ? `map ${name} (warm)` : `map ${name}`);
    this.failIf('map', name);
    return Promise.resolve(`/dev/fake-${name}`);
  }
  /** Called by abort (a test releases a service stuck in I/O from here). */
  onAbort: ((name: string) => void) | undefined;
  abort(name: string): Promise<void> {
    this.journal.push(`abort ${name}`);
    this.onAbort?.(name);
    return Promise.resolve();
  }
  unmap(name: string): Promise<void> {
    this.journal.push(`unmap ${name}`);
    this.failIf('unmap', name);
    return Promise.resolve();
  }
  formatIfBlank(device: string): Promise<boolean> {
    this.journal.push(`format ${device}`);
    const name = device.replace('/dev/fake-', '');
    const blank = !this.formatted.has(name);
    this.formatted.add(name);
    return Promise.resolve(blank);
  }
  async mount(device: string, mountPoint: string): Promise<void> {
    this.journal.push(`mount ${device}`);
    if (this.mountGate) await this.mountGate;
    const name = device.replace('/dev/fake-', '');
    this.failIf('mount', name);
    if (!this.formatted.has(name)) throw new YcError('INTERNAL', `mount ${device}: wrong fs type, bad option, bad superblock`);
    this.mounts.set(mountPoint, device);
  }
  unmount(mountPoint: string): Promise<void> {
    const name = this.mounts.get(mountPoint)?.replace('/dev/fake-', '') ?? '?';
    this.journal.push(`unmount ${name}`);
    this.onUnmount?.(mountPoint);
    this.failIf('unmount', name);
    this.mounts.delete(mountPoint);
    return Promise.resolve();
  }
}

export class FakeVip implements VipOps {
  on = false;
  constructor(private readonly journal: string[]) {}
  add(): Promise<AddVipResult> {
    this.journal.push('vip add');
    const changed = !this.on;
    this.on = true;
    return Promise.resolve({ changed, arp: 'iputils-arping' });
  }
  remove(): Promise<boolean> {
    this.journal.push('vip remove');
    const changed = this.on;
    this.on = false;
    return Promise.resolve(changed);
  }
  has(): Promise<boolean> {
    return Promise.resolve(this.on);
  }
}

export class FakeProcesses implements ProcessOps {
  running: FoundProcess[] = [];
  stopped: { pid: number; signal: NodeJS.Signals }[] = [];
  constructor(private readonly driver: FakeDriver) {}
  find(wanted: { service: string; argv: string[] }[]): Promise<FoundProcess[]> {
    return Promise.resolve(this.running.filter((p) => wanted.some((w) => w.service === p.service && w.argv.join(' ') === p.argv.join(' '))));
  }
  stop(pid: number, signal: NodeJS.Signals): Promise<void> {
    this.stopped.push({ pid, signal });
    this.running = this.running.filter((p) => p.pid !== pid);
    for (const [path, procs] of this.holding) this.holding.set(path, procs.filter((p) => p.pid !== pid));
    return Promise.resolve();
  }
  isMounted(path: string): Promise<boolean> {
    return Promise.resolve(this.driver.mounts.has(path));
  }
  /** Processes holding a path (by mount point); stop() removes them here too. */
  holding = new Map<string, FoundProcess[]>();
  holders(path: string): Promise<FoundProcess[]> {
    return Promise.resolve(this.holding.get(path) ?? []);
  }
  synced: string[] = [];
  syncFs(path: string): Promise<void> {
    this.synced.push(path);
    return Promise.resolve();
  }
}

export function fakeRoleContext(hostname = 'n1'): RoleContext {
  return {
    state: {} as StateClient,
    node: { hostname } as NodeRecord,
    config: {} as AgentConfig,
    logger: silentLogger,
  };
}

/** The volume ledger in memory. */
export class MemoryLedger implements VolumeLedger {
  readonly records = new Map<string, VolumeRecord>();
  get(name: string): Promise<VolumeRecord | undefined> {
    return Promise.resolve(this.records.get(name));
  }
  put(record: VolumeRecord): Promise<void> {
    this.records.set(record.name, { ...record });
    return Promise.resolve();
  }
}
