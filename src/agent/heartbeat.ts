import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { sleep } from '../lib/time.js';
import type { StateClient } from '../state/client.js';
import { keepaliveOnce } from '../state/election.js';
import { keys } from '../state/keys.js';

/**
 * The node's liveness is a lease-held key: it costs one keepalive per TTL/3 and no writes;
 * when the node dies the key vanishes by itself. Age is derived from the lease's remaining TTL.
 */
export class Heartbeat {
  private leaseId: string | undefined;
  private ok = false;
  private lastError: string | undefined;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly state: StateClient, private readonly node: string, private readonly ip: string, private readonly ttlSeconds: number, private readonly logger: Logger) {}

  healthy(): { ok: boolean; detail: string } {
    return { ok: this.ok, detail: this.ok ? `lease ${this.leaseId} alive` : `no heartbeat lease: ${this.lastError ?? 'not started'}` };
  }

  start(): void {
    this.loop = this.run(this.abort.signal);
  }

  private async run(signal: AbortSignal): Promise<void> {
    const startedAt = new Date().toISOString();
    while (!signal.aborted) {
      try {
        if (!this.leaseId) {
          const grant = await this.state.etcd.leaseClient.leaseGrant({ TTL: String(this.ttlSeconds) });
          await this.state.put(keys.heartbeat(this.node), { node: this.node, startedAt, ip: this.ip }, { lease: grant.ID });
          this.leaseId = grant.ID;
        } else {
          const ttl = await keepaliveOnce(this.state, this.leaseId, 2000);
          if (ttl <= 0) {
            this.leaseId = undefined;
            throw new Error('heartbeat lease expired');
          }
        }
        this.ok = true;
      } catch (err) {
        this.ok = false;
        this.lastError = errorMessage(err);
        this.logger.debug('heartbeat failed', { error: this.lastError });
      }
      await sleep(Math.max(500, (this.ttlSeconds * 1000) / 3), signal).catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    if (this.leaseId) await this.state.etcd.leaseClient.leaseRevoke({ ID: this.leaseId }).catch(() => undefined);
  }
}
