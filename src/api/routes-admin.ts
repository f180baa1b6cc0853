import { z } from 'zod';
import { badInput, notFound } from '../lib/errors.js';
import { normalizeMac } from '../lib/net.js';
import { allocateNode, findNode, loadConfig, parseNodeType, removeNode, setNodeType } from '../inventory/allocate.js';
import { applySetting, updateConfig, validateConfig } from '../inventory/config-edit.js';
import type { StateClient } from '../state/client.js';
import { keys, keySuffix, prefixes } from '../state/keys.js';
import type { Router } from './http.js';

const AddNodeBody = z.object({ mac: z.string(), type: z.string().optional() }).strict();
const SetTypeBody = z.object({ type: z.string() }).strict();
const SetConfigBody = z.object({ key: z.string(), value: z.string() }).strict();
const DrainBody = z.object({ reason: z.string().max(200).optional() }).strict().optional();

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) throw badInput(`bad request body: ${r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
  return r.data;
}

async function nodeOr404(state: StateClient, ref: string) {
  const found = await findNode(state, ref);
  if (!found) throw notFound(`no node "${ref}"`);
  return found.node;
}

export function addAdminRoutes(router: Router, state: StateClient): void {
  router
    .add('GET', '/api/nodes', async () => {
      const l = await state.list(prefixes.nodes);
      return { status: 200, body: { nodes: l.entries.map((e) => e.value), corrupt: l.corrupt } };
    })
    .add('GET', '/api/nodes/:ref', async (r) => ({ status: 200, body: await nodeOr404(state, r.params.ref!) }))
    .add('POST', '/api/nodes', async (r) => {
      const b = parseBody(AddNodeBody, r.body);
      const mac = normalizeMac(b.mac);
      const type = b.type === undefined ? undefined : parseNodeType(b.type);
      if (type) await state.put(keys.registration(mac), { type });
      const res = await allocateNode(state, { mac, ...(type ? { operatorType: type } : {}) });
      return { status: res.created ? 201 : 200, body: res.node };
    })
    .add('DELETE', '/api/nodes/:ref', async (r) => {
      const node = await removeNode(state, r.params.ref!);
      await state.delete(keys.registration(node.mac));
      return { status: 200, body: { removed: node } };
    })
    .add('PUT', '/api/nodes/:ref/type', async (r) => ({ status: 200, body: await setNodeType(state, r.params.ref!, parseBody(SetTypeBody, r.body).type) }))
    .add('POST', '/api/nodes/:ref/drain', async (r) => {
      const node = await nodeOr404(state, r.params.ref!);
      const b = parseBody(DrainBody, r.body);
      await state.put(keys.drain(node.hostname), { reason: b?.reason ?? 'operator', at: new Date().toISOString() });
      return { status: 200, body: { drained: node.hostname } };
    })
    .add('DELETE', '/api/nodes/:ref/drain', async (r) => {
      const node = await nodeOr404(state, r.params.ref!);
      await state.delete(keys.drain(node.hostname));
      return { status: 200, body: { undrained: node.hostname } };
    })
    .add('GET', '/api/config', async () => ({ status: 200, body: await loadConfig(state) }))
    .add('PUT', '/api/config', async (r) => {
      if (r.body && typeof r.body === 'object' && 'key' in r.body) {
        const b = parseBody(SetConfigBody, r.body);
        return { status: 200, body: await updateConfig(state, (c) => applySetting(c, b.key, b.value)) };
      }
      const next = validateConfig(r.body);
      return { status: 200, body: await updateConfig(state, () => next) };
    })
    .add('GET', '/api/leaders', async () => {
      const l = await state.list(prefixes.leaders);
      return { status: 200, body: Object.fromEntries(l.entries.map((e) => [keySuffix(prefixes.leaders, e.key), { node: e.value.node, since: e.value.since, token: e.createRevision }])) };
    });
}
