// What the storage lab tests share, whatever the volume driver: waiting for service through the VIP, a writer and
// a VIP watch around a fault, and the partition and drain cases themselves (test/lab/storage.test.ts runs them on
// loop volumes, test/lab/storage-ceph-faults.test.ts on Ceph).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../../src/lib/time.js';
import { labStatus, overlaps, readJournals, storageLogTail, waitForLeader, ycluster } from '../helpers/lab.js';
import { STORAGE_VIP, VipWatch, Writer, holders, inNode, postgresOn, psql } from './storage-probe.js';

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The waits of a Ceph lab (see StorageHarness). */
export const CEPH_WAITS = { serveMs: 60_000, healthyMs: 120_000, resumeMs: 60_000 };

export class StorageHarness {
  /** Row ids handed out to writers; each writer takes a block of its own. */
  private nextId = 1;

  /** Ceph labs wait longer: a takeover there includes breaking RBD locks and OSD failure detection. */
  constructor(readonly name: string, private readonly waits: { serveMs: number; healthyMs: number; resumeMs: number } = { serveMs: 40_000, healthyMs: 90_000, resumeMs: 40_000 }) {}

  takeId(): number {
    return this.nextId++;
  }

  /** The storage leader, once PostgreSQL answers through the VIP (optionally: a leader other than `not`). */
  async serving(not?: string): Promise<string> {
    const leader = await waitForLeader(this.name, 'storage', not, this.waits.serveMs);
    await waitFor('postgres through the storage VIP', async () => ((await psql(this.name, 'SELECT 1', { timeoutS: 1 })).ok ? true : undefined), { timeoutMs: this.waits.serveMs, intervalMs: 200 });
    return leader;
  }

  async ids(): Promise<Set<number>> {
    const r = await psql(this.name, 'SELECT id FROM t', { timeoutS: 5 });
    assert.ok(r.ok, r.err);
    return new Set(r.out.split('\n').filter(Boolean).map(Number));
  }

  async allAckedPresent(w: Writer): Promise<void> {
    const have = await this.ids();
    const missing = w.acked.filter((id) => !have.has(id));
    assert.deepEqual(missing, [], `acknowledged rows lost: ${missing.join(',')}`);
  }

  async waitHealthy(): Promise<void> {
    let reasons: string[] = [];
    await waitFor('lab healthy', async () => {
      const s = await labStatus(this.name).catch(() => undefined);
      reasons = s?.reasons ?? ['no status'];
      return s?.healthy ? true : undefined;
    }, { timeoutMs: this.waits.healthyMs, intervalMs: 500 }).catch((err: unknown) => assert.fail(`${String(err)}; last reasons: ${reasons.join('; ')}`));
  }

  async drain(node: string, on: boolean): Promise<void> {
    const r = await ycluster(['lab', 'exec', this.name, 's1', '--', 'ycluster', 'node', on ? 'drain' : 'undrain', node]);
    assert.equal(r.code, 0, r.stderr);
  }

  /** Moves the storage leader to `node` by a planned switchover: every other candidate drained for a moment. */
  async leaderTo(node: string, candidates: readonly string[]): Promise<void> {
    if ((await this.serving()) === node) return;
    const others = candidates.filter((n) => n !== node);
    await Promise.all(others.map((n) => this.drain(n, true)));
    // On a timeout, say what the lab said last: the leader then, and why nodes were unhealthy (a takeover that
    // keeps failing names its step there).
    let last = 'no status';
    try {
      await waitFor(`the storage leader on ${node}`, async () => {
        const s = await labStatus(this.name);
        last = `storage leader ${s.leaders.storage ?? 'none'}; ${s.reasons.join('; ') || 'no unhealthy node'}`;
        return s.leaders.storage === node ? true : undefined;
      }, { timeoutMs: 60_000, intervalMs: 200 }).catch((err: unknown) => {
        const journal = readJournals(this.name).filter((j) => j.election === 'storage').slice(-6).map((j) => `${new Date(j.t).toISOString()} ${j.node} ${j.event} ${j.token ?? ''} ${j.reason ?? ''}`);
        assert.fail(`${String(err)}; last: ${last}\nstorage journal:\n${journal.join('\n')}\n${node}'s log:\n${storageLogTail(this.name, node).join('\n')}`);
      });
    } finally {
      await Promise.all(others.map((n) => this.drain(n, false)));
    }
    assert.equal(await this.serving(), node);
  }

  /** Runs a fault with a writer and a VIP watch around it; returns the writer after it has seen writes resume. */
  async withWriter(excused: () => string | undefined, fault: (w: Writer) => Promise<void>): Promise<Writer> {
    const start = this.nextId;
    this.nextId += 100_000;
    const w = new Writer(this.name, 't', start);
    const watch = new VipWatch(this.name, excused);
    try {
      await waitFor('writes before the fault', () => (w.acked.length >= 3 ? true : undefined), { timeoutMs: 20_000, intervalMs: 50 });
      await fault(w);
      const n = w.acked.length;
      await waitFor('writes after the fault', () => (w.acked.length >= n + 3 ? true : undefined), { timeoutMs: this.waits.resumeMs, intervalMs: 50 });
    } finally {
      await w.stop();
      const doubles = await watch.stop();
      assert.deepEqual(doubles.slice(0, 5), [], 'a VIP was on two nodes at once');
    }
    await this.allAckedPresent(w);
    return w;
  }

  /**
   * Partition of the leader: while still cut off it drops the VIP and stops postgres (on Ceph its volume's I/O is
   * aborted for that); another node serves every acknowledged row; nobody led while the old leader still did.
   */
  async partitionCase(leader: string, opts: { deaths?: Map<string, number> } = {}): Promise<void> {
    try {
      await this.withWriter(() => undefined, async () => {
        assert.equal((await ycluster(['lab', 'partition', this.name, leader])).code, 0);
        await this.serving(leader);
      });
      assert.deepEqual(await holders(this.name, STORAGE_VIP, [leader]), [], 'the partitioned node dropped the VIP');
      await this.noPostgresOn(leader);
    } finally {
      await ycluster(['lab', 'heal', this.name, leader]);
      await this.waitHealthy();
    }
    assert.deepEqual(overlaps(readJournals(this.name), 'storage', opts.deaths ?? new Map<string, number>()), []);
  }

  /** curl from the client node c1 (the registry is reached through the storage VIP, as a user would). */
  private async curl(args: string[]): Promise<{ code: number; stdout: string }> {
    const r = await inNode(this.name, 'c1', 'curl', ['-s', '-m', '5', ...args], { timeoutMs: 10_000 });
    return { code: r.code, stdout: r.stdout };
  }

  /** Pushes an image (a layer, its config, a manifest) through the registry API, fails over by drain, pulls it back. */
  async registryCase(): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'ysh-reg-'));
    const base = `http://${STORAGE_VIP}:5000/v2/lab/demo`;
    try {
      const layer = Buffer.from(`layer ${Date.now()} ${Math.random()}`.repeat(200));
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(layer)] } }));
      for (const blob of [layer, config]) {
        const f = join(dir, 'blob');
        writeFileSync(f, blob);
        const start = await this.curl(['-i', '-X', 'POST', `${base}/blobs/uploads/`]);
        const loc = /^location: (\S+)/im.exec(start.stdout)?.[1];
        assert.ok(loc, `upload location: ${start.stdout}`);
        const url = `${loc.startsWith('http') ? loc : `http://${STORAGE_VIP}:5000${loc}`}${loc.includes('?') ? '&' : '?'}digest=${sha(blob)}`;
        const put = await this.curl(['-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '-H', 'Content-Type: application/octet-stream', '--data-binary', `@${f}`, url]);
        assert.equal(put.stdout, '201');
      }
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha(config) },
        layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.length, digest: sha(layer) }],
      });
      writeFileSync(join(dir, 'manifest'), manifest);
      const put = await this.curl(['-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '-H', 'Content-Type: application/vnd.docker.distribution.manifest.v2+json', '--data-binary', `@${join(dir, 'manifest')}`, `${base}/manifests/v1`]);
      assert.equal(put.stdout, '201');

      const leader = await this.serving();
      await this.drain(leader, true);
      try {
        await this.serving(leader);
      } finally {
        await this.drain(leader, false);
      }
      let last = '';
      await waitFor('registry after failover', async () => {
        last = (await this.curl(['-H', 'Accept: application/vnd.docker.distribution.manifest.v2+json', '-w', ' %{http_code}', `${base}/manifests/v1`])).stdout;
        return last.endsWith(' 200') ? true : undefined;
      }, { timeoutMs: this.waits.serveMs / 2, intervalMs: 200 }).catch((err: unknown) => assert.fail(`${String(err)}; last answer: ${last.slice(0, 300)}`));
      const got = await this.curl(['-H', 'Accept: application/vnd.docker.distribution.manifest.v2+json', `${base}/manifests/v1`]);
      assert.equal(sha(got.stdout), sha(manifest));
      const out = join(dir, 'layer.out');
      await this.curl(['-L', '-o', out, `${base}/blobs/${sha(layer)}`]);
      assert.equal(sha(readFileSync(out)), sha(layer));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  async noPostgresOn(node: string): Promise<void> {
    await waitFor(`no postgres on ${node}`, async () => ((await postgresOn(this.name, node)).length === 0 ? true : undefined), { timeoutMs: 60_000, intervalMs: 500 });
  }

  /**
   * Drain of the leader: a planned switchover keeps every row, and the old leader hands over: it releases the key
   * once stopped, so the next leader starts at once instead of after the lease runs out. The write gap is printed
   * and bounded loosely; its goal (1 s) is bench/storage-failover.ts's to measure, on a machine not also running
   * the test suite.
   */
  async drainCase(leader: string, maxGapMs = 10_000): Promise<void> {
    const before = await this.ids();
    const since = Date.now();
    try {
      const w = await this.withWriter(() => undefined, async () => {
        await this.drain(leader, true);
        await this.serving(leader);
      });
      // Every acknowledged row is there (withWriter checked it); a row beyond those is only one this writer sent
      // whose answer was lost when the old server shut down (committed, outcome unknown to the client).
      const added = [...(await this.ids())].filter((id) => !before.has(id));
      assert.deepEqual(added.filter((id) => !w.attempted(id)), [], 'rows nobody wrote during the switchover');
      assert.ok(added.length <= w.acked.length + w.failures.length, `${added.length} rows added, ${w.acked.length} acknowledged, ${w.failures.length} failed`);
      console.log(`drain of ${leader}: longest gap between acknowledged INSERTs ${w.longestGap()} ms`);
      assert.ok(w.longestGap() < maxGapMs, `writes stopped for ${w.longestGap()} ms during a planned switchover`);
      const journal = readJournals(this.name).filter((e) => e.election === 'storage' && e.t >= since);
      const stopped = journal.find((e) => e.node === leader && e.event === 'stopped');
      assert.ok(stopped, `no stop of ${leader} in the journal`);
      assert.match(stopped.reason ?? '', /drained/, 'the old leader stopped because it was drained');
      const next = journal.find((e) => e.event === 'leading' && e.node !== leader && e.t >= stopped.t);
      assert.ok(next, 'nobody led after the drain');
      // Released, not left to expire: a successor waiting out the lease would start about a TTL (3 s) later.
      assert.ok(next.t - stopped.t < 1500, `${next.node} led ${next.t - stopped.t} ms after ${leader} stopped`);
      console.log(`drain of ${leader}: ${next.node} led ${next.t - stopped.t} ms after the old leader had stopped`);
    } finally {
      await this.drain(leader, false);
    }
  }
}
