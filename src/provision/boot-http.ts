import { createServer, type Server } from 'node:http';
import { handleBootRequest } from '../boot/http-routes.js';
import type { BootLookup } from '../boot/types.js';
import type { Logger } from '../lib/log.js';

/** The boot HTTP server: iPXE scripts and autoinstall seeds, looked up by the MAC in the URL. */
export function startBootHttp(lookup: BootLookup, port: number, host: string, logger: Logger): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    handleBootRequest({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams }, lookup)
      .then((r) => {
        // One line per request: which machine asked for what is the operator's first question when a boot stalls.
        logger.info('boot request', { path: url.pathname, mac: url.searchParams.get('mac') ?? undefined, status: r.status, client: req.socket.remoteAddress });
        res.writeHead(r.status, { 'content-type': r.contentType, 'cache-control': 'no-store' });
        res.end(r.body);
      })
      .catch((err: unknown) => {
        logger.error('boot request failed', { path: url.pathname, error: String(err) });
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'INTERNAL', reason: 'boot request failed' }));
      });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
