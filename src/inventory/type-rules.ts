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
