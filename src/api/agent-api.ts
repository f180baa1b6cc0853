import type { Server } from 'node:http';
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../lib/log.js';
import type { Agent } from '../agent/agent.js';
import { StorageRole } from '../agent/storage-wiring.js';
import { clusterStatus } from '../inventory/cluster-status.js';
import { Router, startHttpServer } from './http.js';
import { addAdminRoutes } from './routes-admin.js';
import { addProvisionRoutes } from './routes-provision.js';

const dashboardPath = fileURLToPath(new URL('../web/dashboard.html', import.meta.url));

/** Every agent serves its own health, the cluster's status, metrics, the admin API and the dashboard. */
export function startAgentApi(agent: Agent, port: number, host: string, logger: Logger): Promise<Server> {
  const router = new Router();
  router
    .add('GET', '/api/health', () => {
      const h = agent.health();
      return { status: h.healthy ? 200 : 503, body: h };
    })
    .add('GET', '/api/cluster-status', async () => {
      const s = await clusterStatus(agent.state);
      return { status: 200, body: s };
    })
    .add('GET', '/metrics', () => {
      const h = agent.health();
      agent.metrics.set('ycluster_node_healthy', 'whether this node passes all its checks', h.healthy ? 1 : 0);
      for (const c of h.checks) agent.metrics.set('ycluster_check_ok', 'one health check of this node', c.ok ? 1 : 0, { check: c.name });
      for (const s of h.services) {
        agent.metrics.set('ycluster_service_healthy', 'a supervised service is healthy', s.healthy ? 1 : 0, { service: s.name });
        agent.metrics.set('ycluster_service_restarts', 'restarts of a supervised service', s.restarts, { service: s.name });
      }
      for (const e of agent.electors()) agent.metrics.set('ycluster_leader', 'this node leads the election', e.isLeader() ? 1 : 0, { election: e.name });
      return { status: 200, body: agent.metrics.render(), contentType: 'text/plain; version=0.0.4' };
    })
    .add('GET', '/', () => ({
      status: 200,
      body: existsSync(dashboardPath) ? readFileSync(dashboardPath, 'utf8') : '<p>dashboard not built: run npm run build</p>',
      contentType: 'text/html; charset=utf-8',
    }));
  router.add('GET', '/api/storage/volumes', async () => {
    const role = agent.ledRole('storage');
    if (!(role instanceof StorageRole)) return { status: 404, body: { error: 'NOT_FOUND', reason: 'this node takes no part in storage' } };
    const leading = agent.elector('storage')?.isLeader() ?? false;
    return { status: 200, body: { node: agent.nodeRecord()?.hostname, leading, volumes: await role.volumes() } };
  });
  addAdminRoutes(router, agent.state);
  addProvisionRoutes(router, agent.state, logger);
  return startHttpServer(router, port, host, logger);
}
