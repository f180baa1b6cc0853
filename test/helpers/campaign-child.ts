// A candidate in its own process, so a test can kill -9 it. Prints JSON lines: {"event":"leading","token":N,"t":ms}.
import { StateClient } from '../../src/state/client.js';
import { Election } from '../../src/state/election.js';
import { silentLogger } from '../../src/lib/log.js';

const [endpoints, election, node, ttl] = process.argv.slice(2);
const state = new StateClient({ endpoints: endpoints!.split(',') });
const say = (o: object): void => void process.stdout.write(JSON.stringify({ ...o, t: Date.now() }) + '\n');
const e = new Election({ state, election: election!, node: node!, ttlSeconds: Number(ttl), logger: silentLogger }, {
  onLeading: (token) => say({ event: 'leading', token }),
  onStopped: (reason) => say({ event: 'stopped', reason }),
});
e.campaign();
say({ event: 'ready' });
process.on('SIGTERM', () => {
  void e.close().then(() => process.exit(0));
});
