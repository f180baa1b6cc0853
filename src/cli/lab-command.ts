import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { badInput } from '../lib/errors.js';
import { healNode, killNode, partitionNode, stopNode } from '../lab/faults.js';
import { fetchLabStatus, labMeta, labUp, nodeOf, rebootNetwork, startAgent, stopAgent, yclusterCommand } from '../lab/lab.js';
import { nsName } from '../lab/names.js';
import { etcdEndpoints } from '../lab/plan.js';
import { destroyLab, listLabs } from '../lab/registry.js';
import { json, table, type Io } from './output.js';
import { formatStatus } from './status.js';

const LAB_USAGE = `ycluster lab — a whole cluster in network namespaces on this machine (root)

  lab up [--name N] [--core 3] [--storage 1] [--compute 1] [--frontend 0] [--ceph]
                                   --ceph: real Ceph (mon+mgr on s1, one OSD per storage node)
                                   and the rbd volume driver instead of loop files
  lab status NAME [--json]         cluster status through the lab's API forward
  lab exec NAME NODE -- CMD...     run a command on a node (ycluster there talks to the lab's etcd)
  lab kill NAME NODE               crash: kill -9 everything on the node and take its link down
  lab stop NAME NODE               SIGTERM (leaderships handed over first)
  lab start NAME NODE              boot the node again: own address only, link up, agent started
  lab partition NAME NODE          pull its cable;  lab heal NAME NODE  plugs it back
  lab down NAME | --all            remove everything the lab made
  lab list
`;

export async function labCommand(argv: string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  const dashdash = argv.indexOf('--');
  const own = dashdash >= 0 ? argv.slice(0, dashdash) : argv;
  const passthrough = dashdash >= 0 ? argv.slice(dashdash + 1) : [];
  const { values, positionals } = parseArgs({
    args: own,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      core: { type: 'string', default: '3' },
      storage: { type: 'string', default: '1' },
      compute: { type: 'string', default: '1' },
      frontend: { type: 'string', default: '0' },
      json: { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
      ceph: { type: 'boolean', default: false },
    },
  });
  const [sub, name, node] = positionals;
  const count = (flag: string, v: string, min: number, max: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw badInput(`--${flag} must be an integer from ${min} to ${max}`);
    return n;
  };
  const needName = (): string => {
    if (!name) throw badInput(`lab ${sub}: missing lab NAME (see ycluster lab list)`);
    return name;
  };
  const needNode = (): string => {
    const meta = labMeta(needName());
    if (!node) throw badInput(`lab ${sub}: missing NODE (nodes: ${meta.plan.map((p) => p.node).join(', ')})`);
    return nodeOf(meta, node).node;
  };

  switch (sub) {
    case 'up': {
      if (process.getuid?.() !== 0) throw badInput('lab up needs root (network namespaces)');
      const res = await labUp({
        ...(values.name ? { name: values.name } : {}),
        core: count('core', values.core, 3, 5),
        storage: count('storage', values.storage, 0, 10),
        compute: count('compute', values.compute, 0, 10),
        frontend: count('frontend', values.frontend, 0, 5),
        ceph: values.ceph,
        progress: (l) => io.err(l + '\n'),
      });
      io.out(formatStatus(res.status));
      io.out(`\nLab ${res.name} is up.\n  Dashboard:      http://127.0.0.1:${res.apiPort}/\n  Cluster status: http://127.0.0.1:${res.apiPort}/api/cluster-status\n  Status:         ycluster lab status ${res.name}\n  A shell on s1:  ycluster lab exec ${res.name} s1 -- ycluster status\n  Tear down:      ycluster lab down ${res.name}\n`);
      return 0;
    }
    case 'status': {
      const meta = labMeta(needName());
      const s = await fetchLabStatus(meta);
      io.out(values.json ? json(s) : formatStatus(s) + `\nAPI/dashboard: http://127.0.0.1:${meta.apiPort}/\n`);
      return s.healthy ? 0 : 1;
    }
    case 'exec': {
      const target = needNode();
      const meta = labMeta(name!);
      if (passthrough.length === 0) throw badInput('lab exec: give the command after --');
      const cmd = passthrough[0] === 'ycluster' ? [...yclusterCommand(), ...passthrough.slice(1)] : passthrough;
      return await new Promise<number>((resolve) => {
        const child = spawn('ip', ['netns', 'exec', nsName(name!, target), ...cmd], { stdio: 'inherit', env: { ...env, YCLUSTER_ETCD: etcdEndpoints(meta.plan).join(',') } });
        child.on('close', (code) => resolve(code ?? 1));
      });
    }
    case 'kill': {
      // A crashed machine also stops answering on the wire (ARP for VIPs it held): the cable goes too.
      const r = await killNode(needName(), needNode());
      await partitionNode(name!, node!);
      io.out(`killed ${r.signalled.length} processes on ${node} and took its link down (lab start ${name} ${node} boots it again)\n`);
      return 0;
    }
    case 'stop': {
      // As systemd stops the agent's unit (KillMode=mixed): the agent first, so it hands its leaderships
      // over and stops its own children in order; then whatever is left.
      await stopAgent(needName(), needNode());
      const r = await stopNode(name!, node!);
      io.out(`stopped ${r.signalled.length} processes on ${node}${r.forced.length ? ` (${r.forced.length} needed SIGKILL)` : ''}\n`);
      return 0;
    }
    case 'start':
      // Like a boot: only the node's own address survives, the link comes up, then the agent starts.
      await rebootNetwork(needName(), needNode());
      startAgent(name!, node!);
      io.out(`started the agent on ${node}\n`);
      return 0;
    case 'partition':
      await partitionNode(needName(), needNode());
      io.out(`${node} partitioned\n`);
      return 0;
    case 'heal':
      await healNode(needName(), needNode());
      io.out(`${node} healed\n`);
      return 0;
    case 'down': {
      const names = values.all ? listLabs().map((l) => l.name) : [needName()];
      for (const n of names) {
        const r = await destroyLab(n);
        io.out(`lab ${n} removed (${r.killed} processes, ${r.namespaces.length} namespaces)\n`);
      }
      return 0;
    }
    case 'list': {
      const labs = listLabs();
      io.out(values.json ? json(labs) : table(['LAB', 'CREATED', 'DIR', 'PROBLEM'], labs.map((l) => [l.name, l.createdAt, l.dir, l.problem])));
      return 0;
    }
    case undefined:
    case 'help':
      io.out(LAB_USAGE);
      return sub ? 0 : 2;
    default:
      throw badInput(`unknown lab command "${sub}"\n${LAB_USAGE}`);
  }
}
