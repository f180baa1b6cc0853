import type { Logger } from '../lib/log.js';
import type { StateClient } from '../state/client.js';
import { ClusterCache } from './cluster-cache.js';

const caches = new WeakMap<StateClient, { cache: Promise<ClusterCache>; users: number }>();

/** One cluster cache (one etcd watch) per agent, shared by the DHCP, DNS and boot roles. */
export async function acquireCache(state: StateClient, logger: Logger): Promise<ClusterCache> {
  let entry = caches.get(state);
  if (!entry) {
    const cache = new ClusterCache(state, logger);
    entry = { cache: cache.start().then(() => cache), users: 0 };
    caches.set(state, entry);
    entry.cache.catch(() => caches.delete(state));
  }
  entry.users++;
  return entry.cache;
}

export async function releaseCache(state: StateClient): Promise<void> {
  const entry = caches.get(state);
  if (!entry) return;
  if (--entry.users > 0) return;
  caches.delete(state);
  await (await entry.cache.catch(() => undefined))?.stop();
}
