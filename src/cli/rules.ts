import { parseArgs } from 'node:util';
import { badInput } from '../lib/errors.js';
import { addRule, listRules, removeRule } from '../provision/rules-admin.js';
import { stateFromFlags } from './context.js';
import { json, table, type Io } from './output.js';

export const RULES_USAGE = `  ycluster rules list [--json]                 MAC-prefix rules: the type a machine seen for the first time gets
  ycluster rules add PREFIX TYPE [--json]      e.g. rules add 52:54:00 storage (replaces a rule for the same prefix)
  ycluster rules remove PREFIX [--json]
`;

function parse(args: string[]): { etcd: string | undefined; json: boolean; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { etcd: { type: 'string' }, json: { type: 'boolean', default: false } } });
    return { etcd: values.etcd, json: values.json, positionals };
  } catch (err) {
    throw badInput(`${err instanceof Error ? err.message : String(err)}\n${RULES_USAGE}`);
  }
}

/** `ycluster rules list|add|remove`: arguments are checked before etcd is contacted, so bad input writes nothing. */
export async function rulesCommand(args: string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  const { etcd, json: asJson, positionals } = parse(args);
  const [sub, prefix, type, extra] = positionals;
  const arity: Record<string, number> = { list: 1, add: 3, remove: 2 };
  if (!sub || !(sub in arity)) throw badInput(`unknown rules command "${sub ?? ''}": use list, add or remove\n${RULES_USAGE}`);
  if (positionals.length !== arity[sub] || extra !== undefined) throw badInput(`rules ${sub}: wrong number of arguments\n${RULES_USAGE}`);
  const state = stateFromFlags(etcd, env);
  try {
    switch (sub) {
      case 'list': {
        const r = await listRules(state);
        io.out(asJson ? json(r.rules) : table(['PREFIX', 'TYPE'], r.rules.map((x) => [x.prefix, x.type])));
        for (const c of r.corrupt) io.err(`warning: ${c.error}\n`);
        return r.corrupt.length ? 1 : 0;
      }
      case 'add': {
        const r = await addRule(state, prefix!, type!);
        const was = r.previous ? ` (was ${r.previous.type})` : '';
        io.out(asJson ? json(r) : `new machines with MAC ${r.rule.prefix}:… become ${r.rule.type}${was}; existing nodes keep their type\n`);
        return 0;
      }
      default: {
        const removed = await removeRule(state, prefix!);
        io.out(asJson ? json({ removed }) : `removed the rule for ${prefix!.toLowerCase().replace(/-/g, ':')}${removed ? ` (${removed.type})` : ' (its value was corrupt)'}\n`);
        return 0;
      }
    }
  } finally {
    state.close();
  }
}
