import { parseArgs } from 'node:util';
import { YcError, errorMessage, isYcError } from '../lib/errors.js';
import { stateFromFlags } from './context.js';
import { configCommand, leaderCommand } from './config.js';
import { nodeCommand } from './node.js';
import { JOIN_USAGE, joinCommand } from './join.js';
import { PROVISION_USAGE, provisionCommand } from './provision.js';
import { RULES_USAGE, rulesCommand } from './rules.js';
import type { Io } from './output.js';
import { statusCommand } from './status.js';
import { storageCommand } from './storage.js';

export const USAGE = `ycluster — a self-managing cluster on bare metal

Usage:
  ycluster status [--json]                     cluster table; exit 1 when unhealthy, with reasons
  ycluster node list|show NODE [--json]
  ycluster node add MAC [--type TYPE]          register a MAC (core, storage, compute, macos, frontend)
  ycluster node remove|drain|undrain NODE
  ycluster node set-type NODE TYPE
  ycluster config show | config set KEY VALUE  e.g. config set dhcpLeaseSeconds 7200
  ycluster leader show [--json]
  ycluster storage status|volumes [--json]    storage leader, its services and alarms; volumes and lock holders
  ycluster storage forget VOLUME --yes         drop the cluster's record of a volume (it is then created/formatted afresh)
${PROVISION_USAGE}${RULES_USAGE}${JOIN_USAGE}  ycluster agent --config FILE                 run the node agent
  ycluster lab up|status|exec|kill|stop|start|partition|heal|down|list   (see: ycluster lab help)

Options: --etcd HOST:PORT[,…] (default $YCLUSTER_ETCD or 127.0.0.1:2379), --json
`;

export type SubcommandRunner = (args: string[], io: Io, env: NodeJS.ProcessEnv) => Promise<number>;

/** Runs one CLI invocation; returns the exit code. Errors become one clear line on stderr. */
export async function runCli(argv: string[], io: Io, env: NodeJS.ProcessEnv, extra: Record<string, SubcommandRunner>): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === 'help' || command === '--help' || command === '-h') {
      io.out(USAGE);
      return command ? 0 : 2;
    }
    const runner = extra[command];
    if (runner) return await runner(rest, io, env);
    if (command === 'dhcp' || command === 'dns' || command === 'boot') return await provisionCommand(command, rest, io, env);
    if (command === 'rules') return await rulesCommand(rest, io, env);
    if (command === 'join') return await joinCommand(rest, io);
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: { etcd: { type: 'string' }, json: { type: 'boolean', default: false }, type: { type: 'string' }, reason: { type: 'string' }, yes: { type: 'boolean', default: false } },
    });
    const state = stateFromFlags(values.etcd, env);
    try {
      switch (command) {
        case 'status':
          return await statusCommand(state, io, values.json);
        case 'node':
          return await nodeCommand(state, io, positionals, { json: values.json, ...(values.type ? { type: values.type } : {}), ...(values.reason ? { reason: values.reason } : {}) });
        case 'config':
          return await configCommand(state, io, positionals);
        case 'leader':
          return await leaderCommand(state, io, positionals, values.json);
        case 'storage':
          return await storageCommand(state, io, positionals, { json: values.json, yes: values.yes });
        default:
          throw new YcError('BAD_INPUT', `unknown command "${command}" (see ycluster help)`);
      }
    } finally {
      state.close();
    }
  } catch (err) {
    const code = isYcError(err) ? err.code : 'ERROR';
    io.err(`ycluster: ${code === 'BAD_INPUT' ? '' : `${code}: `}${errorMessage(err)}\n`);
    return isYcError(err, 'UNAVAILABLE') ? 3 : 1;
  }
}
