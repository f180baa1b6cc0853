// Baseline candidate: the etcd3 npm package's own Election, in its own process so it can be killed -9.
// Usage: etcd3-election-child.ts ENDPOINTS ELECTION NODE TTL. Prints JSON lines {"event":...,"t":ms}.
import { Etcd3 } from 'etcd3';

const [endpoints, name, node, ttl] = process.argv.slice(2);
const say = (o: object): void => void process.stdout.write(JSON.stringify({ ...o, t: Date.now() }) + '\n');
const client = new Etcd3({ hosts: endpoints!.split(',').map((e) => `http://${e}`) });
const campaign = client.election(name!, Number(ttl)).campaign(node!);
campaign.on('elected', () => say({ event: 'leading' }));
campaign.on('error', (err: Error) => say({ event: 'error', error: err.message }));
say({ event: 'ready' });
process.on('SIGTERM', () => {
  void campaign.resign().catch(() => undefined).finally(() => {
    client.close();
    process.exit(0);
  });
});
