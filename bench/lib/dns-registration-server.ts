// Child of bench/dns-registration.ts: a core node's CoreServicesRole, exactly as the agent runs it (shared
// ClusterCache watching etcd → clusterZoneRecords → Zone → startDnsServer on 127.0.0.1, the node's IP and the
// gateway VIP, with the UDP worker pool), in a process of its own like the agent's. Only run inside the
// benchmark's network namespace: it binds :53, :69 and :8081 there.
// Usage: dns-registration-server.ts --endpoints A,B,C --data-dir DIR --node '<NodeRecord JSON>'
// Prints "DNSREG-READY {json}" once serving; "CHANGE|ZONE <process.hrtime ns> <node count>" each time the
// cluster cache changed, before and after the role replaced its zone (the system-wide monotonic clock,
// comparable with the benchmark process's); and
// "DNSREG-STATS {json}" (the role's counters) on SIGTERM.
import { parseArgs } from 'node:util';
import { AgentConfigSchema } from '../../src/agent/config.js';
import { errorMessage } from '../../src/lib/errors.js';
import { createLogger } from '../../src/lib/log.js';
import { createCoreServicesRole } from '../../src/provision/core-services-role.js';
import { acquireCache, releaseCache } from '../../src/provision/shared-cache.js';
import { StateClient } from '../../src/state/client.js';
import { NodeRecordSchema } from '../../src/state/schema.js';

const { values: a } = parseArgs({ options: { endpoints: { type: 'string' }, 'data-dir': { type: 'string' }, node: { type: 'string' } } });
if (!a.endpoints || !a['data-dir'] || !a.node) throw new Error('usage: dns-registration-server.ts --endpoints A,B,C --data-dir DIR --node JSON');

const endpoints = a.endpoints.split(',');
const node = NodeRecordSchema.parse(JSON.parse(a.node));
const config = AgentConfigSchema.parse({ mac: node.mac, hostname: node.hostname, ip: node.ip, etcdEndpoints: endpoints, dataDir: a['data-dir'] });
const state = new StateClient({ endpoints });
const logger = createLogger({ level: 'warn' });
const role = createCoreServicesRole({ state, node, config, logger });

let stopping = false;
const stop = (code: number): void => {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`DNSREG-STATS ${JSON.stringify(role.stats())}\n`);
  void role.stop()
    .then(() => releaseCache(state))
    .catch((err: unknown) => process.stderr.write(`stopping the role: ${errorMessage(err)}\n`))
    .finally(() => {
      state.close();
      process.exit(code);
    });
};
process.once('SIGTERM', () => stop(0));
process.once('SIGINT', () => stop(0));

async function start(): Promise<void> {
  // The role's own cache (one per state client, acquired here first): a listener before the role's sees the
  // watch event arrive, one after it sees the zone replaced (workers sent their copy, answers precomputed).
  const cache = await acquireCache(state, logger);
  const stamp = (what: string) => (): void => void process.stdout.write(`${what} ${process.hrtime.bigint()} ${cache.nodes().length}\n`);
  cache.onChange(stamp('CHANGE'));
  await role.start();
  cache.onChange(stamp('ZONE'));
  process.stdout.write(`DNSREG-READY ${JSON.stringify({ pid: process.pid, checks: role.checks() })}\n`);
}

start().then(
  () => undefined,
  (err: unknown) => {
    process.stderr.write(`core services did not start: ${errorMessage(err)}\n`);
    stop(1);
  },
);
