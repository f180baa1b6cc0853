// Runs inside a lab node's namespace (`ip netns exec NS node --import tsx pg-probe-agent.ts`): reads one JSON
// request per line on stdin ({ id, sql, timeoutMs, options? }), runs each on a fresh connection to
// PGHOST:PGPORT as PGUSER with PGPASSWORD, and writes { id, ok, err? } per line. Requests run concurrently.
// Ends with its stdin (so with the test process that started it).
import { createInterface } from 'node:readline';
import { pgQuery } from './pg-wire.js';

const target = {
  host: process.env.PGHOST ?? '127.0.0.1',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
  database: process.env.PGDATABASE ?? 'postgres',
  password: process.env.PGPASSWORD ?? '',
};
const reply = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

createInterface({ input: process.stdin }).on('line', (line) => {
  let req: { id: number; sql: string; timeoutMs: number; options?: string };
  try {
    req = JSON.parse(line) as typeof req;
  } catch {
    return reply({ id: -1, ok: false, err: 'malformed request' });
  }
  pgQuery(target, req.sql, req.timeoutMs, req.options).then(
    () => reply({ id: req.id, ok: true }),
    (err: unknown) => reply({ id: req.id, ok: false, err: err instanceof Error ? err.message : String(err) }),
  );
}).on('close', () => process.exit(0));
