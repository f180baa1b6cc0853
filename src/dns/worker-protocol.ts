/** Messages between the DNS server process and its UDP workers (JSON over the fork IPC channel). */
import type { Upstream } from './forwarder.js';
import type { ZoneSpec } from './records.js';
import type { Counters } from './responder.js';

export interface WorkerInit {
  upstreams: Upstream[];
  forwardTimeoutMs?: number | undefined;
  statsIntervalMs: number;
}

export type ToWorker =
  | { t: 'init'; init: WorkerInit; gen: number; zone: ZoneSpec }
  | { t: 'zone'; gen: number; zone: ZoneSpec }
  /** Comes with the bound dgram socket as the IPC handle. */
  | { t: 'socket'; id: string }
  | { t: 'detach'; id: string }
  | { t: 'stats?' };

export type FromWorker =
  | { t: 'ready'; gen: number }
  | { t: 'zone-ack'; gen: number }
  | { t: 'attached'; id: string }
  | { t: 'detached'; id: string }
  /** Totals since the worker started, per socket id. */
  | { t: 'stats'; sockets: Record<string, Counters> }
  | { t: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> | undefined };

/** A message's tag, or undefined for anything that is not one of ours. */
export function tagOf(m: unknown): string | undefined {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string' ? (m as { t: string }).t : undefined;
}
