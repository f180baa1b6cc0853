// Allocates the MACs given on the command line concurrently; prints the records as one JSON array.
import { StateClient } from '../../src/state/client.js';
import { allocateNode } from '../../src/inventory/allocate.js';

const [endpoints, type, ...macs] = process.argv.slice(2);
const state = new StateClient({ endpoints: endpoints!.split(',') });
const results = await Promise.all(macs.map((mac) => allocateNode(state, { mac, reportedType: type! })));
process.stdout.write(JSON.stringify(results.map((r) => r.node)));
state.close();
