// Baseline for etcd load: how many puts/s this etcd sustains, N puts of a small value with C in flight,
// bounded by a deadline. Runs where it can reach the members (inside a lab namespace for the lab's etcd).
// Usage: put-load.ts --endpoints A,B,C --count 5000 --concurrency 16 --seconds 20 [--prefix /bench/]
// Prints "PUTS {"done":N,"seconds":S,"perSecond":R,"p50Ms":..,"p99Ms":..}" and deletes its keys.
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { percentile } from './report.js';

const { values: a } = parseArgs({
  options: {
    endpoints: { type: 'string' },
    count: { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '16' },
    seconds: { type: 'string', default: '20' },
    prefix: { type: 'string', default: `/bench/put-load-${process.pid}/` },
  },
});
const client = new Etcd3({ hosts: (a.endpoints ?? '').split(',').map((e) => `http://${e}`) });
const count = Number(a.count);
const deadline = Date.now() + Number(a.seconds) * 1000;
const value = 'x'.repeat(200);
const lat: number[] = [];
let next = 0;

async function worker(): Promise<void> {
  while (next < count && Date.now() < deadline) {
    const i = next++;
    const t = performance.now();
    await client.put(`${a.prefix}${i}`).value(value);
    lat.push(performance.now() - t);
  }
}

try {
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Number(a.concurrency) }, () => worker()));
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(`PUTS ${JSON.stringify({ done: lat.length, seconds, perSecond: lat.length / seconds, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99) })}\n`);
} finally {
  await client.delete().prefix(a.prefix).catch(() => undefined);
  client.close();
}
