import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions, type Watcher } from 'etcd3';
import { YcError, isYcError } from '../lib/errors.js';
import { decodeValue, encodeValue } from './codec.js';
import type { KeyDef, PrefixDef } from './keys.js';

export interface TlsFiles {
  ca: string;
  cert?: string;
  key?: string;
}

export interface StateOptions {
  /** Every etcd member: the client fails over between them. */
  endpoints: string[];
  tls?: TlsFiles;
  /** Deadline of unary calls; streams (watch, keepalive) have none and rely on gRPC keepalive. */
  callTimeoutMs?: number;
}

export interface Versioned<T> {
  key: string;
  value: T;
  createRevision: number;
  modRevision: number;
  lease: string;
}

export interface Listing<T> {
  entries: Versioned<T>[];
  /** Values that failed their schema: reported, never dropped silently or defaulted. */
  corrupt: { key: string; error: string }[];
  revision: number;
}

export interface PutOp {
  key: string;
  value: string;
  lease?: string;
}

export function buildEtcdOptions(opts: StateOptions): IOptions {
  const callTimeoutMs = opts.callTimeoutMs ?? 5000;
  const hosts = opts.endpoints.map((e) => (/^https?:\/\//.test(e) ? e : `${opts.tls ? 'https' : 'http'}://${e}`));
  const out: IOptions = {
    hosts,
    dialTimeout: 2000,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    // A member that vanished without closing its connection (partition, kill -9 of its host) is
    // detected by these pings instead of waiting for TCP to give up. They go also on idle connections:
    // without them a connection to a member whose link went down is never found dead, and every call on it
    // times out. (etcd answers idle pings with GOAWAY "too many pings" now and then; the client reconnects.)
    grpcOptions: {
      'grpc.keepalive_time_ms': 2000,
      'grpc.keepalive_timeout_ms': 2000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.max_pings_without_data': 0,
    },
  };
  if (opts.tls) {
    out.credentials = {
      rootCertificate: readFileSync(opts.tls.ca),
      ...(opts.tls.key ? { privateKey: readFileSync(opts.tls.key) } : {}),
      ...(opts.tls.cert ? { certChain: readFileSync(opts.tls.cert) } : {}),
    };
  }
  return out;
}

export function unavailable(err: unknown): YcError {
  if (isYcError(err)) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new YcError('UNAVAILABLE', `etcd unavailable: ${msg}`, { retryable: true, cause: err });
}

/** Typed, validated access to cluster state. */
export class StateClient {
  readonly etcd: Etcd3;

  constructor(readonly options: StateOptions) {
    if (options.endpoints.length === 0) throw new YcError('BAD_INPUT', 'no etcd endpoints configured');
    this.etcd = new Etcd3(buildEtcdOptions(options));
  }

  async get<T>(def: KeyDef<T>): Promise<Versioned<T> | undefined> {
    let res;
    try {
      res = await this.etcd.kv.range({ key: Buffer.from(def.key) });
    } catch (err) {
      throw unavailable(err);
    }
    const kv = res.kvs[0];
    if (!kv) return undefined;
    return {
      key: def.key,
      value: decodeValue(def, def.key, kv.value.toString()),
      createRevision: Number(kv.create_revision),
      modRevision: Number(kv.mod_revision),
      lease: kv.lease,
    };
  }

  async getValue<T>(def: KeyDef<T>): Promise<T | undefined> {
    return (await this.get(def))?.value;
  }

  async list<T>(def: PrefixDef<T>): Promise<Listing<T>> {
    let res;
    try {
      res = await this.etcd.kv.range({ key: Buffer.from(def.prefix), range_end: Buffer.from(prefixEnd(def.prefix)) });
    } catch (err) {
      throw unavailable(err);
    }
    const entries: Versioned<T>[] = [];
    const corrupt: { key: string; error: string }[] = [];
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      try {
        entries.push({
          key,
          value: decodeValue(def, key, kv.value.toString()),
          createRevision: Number(kv.create_revision),
          modRevision: Number(kv.mod_revision),
          lease: kv.lease,
        });
      } catch (err) {
        corrupt.push({ key, error: err instanceof Error ? err.message : String(err) });
      }
    }
    return { entries, corrupt, revision: Number(res.header.revision) };
  }

  async put<T>(def: KeyDef<T>, value: T, opts: { lease?: string } = {}): Promise<void> {
    const encoded = encodeValue(def, value);
    try {
      await this.etcd.kv.put({ key: Buffer.from(def.key), value: Buffer.from(encoded), ...(opts.lease ? { lease: opts.lease } : {}) });
    } catch (err) {
      throw unavailable(err);
    }
  }

  async delete(def: KeyDef<unknown>): Promise<boolean> {
    try {
      const res = await this.etcd.kv.deleteRange({ key: Buffer.from(def.key) });
      return Number(res.deleted) > 0;
    } catch (err) {
      throw unavailable(err);
    }
  }

  /**
   * One etcd transaction: every compare must hold, then all puts and deletes apply together.
   * Returns whether it applied.
   */
  async txn(t: {
    compare: { key: string; target: 'create' | 'mod' | 'value'; equals: number | string }[];
    puts?: PutOp[];
    deletes?: string[];
  }): Promise<boolean> {
    const compare = t.compare.map((c) => ({
      key: Buffer.from(c.key),
      result: 'Equal' as const,
      target: c.target === 'create' ? ('Create' as const) : c.target === 'mod' ? ('Mod' as const) : ('Value' as const),
      ...(c.target === 'create' ? { create_revision: String(c.equals) } : c.target === 'mod' ? { mod_revision: String(c.equals) } : { value: Buffer.from(String(c.equals)) }),
    }));
    const success = [
      ...(t.puts ?? []).map((p) => ({ request_put: { key: Buffer.from(p.key), value: Buffer.from(p.value), ...(p.lease ? { lease: p.lease } : {}) } })),
      ...(t.deletes ?? []).map((k) => ({ request_delete_range: { key: Buffer.from(k) } })),
    ];
    try {
      const res = await this.etcd.kv.txn({ compare, success, failure: [] });
      return res.succeeded;
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** Watches a prefix from a revision; the callback gets every change, the caller re-reads as it likes. */
  async watchPrefix(prefix: string, onChange: (ev: { type: 'put' | 'delete'; key: string; value: string }) => void, fromRevision?: number): Promise<Watcher> {
    let builder = this.etcd.watch().prefix(prefix);
    if (fromRevision !== undefined) builder = builder.startRevision(String(fromRevision));
    const watcher = await builder.create();
    watcher.on('put', (kv) => onChange({ type: 'put', key: kv.key.toString(), value: kv.value.toString() }));
    watcher.on('delete', (kv) => onChange({ type: 'delete', key: kv.key.toString(), value: '' }));
    return watcher;
  }

  private members: Etcd3[] | undefined;
  private keepaliveTurn = 0;

  /**
   * The client for the next lease keepalive, one member at a time: a keepalive that timed out moves the choice to
   * the next member. The shared client keeps picking a member that died without closing its connections (its
   * circuit breaker never hears of a timeout we impose), so a new leader's renewals could all go to the dead
   * member and miss its deadline.
   */
  keepaliveClient(): { client: Etcd3; failed(): void } {
    if (this.options.endpoints.length < 2) return { client: this.etcd, failed: () => undefined };
    this.members ??= this.options.endpoints.map((e) => new Etcd3(buildEtcdOptions({ ...this.options, endpoints: [e] })));
    const turn = this.keepaliveTurn;
    return {
      client: this.members[turn % this.members.length]!,
      failed: () => {
        if (this.keepaliveTurn === turn) this.keepaliveTurn = turn + 1;
      },
    };
  }

  close(): void {
    this.etcd.close();
    for (const m of this.members ?? []) m.close();
  }
}

export function prefixEnd(prefix: string): string {
  const buf = Buffer.from(prefix);
  buf[buf.length - 1] = buf[buf.length - 1]! + 1;
  return buf.toString();
}
