import { parseArgs } from 'node:util';
import { Agent } from './agent.js';
import { loadAgentConfig } from './config.js';
import { joinAtFirstStart } from './join.js';
import { badInput } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';

/** `ycluster agent --config FILE`: runs until SIGTERM/SIGINT, then hands leaderships over and stops in order. */
export async function agentCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' } } });
  if (!values.config) throw badInput('agent: --config FILE is required');
  await joinAtFirstStart(values.config);
  const config = loadAgentConfig(values.config);
  const logger = createLogger({ fields: { mac: config.mac } });
  const agent = new Agent(config, logger);
  await agent.start();
  await new Promise<void>((resolve) => {
    const onSignal = (sig: string): void => {
      logger.info('signal received: stopping', { signal: sig });
      resolve();
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  await agent.stop();
  logger.info('agent stopped');
  return 0;
}
