import { mkdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Watcher } from 'etcd3';
import type { AlwaysRole, AlwaysRoleFactory, RoleContext } from '../agent/role.js';
import { errorMessage } from '../lib/errors.js';
import { isAlive } from '../lib/exec.js';
import type { ServiceStatus } from '../lib/supervisor.js';
import { Supervised } from '../lib/supervisor.js';
import { keys, prefixes } from '../state/keys.js';
import { defaultConfig, type Check } from '../state/schema.js';
import { keepalivedService, renderKeepalivedConf, validateKeepalivedConf, type KeepalivedFiles, type VrrpOptions } from '../services/keepalived.js';
import { defaultGatewayVipOptions, desiredVrrp, type GatewayVipOptions } from './desired.js';
import { holdsAddress, readPid, removeAddress, stopStaleKeepalived, writeValidatedIfChanged } from './host.js';

/** Re-read etcd this often even without a watch event, in case a watch was lost. */
const POLL_MS = 10_000;
const RETRY_MS = 1000;

/**
 * The gateway VIP on a core node: keepalived rendered from etcd (cluster config and the set of core
 * nodes), validated, written atomically, reloaded on change, supervised in the foreground.
 */
export class GatewayVipRole implements AlwaysRole {
  readonly files: KeepalivedFiles & { dir: string; log: string };
  private readonly keepalived: Supervised;
  private started = false;
  private config: { ok: boolean; detail: string } = { ok: false, detail: 'not rendered yet' };
  private vrrp: VrrpOptions | undefined;
  private watchers: Watcher[] = [];
  private readonly abort = new AbortController();
  private wake: (() => void) | undefined;
  private dirty = true;
  private retrySoon = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly ctx: RoleContext, private readonly opts: GatewayVipOptions) {
    const dir = join(ctx.config.dataDir, 'keepalived');
    this.files = { dir, conf: join(dir, 'keepalived.conf'), pidFile: join(dir, 'keepalived.pid'), vrrpPidFile: join(dir, 'vrrp.pid'), log: join(dir, 'keepalived.log') };
    this.keepalived = new Supervised(
      keepalivedService({ ...this.files, logFile: this.files.log, health: () => Promise.resolve(this.vrrpChildAlive()) }),
      ctx.logger.child({ role: 'gateway-vip' }),
    );
  }

  async start(): Promise<void> {
    mkdirSync(this.files.dir, { recursive: true });
    const stale = await stopStaleKeepalived(this.files.pidFile, this.files.conf);
    if (stale) this.ctx.logger.warn('stopped a keepalived left by an earlier agent', { pid: stale });
    // After a restart, etcd can take seconds to answer (its local member is rejoining); the last config we
    // rendered lets keepalived stand by at once, and the loop brings it up to date as soon as etcd answers.
    if (!(await this.startFromLastConfig())) await this.sync().catch((err: unknown) => this.failSync(err));
    this.loop = this.run(this.abort.signal);
  }

  async stop(): Promise<void> {
    this.abort.abort(new Error('stopping'));
    this.wake?.();
    await this.loop;
    await Promise.all(this.watchers.map((w) => w.cancel().catch(() => undefined)));
    this.watchers = [];
    await this.keepalived.stop();
    // keepalived drops the VIP on SIGTERM; after a SIGKILL (stop timeout) it may still be there.
    if (this.vrrp && (await removeAddress(this.vrrp.interface, this.vrrp.vip, this.vrrp.prefix))) {
      this.ctx.logger.warn('removed the gateway VIP keepalived left behind', { vip: this.vrrp.vip });
    }
  }

  holdsVip(): boolean {
    return this.vrrp ? holdsAddress(this.vrrp.interface, this.vrrp.vip) : false;
  }

  checks(): Check[] {
    const s = this.keepalived.status();
    const running = s.state === 'running' && s.healthy;
    const holds = this.holdsVip();
    const vip = this.vrrp ? `${this.vrrp.vip}/${this.vrrp.prefix} on ${this.vrrp.interface}` : 'the gateway VIP';
    return [
      { name: 'keepalived', ok: running, detail: `${s.state}${s.lastError ? `: ${s.lastError}` : ''}` },
      { name: 'keepalived-config', ok: this.config.ok, detail: this.config.detail },
      // Holding the VIP or not is information; holding it with no keepalived to defend it is a fault.
      { name: 'gateway-vip', ok: !holds || running, detail: holds ? `MASTER: holds ${vip}${running ? '' : ' without keepalived'}` : `BACKUP: ${vip} is held elsewhere` },
    ];
  }

  services(): ServiceStatus[] {
    return [this.keepalived.status()];
  }

  private vrrpChildAlive(): boolean {
    const pid = readPid(this.files.vrrpPidFile);
    return pid !== undefined && isAlive(pid);
  }

  private failSync(err: unknown): void {
    this.retrySoon = true;
    const detail = `cannot render from etcd: ${errorMessage(err)}`;
    // Retried every second while etcd is away: log the first of each kind only.
    if (detail !== this.config.detail) this.ctx.logger.warn('gateway VIP: render failed', { error: errorMessage(err) });
    this.config = { ok: this.started && this.config.ok, detail };
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (this.watchers.length === 0) await this.watch().catch((err: unknown) => this.ctx.logger.warn('gateway VIP: watch failed; polling', { error: errorMessage(err) }));
      if (this.dirty) {
        this.dirty = false;
        this.retrySoon = false;
        await this.sync().catch((err: unknown) => this.failSync(err));
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.dirty = true;
          resolve();
        }, this.retrySoon ? RETRY_MS : POLL_MS);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  private async startFromLastConfig(): Promise<boolean> {
    let last: VrrpOptions;
    try {
      last = JSON.parse(await readFile(this.lastFile, 'utf8')) as VrrpOptions;
      if (renderKeepalivedConf(last) !== (await readFile(this.files.conf, 'utf8'))) return false;
    } catch {
      return false;
    }
    if (!(await validateKeepalivedConf(this.files.conf)).ok) return false;
    this.vrrp = last;
    this.config = { ok: true, detail: 'last rendered config (etcd not read yet)' };
    await this.startKeepalived(last);
    return true;
  }

  private async startKeepalived(vrrp: VrrpOptions): Promise<void> {
    // Not running, so not MASTER: a VIP on our interface is a leftover (crashed keepalived) and would answer beside the real master.
    if (await removeAddress(vrrp.interface, vrrp.vip, vrrp.prefix)) this.ctx.logger.warn('cleared a stale gateway VIP', { vip: vrrp.vip, iface: vrrp.interface });
    this.keepalived.start();
    this.started = true;
    this.ctx.logger.info('gateway VIP: keepalived started', { detail: this.config.detail });
  }

  private get lastFile(): string {
    return join(this.files.dir, 'last-vrrp.json');
  }

  private async watch(): Promise<void> {
    const kick = (): void => {
      this.dirty = true;
      this.wake?.();
    };
    const w1 = await this.ctx.state.watchPrefix(keys.config.key, kick);
    try {
      this.watchers = [w1, await this.ctx.state.watchPrefix(prefixes.nodes.prefix, kick)];
    } catch (err) {
      await w1.cancel().catch(() => undefined);
      throw err;
    }
  }

  /** Read etcd, render, write if changed (validated), then start or reload keepalived. */
  private async sync(): Promise<void> {
    // No config written yet means the defaults, as everywhere else (allocation, config edits).
    const config = (await this.ctx.state.getValue(keys.config)) ?? defaultConfig;
    const nodes = (await this.ctx.state.list(prefixes.nodes)).entries.map((e) => e.value);
    const self = this.ctx.node;
    const vrrp = desiredVrrp({ config, nodes, self: { hostname: self.hostname, ip: self.ip, interface: this.ctx.config.interface, apiPort: this.ctx.config.apiPort } }, this.opts);
    const text = renderKeepalivedConf(vrrp);
    const out = await writeValidatedIfChanged(this.files.conf, text, validateKeepalivedConf);
    if ('invalid' in out) {
      this.config = { ok: false, detail: `rendered config rejected by keepalived -t (kept the previous one): ${out.invalid}` };
      this.ctx.logger.error('gateway VIP: rendered config is invalid', { detail: out.invalid });
      return;
    }
    if (!this.started && !out.changed) {
      // Left by an earlier run: it was valid then, check it still is with this keepalived.
      const v = await validateKeepalivedConf(this.files.conf);
      if (!v.ok) throw new Error(`existing ${this.files.conf} is invalid: ${v.detail}`);
    }
    const previous = this.vrrp;
    this.vrrp = vrrp;
    this.config = { ok: true, detail: `VRRPv${vrrp.version} vrid ${vrrp.virtualRouterId} priority ${vrrp.priority} advert ${vrrp.advertIntSeconds}s, ${vrrp.unicast ? `unicast peers ${vrrp.unicast.peers.join(',') || 'none'}` : 'multicast'}` };
    if (out.changed || !this.started) await writeFile(this.lastFile, JSON.stringify(vrrp));
    if (!this.started) {
      await this.startKeepalived(vrrp);
      return;
    }
    if (out.changed) {
      const pid = this.keepalived.status().pid;
      if (pid !== undefined) {
        try {
          process.kill(pid, 'SIGHUP');
        } catch {
          /* exited meanwhile: the supervisor restarts it with the new file */
        }
      }
      this.ctx.logger.info('gateway VIP: config changed; keepalived reloaded', { detail: this.config.detail, previousVip: previous?.vip });
    }
  }
}

/** A factory with other knobs (advert interval, multicast, a fixed virtual_router_id). */
export function gatewayVipRoleFactory(opts: Partial<GatewayVipOptions> = {}): AlwaysRoleFactory {
  const o: GatewayVipOptions = { ...defaultGatewayVipOptions, ...opts };
  return (ctx) => new GatewayVipRole(ctx, o);
}

/** Registered by the lead as ALWAYS_ROLES['gateway-vip']. */
export const createGatewayVipRole: AlwaysRoleFactory = gatewayVipRoleFactory();

