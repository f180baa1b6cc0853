/**
 * Boot HTTP routes as a pure function over a request and a BootLookup; the HTTP server wiring lives elsewhere.
 * The node is always identified by the MAC in the URL, never by the client address: behind a
 * reverse proxy or relay every request seems to come from the same place.
 */
import { errorMessage, isYcError, YcError } from '../lib/errors.js';
import { normalizeMac } from '../lib/net.js';
import { renderMetaData, renderUserData } from './autoinstall.js';
import { planBoot, renderBootScript, type BootPlan } from './ipxe.js';
import type { BootLookup } from './types.js';

export interface BootRequest {
  method: string;
  /** Path without the query string, e.g. /autoinstall/aa-bb-cc-dd-ee-ff/user-data. */
  path: string;
  query: URLSearchParams;
}

export interface BootResponse {
  status: number;
  contentType: string;
  body: string;
}

const TEXT = 'text/plain; charset=utf-8';
const SEED_ROUTE = /^\/autoinstall\/([^/]+)\/(user-data|meta-data|vendor-data)$/;

const json = (status: number, error: string, reason: string): BootResponse => ({
  status,
  contentType: 'application/json',
  body: JSON.stringify({ error, reason }),
});

/**
 * What this MAC would boot. With register (the real boot path) an unknown MAC is recorded for the
 * operator; without it (`ycluster boot show`) nothing is written.
 */
export async function bootDecision(mac: string, lookup: BootLookup, opts: { register?: boolean } = {}): Promise<BootPlan> {
  const normal = normalizeMac(mac);
  let node = await lookup.nodeByMac(normal);
  if (!node && opts.register) node = await lookup.registerUnknown(normal);
  const state = node ? await lookup.installState(normal) : 'install';
  return planBoot(normal, node, state, await lookup.bootConfig());
}

async function seed(mac: string, file: string, lookup: BootLookup): Promise<BootResponse> {
  const node = await lookup.nodeByMac(mac);
  if (!node) return json(404, 'NOT_FOUND', `no node with MAC ${mac}`);
  switch (file) {
    case 'meta-data':
      return { status: 200, contentType: 'text/yaml; charset=utf-8', body: renderMetaData(node) };
    case 'vendor-data':
      return { status: 200, contentType: TEXT, body: '' };
    default: {
      // A join token is issued only for a node that is meant to install now.
      if ((await lookup.installState(mac)) !== 'install') {
        return json(409, 'CONFLICT', `node ${node.hostname} (${mac}) is installed; mark it for reinstall first`);
      }
      const config = await lookup.bootConfig();
      const joinToken = await lookup.issueJoinToken(mac);
      return { status: 200, contentType: 'text/cloud-config; charset=utf-8', body: renderUserData(node, { ...config, joinToken }) };
    }
  }
}

async function route(req: BootRequest, lookup: BootLookup): Promise<BootResponse> {
  if (req.path === '/boot.ipxe') {
    const mac = req.query.get('mac');
    if (mac === null || mac === '') return json(400, 'BAD_INPUT', 'missing ?mac= (the iPXE chain URL should pass ${net0/mac})');
    const plan = await bootDecision(mac, lookup, { register: true });
    return { status: 200, contentType: TEXT, body: renderBootScript(plan) };
  }
  const m = SEED_ROUTE.exec(req.path);
  if (m) return seed(normalizeMac(decodeURIComponent(m[1]!)), m[2]!, lookup);
  return json(404, 'NOT_FOUND', `no boot route ${req.path}`);
}

export async function handleBootRequest(req: BootRequest, lookup: BootLookup): Promise<BootResponse> {
  if (req.method !== 'GET') return json(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed; boot routes are GET only`);
  try {
    return await route(req, lookup);
  } catch (err) {
    if (isYcError(err)) return json(err.httpStatus, err.code, err.message);
    if (err instanceof URIError) return json(400, 'BAD_INPUT', 'malformed percent-encoding in path');
    const wrapped = new YcError('INTERNAL', errorMessage(err));
    return json(500, wrapped.code, wrapped.message);
  }
}
