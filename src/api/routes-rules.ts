import { z } from 'zod';
import { badInput } from '../lib/errors.js';
import type { StateClient } from '../state/client.js';
import { addRule, listRules, removeRule } from '../provision/rules-admin.js';
import type { Router } from './http.js';

const RuleBody = z.object({ prefix: z.string().max(64), type: z.string().max(32) }).strict();

/** MAC-prefix type rules, the same as `ycluster rules list|add|remove`. */
export function addRulesRoutes(router: Router, state: StateClient): void {
  router
    .add('GET', '/api/rules', async () => ({ status: 200, body: await listRules(state) }))
    .add('POST', '/api/rules', async (r) => {
      const b = RuleBody.safeParse(r.body);
      if (!b.success) throw badInput(`bad request body: ${b.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
      const res = await addRule(state, b.data.prefix, b.data.type);
      return { status: res.previous ? 200 : 201, body: res };
    })
    .add('DELETE', '/api/rules/:prefix', async (r) => ({ status: 200, body: { removed: await removeRule(state, r.params.prefix!) } }));
}
