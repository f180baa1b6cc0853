/**
 * Where the time of a new machine goes: allocateNode (name + address + indexes in one etcd transaction),
 * as the etcd DHCP backend calls it for each unknown MAC, one at a time and with many in flight.
 *   alloc-probe.ts --endpoints A,B,C --count 200 --concurrency 1,32 [--seconds 20] [--compute 10.0.1.1-10.0.40.255]
 * Prints "ALLOC {"concurrency":C,"done":N,"failed":F,"perSecond":R,"p50Ms":..,"p99Ms":..}" per concurrency.
 */
import { parseArgs } from 'node:util';
import { allocateNode } from '../../src/inventory/allocate.js';
import { StateClient } from '../../src/state/client.js';
import { keys } from '../../src/state/keys.js';
import { defaultConfig } from '../../src/state/schema.js';
import { percentile } from './report.js';

const { values: a } = parseArgs({
  options: {
    endpoints: { type: 'string' },
    count: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '1,32' },
    seconds: { type: 'string', default: '20' },
    network: { type: 'string', default: '10.0.0.0/16' },
    compute: { type: 'string', default: '10.0.1.1-10.0.40.255' },
  },
});
const [start, end] = (a.compute ?? '').split('-');
if (!a.endpoints || !start || !end) throw new Error('usage: alloc-probe.ts --endpoints A,B,C [--count N] [--concurrency 1,32]');
const state = new StateClient({ endpoints: a.endpoints.split(',') });
await state.put(keys.config, { ...defaultConfig, network: a.network, ranges: { ...defaultConfig.ranges, compute: { start, end } } });
let serial = 0;
const mac = (): string => {
  const n = ++serial;
  return `02:bb:00:${((n >> 16) & 0xff).toString(16).padStart(2, '0')}:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`;
};
try {
  for (const c of a.concurrency.split(',').map(Number)) {
    const count = Number(a.count);
    const deadline = Date.now() + Number(a.seconds) * 1000;
    const lat: number[] = [];
    let failed = 0;
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: c }, async () => {
      while (next < count && Date.now() < deadline) {
        next++;
        const t = performance.now();
        try {
          await allocateNode(state, { mac: mac() });
          lat.push(performance.now() - t);
        } catch {
          failed++;
        }
      }
    }));
    const seconds = (performance.now() - t0) / 1000;
    process.stdout.write(`ALLOC ${JSON.stringify({ concurrency: c, done: lat.length, failed, seconds, perSecond: lat.length / seconds, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99) })}\n`);
  }
} finally {
  state.close();
}
