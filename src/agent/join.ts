// Before the agent loads its config: an installed machine's first start redeems its join token (see
// src/provision/join-client.ts); src/agent/command.ts calls this before loadAgentConfig.
import { createLogger, type Logger } from '../lib/log.js';
import { ensureJoined, type EnsureJoined } from '../provision/join-client.js';

/** A no-op when the config already is an agent config; a refused join throws (the unit fails, with the reason). */
export function joinAtFirstStart(configPath: string, logger: Logger = createLogger({ fields: { component: 'join' } })): Promise<EnsureJoined> {
  return ensureJoined(configPath, { logger });
}
