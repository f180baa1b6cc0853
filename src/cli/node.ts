import { badInput, notFound } from '../lib/errors.js';
import { normalizeMac } from '../lib/net.js';
import { allocateNode, findNode, parseNodeType, removeNode, setNodeType } from '../inventory/allocate.js';
import type { StateClient } from '../state/client.js';
import { keys, prefixes } from '../state/keys.js';
import type { NodeRecord } from '../state/schema.js';
import { json, table, type Io } from './output.js';

const row = (n: NodeRecord): string[] => [n.hostname, n.type, n.ip, n.mac, n.typeSource];
const HEAD = ['NODE', 'TYPE', 'IP', 'MAC', 'TYPE FROM'];

export async function nodeCommand(state: StateClient, io: Io, args: string[], opts: { json: boolean; type?: string; reason?: string }): Promise<number> {
  const [sub, ref, extra] = args;
  const print = (v: NodeRecord | NodeRecord[] | Record<string, unknown>): void => {
    if (opts.json) io.out(json(v));
    else if (Array.isArray(v)) io.out(table(HEAD, v.map(row)));
    else if ('hostname' in v && 'mac' in v) io.out(table(HEAD, [row(v as NodeRecord)]));
    else io.out(json(v));
  };
  const need = (what: string): string => {
    if (!ref) throw badInput(`node ${sub}: missing ${what}`);
    return ref;
  };
  switch (sub) {
    case 'list': {
      const l = await state.list(prefixes.nodes);
      print(l.entries.map((e) => e.value).sort((a, b) => a.hostname.localeCompare(b.hostname, 'en', { numeric: true })));
      for (const c of l.corrupt) io.err(`warning: ${c.error}\n`);
      return l.corrupt.length ? 1 : 0;
    }
    case 'show': {
      const found = await findNode(state, need('NODE (host name, MAC or IP)'));
      if (!found) throw notFound(`no node "${ref}"`);
      print(found.node);
      return 0;
    }
    case 'add': {
      const mac = normalizeMac(need('MAC'));
      const type = opts.type === undefined ? undefined : parseNodeType(opts.type);
      if (type) await state.put(keys.registration(mac), { type });
      const { node } = await allocateNode(state, { mac, ...(type ? { operatorType: type } : {}) });
      print(node);
      return 0;
    }
    case 'remove': {
      const node = await removeNode(state, need('NODE'));
      await state.delete(keys.registration(node.mac));
      print({ removed: node.hostname, mac: node.mac });
      return 0;
    }
    case 'set-type': {
      if (!extra) throw badInput('node set-type: usage: ycluster node set-type NODE TYPE');
      print(await setNodeType(state, need('NODE'), extra));
      return 0;
    }
    case 'drain':
    case 'undrain': {
      const found = await findNode(state, need('NODE'));
      if (!found) throw notFound(`no node "${ref}"`);
      if (sub === 'drain') await state.put(keys.drain(found.node.hostname), { reason: opts.reason ?? 'operator', at: new Date().toISOString() });
      else await state.delete(keys.drain(found.node.hostname));
      print({ [sub === 'drain' ? 'drained' : 'undrained']: found.node.hostname });
      return 0;
    }
    default:
      throw badInput(`unknown node command "${sub ?? ''}": use list, show, add, remove, set-type, drain or undrain`);
  }
}
