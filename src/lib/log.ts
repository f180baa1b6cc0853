/** Structured logs: one JSON object per line on stderr, so agents' logs can be grepped and parsed by tests. */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LogSink {
  write(line: string): void;
}

const stderrSink: LogSink = { write: (line) => process.stderr.write(line) };

export function createLogger(
  opts: { level?: Level; fields?: Record<string, unknown>; sink?: LogSink } = {},
): Logger {
  const min = order[opts.level ?? ((process.env.YCLUSTER_LOG_LEVEL as Level | undefined) ?? 'info')] ?? order.info;
  const base = opts.fields ?? {};
  const sink = opts.sink ?? stderrSink;
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>): void => {
    if (order[level] < min) return;
    sink.write(JSON.stringify({ t: new Date().toISOString(), level, msg, ...base, ...fields }) + '\n');
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ ...opts, fields: { ...base, ...fields } }),
  };
}

export const silentLogger: Logger = createLogger({ level: 'error', sink: { write: () => undefined } });

/**
 * Logs at most once per interval per key, counting what it suppressed: a daemon flooded
 * with bad packets must not flood its log too.
 */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(private readonly log: Logger, private readonly intervalMs = 10_000) {}

  warn(key: string, msg: string, fields?: Record<string, unknown>): void {
    const now = Date.now();
    const entry = this.last.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    this.log.warn(msg, { ...fields, suppressedSinceLast: entry?.suppressed ?? 0 });
    this.last.set(key, { at: now, suppressed: 0 });
  }
}
