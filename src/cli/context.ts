import { StateClient } from '../state/client.js';

/** Where the CLI finds etcd: --etcd, else $YCLUSTER_ETCD, else the local member. */
export function stateFromFlags(flagValue: string | undefined, env: NodeJS.ProcessEnv): StateClient {
  const endpoints = (flagValue ?? env.YCLUSTER_ETCD ?? '127.0.0.1:2379').split(',').map((s) => s.trim()).filter(Boolean);
  const tls = env.YCLUSTER_ETCD_CA ? { ca: env.YCLUSTER_ETCD_CA, ...(env.YCLUSTER_ETCD_CERT ? { cert: env.YCLUSTER_ETCD_CERT } : {}), ...(env.YCLUSTER_ETCD_KEY ? { key: env.YCLUSTER_ETCD_KEY } : {}) } : undefined;
  return new StateClient({ endpoints, ...(tls ? { tls } : {}), callTimeoutMs: 3000 });
}
