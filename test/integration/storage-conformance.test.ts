// One conformance suite for every volume driver (loop always; rbd against a single-host Ceph when installed).
import { describe, test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isYcError } from '../../src/lib/errors.js';
import { waitFor } from '../../src/lib/time.js';
import type { LockHolder, VolumeDriver, VolumeSpec } from '../../src/storage/driver.js';
import { LoopDriver } from '../../src/storage/loop.js';
import { RbdDriver } from '../../src/storage/rbd.js';
import { isMountPoint, loopDetach, loopList } from '../../src/storage/blockdev.js';
import { startCeph, type TestCeph } from '../helpers/ceph.js';

interface Fixture {
  /** A driver as seen from one node; every node shares the same backend. */
  driver(node: string): VolumeDriver;
  spec(name: string): VolumeSpec;
  /** The backend's clients of a volume, where it has such (RBD: the image's watchers, which a fence blocklists). */
  clients?(name: string): string[];
  /** Kills what serves a node's mapping of a volume, as a crash of that node would (RBD: its rbd-fuse). */
  crashMapping?(node: string, name: string): void;
  /** What serves a node's mapping or warm volume now (RBD: the rbd-fuse PID), to tell a restart. */
  servedBy?(node: string, name: string): number | undefined;
  /**
   * Changes the backend's peers while `during` runs, then restores them (RBD: the OSD is marked down and kept
   * down until `during` has returned, then let up again).
   */
  peerChange?(during: () => Promise<void>): Promise<void>;
}

const hasCeph = ['ceph-mon', 'ceph-osd', 'ceph-mgr', 'rbd', 'rbd-fuse'].every((b) => ['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, b))));

async function writeSynced(path: string, text: string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Whether a synced write fails (a fenced holder's may instead go to data nobody reads any more). */
async function writeFails(path: string, text: string): Promise<boolean> {
  try {
    await writeSynced(path, text);
    return false;
  } catch {
    return true;
  }
}

async function rejectsWith(p: Promise<unknown>, code: 'CONFLICT' | 'NOT_FOUND' | 'BAD_INPUT'): Promise<void> {
  await assert.rejects(p, (err: unknown) => isYcError(err, code) || assert.fail(`expected ${code}, got ${String(err)}`));
}

/** Tracks what a test maps and mounts, and undoes it in t.after even when the test fails. */
function tracker(t: TestContext, base: string) {
  const mounts: { d: VolumeDriver; mp: string }[] = [];
  const maps: { d: VolumeDriver; name: string }[] = [];
  t.after(async () => {
    for (const { d, mp } of mounts.reverse()) {
      await d.unmount(mp, { timeoutMs: 10_000 }).catch(() => {
        if (isMountPoint(mp)) execFileSync('umount', ['-l', mp]);
      });
    }
    for (const { d, name } of maps.reverse()) await d.unmap(name).catch(() => undefined);
  });
  let n = 0;
  return {
    async mapMount(d: VolumeDriver, name: string, holder: LockHolder, fsType: VolumeSpec['fsType']): Promise<{ device: string; mp: string; formatted: boolean }> {
      maps.push({ d, name });
      const device = await d.map(name, holder);
      const formatted = await d.formatIfBlank(device, fsType);
      const mp = join(base, `mnt-${name}-${n++}`);
      mounts.push({ d, mp });
      await d.mount(device, mp);
      return { device, mp, formatted };
    },
  };
}

function conformance(kind: string, setup: () => Promise<{ fixture: Fixture; base: string }>, opts: { skip?: string } = {}): void {
  describe(`${kind} driver conformance`, { skip: opts.skip }, () => {
    let fx: Fixture;
    let base: string;
    let seq = 0;
    const vol = (): string => `v${process.pid % 1000}-${seq++}`;
    before(async () => {
      ({ fixture: fx, base } = await setup());
    });

    /** Node a holds a fresh volume (token 1), mapped and mounted; node b (token 2) is the one to take over. */
    async function heldByA(t: TestContext) {
      const tr = tracker(t, base);
      const [a, b] = [fx.driver('a'), fx.driver('b')];
      const ha = { node: 'a', token: 1 };
      const hb = { node: 'b', token: 2 };
      const name = vol();
      const spec = fx.spec(name);
      await a.ensure(spec);
      await a.lock(name, ha, { breakStale: false });
      const ma = await tr.mapMount(a, name, ha, spec.fsType);
      return { tr, a, b, ha, hb, name, spec, ma };
    }

    test('ensure is idempotent and never reformats', async (t) => {
      const tr = tracker(t, base);
      const a = fx.driver('a');
      const h = { node: 'a', token: 1 };
      const name = vol();
      const spec = fx.spec(name);
      assert.deepEqual(await a.ensure(spec), { created: true });
      assert.deepEqual(await a.ensure(spec), { created: false });
      await a.lock(name, h, { breakStale: false });
      const first = await tr.mapMount(a, name, h, spec.fsType);
      assert.equal(first.formatted, true);
      await writeSynced(join(first.mp, 'keep.txt'), 'kept');
      await a.unmount(first.mp, { timeoutMs: 10_000 });
      await a.unmap(name);
      assert.deepEqual(await a.ensure(spec), { created: false });
      const second = await tr.mapMount(a, name, h, spec.fsType);
      assert.equal(second.formatted, false, 'formatIfBlank must not format a formatted device');
      assert.equal(readFileSync(join(second.mp, 'keep.txt'), 'utf8'), 'kept');
      assert.equal((await a.status(name)).formatted, true);
    });

    test('map, format, mount, unmount, unmap round trip', async (t) => {
      const tr = tracker(t, base);
      const a = fx.driver('a');
      const h = { node: 'a', token: 3 };
      const name = vol();
      await a.ensure(fx.spec(name));
      assert.equal(await a.exists(name), true);
      await a.lock(name, h, { breakStale: false });
      await a.lock(name, h, { breakStale: false }); // the holder re-locking is a no-op
      const { device, mp } = await tr.mapMount(a, name, h, fx.spec(name).fsType);
      assert.ok(statSync(device).isBlockDevice(), `${device} is a block device`);
      assert.equal(await a.map(name, h), device, 'map is idempotent');
      let st = await a.status(name);
      assert.deepEqual({ mapped: st.mapped, mountPoint: st.mountPoint, holder: st.holder }, { mapped: true, mountPoint: mp, holder: h });
      await writeSynced(join(mp, 'x'), 'x');
      await a.unmount(mp, { timeoutMs: 10_000 });
      assert.equal(isMountPoint(mp), false);
      await a.unmount(mp, { timeoutMs: 10_000 }); // idempotent
      await a.unmap(name);
      st = await a.status(name);
      assert.equal(st.mapped, false);
      assert.equal(st.mountPoint, undefined);
      await a.unlock(name, h);
      assert.equal((await a.status(name)).holder, undefined);
    });

    test('abort of a mounted volume (its storage cut off): unmount and unmap still finish; what was synced before is kept', async (t) => {
      const tr = tracker(t, base);
      const a = fx.driver('a');
      const h = { node: 'a', token: 4 };
      const name = vol();
      const spec = fx.spec(name);
      await a.ensure(spec);
      await a.lock(name, h, { breakStale: false });
      const first = await tr.mapMount(a, name, h, spec.fsType);
      await writeSynced(join(first.mp, 'before.txt'), 'synced');
      await a.abort(name);
      // A loop volume is a local file: nothing to abort. An RBD mapping's I/O fails from now on.
      if (kind === 'rbd') await assert.rejects(writeSynced(join(first.mp, 'after.txt'), 'lost'), /EIO|ENOTCONN|input\/output/i);
      await a.abort(name); // idempotent
      await a.unmount(first.mp, { timeoutMs: 10_000 });
      assert.equal(isMountPoint(first.mp), false);
      await a.unmap(name);
      assert.equal((await a.status(name)).mapped, false);
      const second = await tr.mapMount(a, name, h, spec.fsType);
      assert.equal(second.formatted, false);
      assert.equal(readFileSync(join(second.mp, 'before.txt'), 'utf8'), 'synced');
    });

    test('a lock held by another holder is a CONFLICT without breakStale', async () => {
      const [a, b] = [fx.driver('a'), fx.driver('b')];
      const name = vol();
      await a.ensure(fx.spec(name));
      await a.lock(name, { node: 'a', token: 1 }, { breakStale: false });
      await rejectsWith(b.lock(name, { node: 'b', token: 2 }, { breakStale: false }), 'CONFLICT');
      await rejectsWith(b.map(name, { node: 'b', token: 2 }), 'CONFLICT');
      assert.deepEqual((await b.status(name)).holder, { node: 'a', token: 1 });
    });

    test('a smaller or equal token never breaks the lock', async () => {
      const [a, b] = [fx.driver('a'), fx.driver('b')];
      const name = vol();
      await a.ensure(fx.spec(name));
      await a.lock(name, { node: 'a', token: 5 }, { breakStale: false });
      await rejectsWith(b.lock(name, { node: 'b', token: 3 }, { breakStale: true }), 'CONFLICT');
      await rejectsWith(b.lock(name, { node: 'b', token: 5 }, { breakStale: true }), 'CONFLICT');
      assert.deepEqual((await a.status(name)).holder, { node: 'a', token: 5 });
    });

    test('unlock by a non-holder is refused', async () => {
      const [a, b] = [fx.driver('a'), fx.driver('b')];
      const name = vol();
      await a.ensure(fx.spec(name));
      await a.lock(name, { node: 'a', token: 1 }, { breakStale: false });
      await rejectsWith(b.unlock(name, { node: 'b', token: 9 }), 'CONFLICT');
      await rejectsWith(a.unlock(name, { node: 'a', token: 2 }), 'CONFLICT');
      assert.deepEqual((await a.status(name)).holder, { node: 'a', token: 1 });
      await a.unlock(name, { node: 'a', token: 1 });
      await b.lock(name, { node: 'b', token: 2 }, { breakStale: false });
      assert.deepEqual((await a.status(name)).holder, { node: 'b', token: 2 });
    });

    test('breaking a stale lock fences the old holder', async (t) => {
      const { tr, a, b, ha, hb, name, spec, ma } = await heldByA(t);
      await writeSynced(join(ma.mp, 'before.txt'), 'from a');

      // A now stands still (a paused or partitioned leader) while B takes over with a larger token.
      await b.lock(name, hb, { breakStale: true });
      assert.deepEqual((await b.status(name)).holder, hb);
      await rejectsWith(a.map(name, ha), 'CONFLICT');

      // A wakes up and writes: the write must fail, or must not reach the data B uses.
      const aWriteFailed = await writeFails(join(ma.mp, 'after.txt'), 'stale write from a');
      const mb = await tr.mapMount(b, name, hb, spec.fsType);
      assert.equal(mb.formatted, false, 'the new holder sees the old holder\'s file system');
      assert.equal(readFileSync(join(mb.mp, 'before.txt'), 'utf8'), 'from a');
      assert.equal(existsSync(join(mb.mp, 'after.txt')), false, 'the fenced holder\'s write reached the new holder');
      t.diagnostic(`old holder's write ${aWriteFailed ? 'failed' : 'went to fenced data'}`);
      await rejectsWith(a.unlock(name, ha), 'CONFLICT');
    });

    for (const mode of ['standby', 'handover'] as const) {
      test(`a volume got ready (prepare, ${mode}) while its holder still writes maps with everything the holder wrote`, async (t) => {
        const { tr, a, b, ha, hb, spec, name, ma } = await heldByA(t);
        await writeSynced(join(ma.mp, 'early.txt'), 'first version');
        // The handover: B gets ready while A still serves, then A writes more and lets go.
        t.diagnostic(`prepare ${b.prepare ? 'supported' : 'not offered by this driver'}`);
        await b.prepare?.(name, mode);
        await writeSynced(join(ma.mp, 'early.txt'), 'second version, written after B got ready');
        await writeSynced(join(ma.mp, 'late.txt'), 'late');
        await a.unmount(ma.mp, { timeoutMs: 10_000 });
        await a.unmap(name);
        await a.unlock(name, ha);
        await b.lock(name, hb, { breakStale: false });
        const mb = await tr.mapMount(b, name, hb, spec.fsType);
        assert.equal(mb.formatted, false);
        assert.equal(readFileSync(join(mb.mp, 'early.txt'), 'utf8'), 'second version, written after B got ready');
        assert.equal(readFileSync(join(mb.mp, 'late.txt'), 'utf8'), 'late');
        await writeSynced(join(mb.mp, 'b.txt'), 'b writes');
        assert.equal(await b.unprepare?.(name) ?? false, false, 'nothing left to drop once the map used it');
      });
    }

    test('a lock break drops what a handover\'s prepare opened before it fences, so the new holder can still write', async (t) => {
      const { tr, b, hb, name, spec, ma } = await heldByA(t);
      await writeSynced(join(ma.mp, 'before.txt'), 'from a');
      await b.prepare?.(name, 'handover');
      // A stands still; B breaks its lock, which blocklists every client that has the image open.
      await b.lock(name, hb, { breakStale: true });
      const mb = await tr.mapMount(b, name, hb, spec.fsType);
      assert.equal(readFileSync(join(mb.mp, 'before.txt'), 'utf8'), 'from a');
      await writeSynced(join(mb.mp, 'after-break.txt'), 'b writes after the break');
      assert.equal(readFileSync(join(mb.mp, 'after-break.txt'), 'utf8'), 'b writes after the break');
    });

    test('a volume kept on standby is no client of it: a lock break keeps it, the map starts from it, and the old holder is still fenced', async (t) => {
      const { tr, b, hb, name, spec, ma } = await heldByA(t);
      await writeSynced(join(ma.mp, 'before.txt'), 'from a');
      if (!b.prepare) return;
      const holderClients = fx.clients?.(name);
      assert.equal(await b.prepare(name, 'standby'), true);
      if (holderClients) assert.deepEqual(fx.clients?.(name), holderClients, 'the standby opened the volume');
      // A crashes (stands still); B breaks its lock with fencing.
      await b.lock(name, hb, { breakStale: true });
      assert.equal(await b.prepare(name, 'standby'), false, 'the lock break dropped what stood by (nothing to start again)');
      const mb = await tr.mapMount(b, name, hb, spec.fsType);
      assert.equal(await b.unprepare?.(name) ?? false, false, 'the map used what stood by');
      assert.equal(readFileSync(join(mb.mp, 'before.txt'), 'utf8'), 'from a');
      await writeSynced(join(mb.mp, 'after-break.txt'), 'b writes after the break');
      const aWriteFailed = await writeFails(join(ma.mp, 'stale.txt'), 'stale write from a');
      assert.equal(existsSync(join(mb.mp, 'stale.txt')), false, 'the fenced holder\'s write reached the new holder');
      t.diagnostic(`old holder's write ${aWriteFailed ? 'failed' : 'went to fenced data'}`);
    });

    test('a standby prepare clears a mapping that died with its node, and gets the volume ready again', async (t) => {
      const a = fx.driver('a');
      const h = { node: 'a', token: 1 };
      const name = vol();
      await a.ensure(fx.spec(name));
      if (!a.prepare || !fx.crashMapping) return;
      await a.lock(name, h, { breakStale: false });
      t.after(() => a.unmap(name));
      // Not mounted: a crashed node's mounts went with its mount namespace; here they would keep the loop device.
      const device = await a.map(name, h);
      assert.equal(await a.prepare(name, 'standby'), false, 'a live mapping is left alone');
      assert.equal((await a.status(name)).mapped, true);
      fx.crashMapping('a', name);
      assert.equal(await a.prepare(name, 'standby'), true);
      assert.equal((await a.status(name)).mapped, false);
      assert.ok(!(await loopList()).some((l) => l.name === device && l.backFile.includes(name)), `${device} still carries the dead mapping`);
      assert.equal(await a.unprepare?.(name), true);
    });

    test('a volume on standby is started afresh when the backend\'s peers change, and still maps', async (t) => {
      const tr = tracker(t, base);
      const b = fx.driver('b');
      const hb = { node: 'b', token: 1 };
      const name = vol();
      const spec = fx.spec(name);
      await b.ensure(spec);
      const checkPeers = b.checkPeers?.bind(b);
      if (!b.prepare || !checkPeers || !fx.peerChange || !fx.servedBy) return;
      assert.equal(await b.prepare(name, 'standby'), true);
      await checkPeers(); // the first look: what the peers are
      const before = fx.servedBy('b', name);
      await fx.peerChange(async () => {
        await checkPeers();
      });
      // Queued behind the restart: ready again, nothing to start.
      assert.equal(await b.prepare(name, 'standby'), false);
      const after = fx.servedBy('b', name);
      assert.ok(after !== undefined && after !== before, `served by ${String(before)} before the change and ${String(after)} after it`);
      await b.lock(name, hb, { breakStale: false });
      const mb = await tr.mapMount(b, name, hb, spec.fsType);
      await writeSynced(join(mb.mp, 'x.txt'), 'after the change');
      assert.equal(fx.servedBy('b', name), after, 'the map used what stood by');
    });

    test('unprepare drops a volume got ready that no map used; it is idempotent', async () => {
      const b = fx.driver('b');
      const name = vol();
      await b.ensure(fx.spec(name));
      if (!b.prepare || !b.unprepare) return;
      assert.equal(await b.prepare(name, 'standby'), true);
      assert.equal(await b.prepare(name, 'standby'), false, 'already ready');
      assert.equal(await b.prepare(name, 'handover'), true, 'opened for a handover');
      assert.equal(await b.prepare(name, 'handover'), false, 'already opened');
      assert.equal(await b.unprepare(name), true);
      assert.equal(await b.unprepare(name), false);
      assert.equal((await b.status(name)).mapped, false);
    });

    test('a missing volume is NOT_FOUND; a bad name is BAD_INPUT', async () => {
      const a = fx.driver('a');
      const h = { node: 'a', token: 1 };
      assert.equal(await a.exists('missing-vol'), false);
      assert.equal((await a.status('missing-vol')).exists, false);
      await rejectsWith(a.lock('missing-vol', h, { breakStale: true }), 'NOT_FOUND');
      await rejectsWith(a.map('missing-vol', h), 'NOT_FOUND');
      await rejectsWith(a.unlock('missing-vol', h), 'NOT_FOUND');
      await rejectsWith(a.ensure({ name: 'Bad/Name', sizeMiB: 64, fsType: 'ext4' }), 'BAD_INPUT');
      await rejectsWith(a.lock('../x', h, { breakStale: false }), 'BAD_INPUT');
    });
  });
}

// loop: a temp dir stands in for the lab's shared volume directory; nodes are separate driver instances.
{
  let base = '';
  conformance('loop', () => {
    base = mkdtempSync(join(tmpdir(), 'yc-loop-'));
    const dir = join(base, 'volumes');
    execFileSync('mkdir', ['-p', dir]);
    return Promise.resolve({ base, fixture: { driver: () => new LoopDriver({ dir }), spec: (name) => ({ name, sizeMiB: 64, fsType: 'ext4' }) } });
  });
  after(async () => {
    if (base === '') return;
    for (const l of await loopList()) if (l.backFile.startsWith(base)) await loopDetach(l.name);
    for (const e of await readdir(base).catch(() => [])) if (e.startsWith('mnt-') && isMountPoint(join(base, e))) execFileSync('umount', ['-l', join(base, e)]);
    rmSync(base, { recursive: true, force: true });
  });
}

// rbd: a single-host Ceph on 127.0.0.1; each node has its own run directory (rbd-fuse mounts, map records).
{
  let ceph: TestCeph | undefined;
  let base = '';
  conformance('rbd', async () => {
    base = mkdtempSync(join(tmpdir(), 'yc-rbd-'));
    ceph = await startCeph();
    const c = ceph;
    return {
      base,
      fixture: {
        driver: (node) => new RbdDriver({ conf: c.conf, pool: c.pool, id: 'admin', runDir: join(base, `run-${node}`) }),
        spec: (name) => ({ name, sizeMiB: 64, fsType: 'ext4' }),
        servedBy: (node, name) => {
          try {
            return (JSON.parse(readFileSync(join(base, `run-${node}`, `${name}.map.json`), 'utf8')) as { pid: number }).pid;
          } catch {
            return undefined;
          }
        },
        peerChange: async (during) => {
          const ceph = (...args: string[]): string => execFileSync('ceph', ['-c', c.conf, '--id', 'admin', ...args], { encoding: 'utf8', timeout: 30_000 });
          ceph('osd', 'set', 'noup');
          try {
            ceph('osd', 'down', '0');
            await during();
          } finally {
            ceph('osd', 'unset', 'noup');
          }
          await waitFor('osd.0 up again', () => (/"num_up_osds":1/.test(ceph('osd', 'stat', '--format', 'json')) ? true : undefined), { timeoutMs: 60_000, intervalMs: 500 });
        },
        crashMapping: (node, name) => {
          const m = JSON.parse(readFileSync(join(base, `run-${node}`, `${name}.map.json`), 'utf8')) as { pid: number };
          process.kill(m.pid, 'SIGKILL');
        },
        clients: (name) => {
          const out = execFileSync('rbd', ['-c', c.conf, '--id', 'admin', 'status', `${c.pool}/${name}`, '--format', 'json'], { encoding: 'utf8', timeout: 30_000 });
          return ((JSON.parse(out) as { watchers?: { address: string }[] }).watchers ?? []).map((w) => w.address).sort();
        },
      },
    };
  }, { skip: hasCeph ? undefined : 'ceph not installed' });
  after(async () => {
    if (base === '') return;
    for (const e of await readdir(base).catch(() => [])) if (e.startsWith('mnt-') && isMountPoint(join(base, e))) execFileSync('umount', ['-l', join(base, e)]);
    for (const node of await readdir(base).catch(() => [])) {
      if (node.startsWith('run-')) await RbdDriver.cleanupRunDir(join(base, node));
    }
    await ceph?.stop();
    rmSync(base, { recursive: true, force: true });
  });
}
