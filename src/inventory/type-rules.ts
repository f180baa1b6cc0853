import { badInput } from '../lib/errors.js';
import type { MacRule, NodeType } from '../state/schema.js';

export type TypeSource = 'registration' | 'rule' | 'reported' | 'default';

/** Type from, in order: an explicit registration of the MAC, the longest matching MAC-prefix rule, the type the node reports. */
export function decideType(
  mac: string,
  registration: NodeType | undefined,
  rules: readonly MacRule[],
  reported: NodeType | undefined,
): { type: NodeType; source: TypeSource } {
  if (registration) return { type: registration, source: 'registration' };
  const match = rules.filter((r) => mac.startsWith(r.prefix)).sort((a, b) => b.prefix.length - a.prefix.length)[0];
  if (match) return { type: match.type, source: 'rule' };
  if (reported) return { type: reported, source: 'reported' };
  return { type: 'compute', source: 'default' };
}

/**
 * An operator's MAC prefix in the stored form: 1 to 6 octets, lower-case, colon-separated. Octets must be
 * written out in two digits with ':' or '-' between them ("52:54:00", "52-54-00"): "5254:00" or "525400" is
 * refused, since a prefix is easy to get wrong by one digit and a wrong rule silently types new machines.
 */
export function parseMacPrefix(input: string): string {
  const s = input.trim().toLowerCase();
  if (!/^[0-9a-f]{2}([:-][0-9a-f]{2}){0,5}$/.test(s) || (s.includes(':') && s.includes('-'))) {
    throw badInput(`malformed MAC prefix "${input}": expected 1 to 6 two-digit hex octets like 52:54:00`);
  }
  return s.replace(/-/g, ':');
}
