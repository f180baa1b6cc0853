// The Ceph requests a storage takeover makes, through one long-lived client (RadosSession) and through the
// `rbd`/`ceph` commands (CephCli, a new client per request), against the single-host test Ceph, rounds
// alternating so both see the same load. A lock add+break pair times the add and the break; the lookup of the
// locker between them is left out of both.
// Usage: node --import tsx bench/rados-ops.ts [--rounds 50] [--budget-s 300]
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { monoMs } from '../src/lib/time.js';
import { CephCli } from '../src/storage/ceph-cli.js';
import { RadosSession } from '../src/storage/rados-session.js';
import { startCeph } from '../test/helpers/ceph.js';
import { Cleanup } from './lib/cleanup.js';
import { say, summarize, table } from './lib/report.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '50' }, 'budget-s': { type: 'string', default: '300' } } });
const rounds = Math.max(1, Math.min(200, Number(values.rounds)));
const deadline = monoMs() + Math.max(10, Number(values['budget-s'])) * 1000;
const cleanup = new Cleanup();
const IMAGE = 'bench-img';
const NO_BLOCKLIST = '--rbd_blocklist_on_break_lock=false';

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = monoMs();
  await f();
  return monoMs() - t0;
}

interface Lock {
  id: string;
  locker: string;
}

try {
  say('starting the single-host test Ceph');
  const ceph = await startCeph();
  cleanup.add('ceph', () => ceph.stop());
  const opts = { conf: ceph.conf, id: 'admin', pool: ceph.pool };
  const cli = new CephCli(opts);
  const session = new RadosSession(opts);
  cleanup.add('rados session', () => session.close());
  await cli.rbd(['create', '--size', '16M', '--image-feature', 'layering', `${ceph.pool}/${IMAGE}`]);
  const image = `${ceph.pool}/${IMAGE}`;
  const cliLocks = (): Promise<Lock[]> => cli.rbdJson<Lock[]>(['lock', 'ls', image]);

  const cold = await timed(() => session.exists(IMAGE));
  const m: Record<string, number[]> = { 'lockers session': [], 'lockers rbd': [], 'lock pair session': [], 'lock pair rbd': [], 'blocklist session': [], 'blocklist ceph': [] };
  let done = 0;
  for (let i = 0; i < rounds && monoMs() < deadline && !cleanup.stopping; i++) {
    m['lockers session']!.push(await timed(() => session.lockers(IMAGE)));
    m['lockers rbd']!.push(await timed(() => cliLocks()));

    const sid = `bench:s:${i}`;
    let t = await timed(() => session.lockAdd(IMAGE, sid));
    const sl = (await session.lockers(IMAGE))[0]!;
    t += await timed(() => session.lockBreak(IMAGE, sid, sl.locker));
    m['lock pair session']!.push(t);

    const cid = `bench:c:${i}`;
    t = await timed(() => cli.rbd(['lock', 'add', image, cid]));
    const cl = (await cliLocks())[0]!;
    t += await timed(() => cli.rbd(['lock', 'rm', image, cid, cl.locker, NO_BLOCKLIST]));
    m['lock pair rbd']!.push(t);

    // A made-up client address: blocklisting it touches nothing, as a fence of a dead node's client would.
    const addr = `127.0.0.1:0/${900_000 + i}`;
    m['blocklist session']!.push(await timed(async () => {
      const r = await session.monCommand({ prefix: 'osd blocklist', blocklistop: 'add', addr, expire: 600 });
      if (r.code !== 0) throw new Error(`osd blocklist add: ${r.outs}`);
    }));
    m['blocklist ceph']!.push(await timed(() => cli.ceph(['osd', 'blocklist', 'add', `127.0.0.1:0/${800_000 + i}`, '600'])));
    done++;
  }
  const status = session.pid === undefined ? '' : readFileSync(`/proc/${session.pid}/status`, 'utf8');
  const rssMiB = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
  const rows = Object.entries(m).map(([k, v]) => {
    const s = summarize(v);
    return [k, s.n, s.p50, s.p99, s.min, s.max];
  });
  process.stdout.write(`rados ops, ${done} rounds (of ${rounds}); session cold start (spawn + connect + first request) ${cold.toFixed(0)} ms; helper RSS ${rssMiB.toFixed(1)} MiB; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
  process.stdout.write(table(['op (ms)', 'n', 'p50', 'p99', 'min', 'max'], rows));
} finally {
  await cleanup.run();
}
