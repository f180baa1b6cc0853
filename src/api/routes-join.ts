import { z } from 'zod';
import { badInput } from '../lib/errors.js';
import type { StateClient } from '../state/client.js';
import { redeemJoinToken } from '../provision/join.js';
import type { Router } from './http.js';

const JoinBody = z.object({ mac: z.string().max(64), token: z.string().max(1024) }).strict();

/**
 * POST /api/join {mac, token}: a freshly installed machine redeems its one-time join token and learns its
 * name, address and the etcd endpoints. 400 malformed, 403 refused (no token, used, expired, wrong), 404 no
 * such node, 409 a concurrent change; each with {error, reason}.
 */
export function addJoinRoutes(router: Router, state: StateClient): void {
  router.add('POST', '/api/join', async (r) => {
    const body = JoinBody.safeParse(r.body);
    if (!body.success) throw badInput(`bad request body: ${body.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
    const result = await redeemJoinToken(state, body.data);
    if (result.ok) return { status: 200, body: result.grant };
    return { status: result.status, body: { error: result.error, reason: result.reason } };
  });
}
