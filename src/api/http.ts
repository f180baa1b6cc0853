import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { YcError, errorMessage, isYcError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';

export interface Request {
  method: string;
  path: string;
  query: URLSearchParams;
  params: Record<string, string>;
  body: unknown;
  remoteAddress: string | undefined;
}

export interface Response {
  status: number;
  body: unknown;
  /** Defaults to JSON; a string body with another type is sent as is. */
  contentType?: string;
}

export type Handler = (req: Request) => Promise<Response> | Response;

interface Route {
  method: string;
  pattern: RegExp;
  names: string[];
  handler: Handler;
}

const MAX_BODY = 1024 * 1024;

/** A small router: `/api/nodes/:ref` patterns, JSON in and out, errors as 4xx/5xx JSON with a reason. */
export class Router {
  private readonly routes: Route[] = [];

  add(method: string, path: string, handler: Handler): this {
    const names: string[] = [];
    const pattern = new RegExp(
      '^' + path.replace(/:([a-zA-Z]+)/g, (_, name: string) => {
        names.push(name);
        return '([^/]+)';
      }) + '$',
    );
    this.routes.push({ method, pattern, names, handler });
    return this;
  }

  async dispatch(method: string, url: string, rawBody: string, remoteAddress?: string): Promise<Response> {
    const u = new URL(url, 'http://x');
    let pathMatched = false;
    for (const r of this.routes) {
      const m = r.pattern.exec(u.pathname);
      if (!m) continue;
      pathMatched = true;
      if (r.method !== method) continue;
      const params: Record<string, string> = {};
      r.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1]!)));
      let body: unknown;
      if (rawBody) {
        try {
          body = JSON.parse(rawBody);
        } catch {
          return errorResponse(new YcError('BAD_INPUT', 'request body is not valid JSON'));
        }
      }
      try {
        return await r.handler({ method, path: u.pathname, query: u.searchParams, params, body, remoteAddress });
      } catch (err) {
        return errorResponse(err);
      }
    }
    return pathMatched
      ? { status: 405, body: { error: 'METHOD_NOT_ALLOWED', reason: `${method} is not allowed on ${u.pathname}` } }
      : { status: 404, body: { error: 'NOT_FOUND', reason: `no route ${u.pathname}` } };
  }
}

export function errorResponse(err: unknown): Response {
  if (isYcError(err)) return { status: err.httpStatus, body: { error: err.code, reason: err.message } };
  return { status: 500, body: { error: 'INTERNAL', reason: errorMessage(err) } };
}

export function startHttpServer(router: Router, port: number, host: string, logger: Logger): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        send(res, { status: 413, body: { error: 'TOO_LARGE', reason: `request body over ${MAX_BODY} bytes` } });
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (res.writableEnded) return;
      router
        .dispatch(req.method ?? 'GET', req.url ?? '/', Buffer.concat(chunks).toString('utf8'), req.socket.remoteAddress)
        .then((r) => send(res, r))
        .catch((err: unknown) => send(res, errorResponse(err)));
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      logger.info('api listening', { host, port });
      resolve(server);
    });
  });
}

function send(res: ServerResponse, r: Response): void {
  if (res.writableEnded) return;
  const isText = typeof r.body === 'string' && r.contentType !== undefined;
  const payload = isText ? (r.body as string) : JSON.stringify(r.body, null, 2) + '\n';
  res.writeHead(r.status, { 'content-type': r.contentType ?? 'application/json', 'cache-control': 'no-store' });
  res.end(payload);
}
