import { parseArgs } from 'node:util';
import { ensureJoined } from '../provision/join-client.js';
import { badInput } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import { json, type Io } from './output.js';

export const JOIN_USAGE = `  ycluster join --config FILE [--data-dir DIR] [--json]   redeem the installer's one-time join token (the agent does this at first start)
`;

/** `ycluster join`: turns the installer's bootstrap config into the agent's config, once. */
export async function joinCommand(args: string[], io: Io): Promise<number> {
  let values: { config?: string; 'data-dir'?: string; json: boolean };
  try {
    values = parseArgs({ args, options: { config: { type: 'string' }, 'data-dir': { type: 'string' }, json: { type: 'boolean', default: false } } }).values;
  } catch (err) {
    throw badInput(`${err instanceof Error ? err.message : String(err)}\n${JOIN_USAGE}`);
  }
  if (!values.config) throw badInput(`join: --config FILE is required\n${JOIN_USAGE}`);
  const r = await ensureJoined(values.config, { logger: createLogger({ level: 'warn' }), ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}) });
  if (values.json) io.out(json(r));
  else io.out(r.joined ? `joined as ${r.grant.hostname} (${r.grant.type}, ${r.grant.ip}); etcd ${r.grant.etcdEndpoints.join(',')}\n` : `${values.config} is already an agent config: nothing to do\n`);
  return 0;
}
