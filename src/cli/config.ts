import { badInput } from '../lib/errors.js';
import { loadConfig } from '../inventory/allocate.js';
import { applySetting, updateConfig } from '../inventory/config-edit.js';
import type { StateClient } from '../state/client.js';
import { keySuffix, prefixes } from '../state/keys.js';
import { json, table, type Io } from './output.js';

export async function configCommand(state: StateClient, io: Io, args: string[]): Promise<number> {
  const [sub, key, value] = args;
  if (sub === 'show') {
    io.out(json(await loadConfig(state)));
    return 0;
  }
  if (sub === 'set') {
    if (!key || value === undefined) throw badInput('config set: usage: ycluster config set KEY VALUE (e.g. dhcpLeaseSeconds 7200)');
    const next = await updateConfig(state, (c) => applySetting(c, key, value));
    io.out(json(next));
    return 0;
  }
  throw badInput(`unknown config command "${sub ?? ''}": use show or set`);
}

export async function leaderCommand(state: StateClient, io: Io, args: string[], asJson: boolean): Promise<number> {
  if (args[0] !== 'show') throw badInput('usage: ycluster leader show');
  const l = await state.list(prefixes.leaders);
  const rows = l.entries.map((e) => ({ election: keySuffix(prefixes.leaders, e.key), node: e.value.node, since: e.value.since, token: e.createRevision }));
  io.out(asJson ? json(rows) : table(['ELECTION', 'LEADER', 'SINCE', 'TOKEN'], rows.map((r) => [r.election, r.node, r.since, r.token])));
  return 0;
}
