// What `ycluster rules` and /api/rules share: MAC-prefix rules that decide the type of machines seen for the
// first time (src/inventory/type-rules.ts). Each change is one compare-and-set on one key: nothing partial,
// and a concurrent change of the same rule is a conflict, not a lost update.
import { isYcError, notFound, YcError } from '../lib/errors.js';
import { parseNodeType } from '../inventory/allocate.js';
import { parseMacPrefix } from '../inventory/type-rules.js';
import type { StateClient, Versioned } from '../state/client.js';
import { encodeValue } from '../state/codec.js';
import { keys, prefixes } from '../state/keys.js';
import type { MacRule } from '../state/schema.js';

export interface RuleListing {
  /** Longest prefix first: the order in which they are matched. */
  rules: MacRule[];
  corrupt: { key: string; error: string }[];
}

export async function listRules(state: StateClient): Promise<RuleListing> {
  const l = await state.list(prefixes.macRules);
  const rules = l.entries.map((e) => e.value).sort((a, b) => b.prefix.length - a.prefix.length || a.prefix.localeCompare(b.prefix));
  return { rules, corrupt: l.corrupt };
}

/** The current rule, or "corrupt" for a value that fails its schema (a rule change repairs it). */
async function current(state: StateClient, prefix: string): Promise<Versioned<MacRule> | undefined | 'corrupt'> {
  try {
    return await state.get(keys.macRule(prefix));
  } catch (err) {
    if (isYcError(err, 'CORRUPT_VALUE')) return 'corrupt';
    throw err;
  }
}

/** Adds or replaces the rule for PREFIX; both arguments are checked before anything is written. */
export async function addRule(state: StateClient, prefixInput: string, typeInput: string): Promise<{ rule: MacRule; previous: MacRule | null }> {
  const rule: MacRule = { prefix: parseMacPrefix(prefixInput), type: parseNodeType(typeInput) };
  const def = keys.macRule(rule.prefix);
  const cur = await current(state, rule.prefix);
  if (cur === 'corrupt') {
    await state.put(def, rule);
    return { rule, previous: null };
  }
  const applied = await state.txn({
    compare: [cur ? { key: def.key, target: 'mod', equals: cur.modRevision } : { key: def.key, target: 'create', equals: 0 }],
    puts: [{ key: def.key, value: encodeValue(def, rule) }],
  });
  if (!applied) throw new YcError('CONFLICT', `the rule for ${rule.prefix} changed while adding it; try again`, { retryable: true });
  return { rule, previous: cur ? cur.value : null };
}

export async function removeRule(state: StateClient, prefixInput: string): Promise<MacRule | null> {
  const prefix = parseMacPrefix(prefixInput);
  const def = keys.macRule(prefix);
  const cur = await current(state, prefix);
  if (cur === 'corrupt') {
    await state.delete(def);
    return null;
  }
  if (!cur) throw notFound(`no MAC-prefix rule for ${prefix} (see ycluster rules list)`);
  const applied = await state.txn({ compare: [{ key: def.key, target: 'mod', equals: cur.modRevision }], deletes: [def.key] });
  if (!applied) throw new YcError('CONFLICT', `the rule for ${prefix} changed while removing it; try again`, { retryable: true });
  return cur.value;
}
