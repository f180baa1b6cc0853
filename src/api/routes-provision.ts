import { z } from 'zod';
import { badInput } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { StateClient } from '../state/client.js';
import { keys } from '../state/keys.js';
import { bootShow, configureBoot, dnsLookup, listAllocations, listLeases, markNode, releaseLease } from '../provision/provision-admin.js';
import type { Router } from './http.js';
import { addJoinRoutes } from './routes-join.js';
import { addRulesRoutes } from './routes-rules.js';

const BootSettingsBody = z
  .object({
    installerKernelUrl: z.string().optional(),
    installerInitrdUrl: z.string().optional(),
    isoUrl: z.string().optional(),
    sshAuthorizedKeys: z.array(z.string()).optional(),
    proxy: z.string().optional(),
    agentPackageUrl: z.string().optional(),
  })
  .strict();
const InstallStateBody = z.object({ state: z.enum(['install', 'installed']) }).strict();

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) throw badInput(`bad request body: ${r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
  return r.data;
}

/**
 * DHCP leases and allocations, DNS lookups from the cluster zone, boot settings and MAC-prefix rules: the same
 * as `ycluster dhcp|dns|boot|rules`; and POST /api/join for installed machines.
 */
export function addProvisionRoutes(router: Router, state: StateClient, logger: Logger): void {
  addJoinRoutes(router, state);
  addRulesRoutes(router, state);
  router
    .add('GET', '/api/dhcp/leases', async () => ({ status: 200, body: await listLeases(state) }))
    .add('GET', '/api/dhcp/allocations', async () => ({ status: 200, body: await listAllocations(state) }))
    .add('DELETE', '/api/dhcp/leases/:mac', async (r) => ({ status: 200, body: await releaseLease(state, r.params.mac!) }))
    .add('GET', '/api/dns/lookup', async (r) => {
      const name = r.query.get('name');
      if (!name) throw badInput('missing ?name=');
      const result = await dnsLookup(state, name, r.query.get('type') ?? undefined);
      return { status: 200, body: result };
    })
    // Before /api/boot/:mac, so "settings" is not taken for a MAC.
    .add('GET', '/api/boot/settings', async () => ({ status: 200, body: (await state.getValue(keys.bootSettings)) ?? null }))
    .add('PUT', '/api/boot/settings', async (r) => ({ status: 200, body: await configureBoot(state, parseBody(BootSettingsBody, r.body)) }))
    .add('GET', '/api/boot/:mac', async (r) => ({ status: 200, body: await bootShow(state, r.params.mac!, logger) }))
    .add('PUT', '/api/boot/:mac/install-state', async (r) => ({ status: 200, body: await markNode(state, r.params.mac!, parseBody(InstallStateBody, r.body).state) }));
}
