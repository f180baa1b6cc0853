import { badInput } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import { isIpv4 } from '../lib/net.js';
import type { ServiceSpec } from '../lib/supervisor.js';

/** A health script keepalived runs; while it fails the instance goes to FAULT and releases the VIP. */
export interface TrackScript {
  name: string;
  /** Absolute path first: enable_script_security refuses relative or user-writable scripts. */
  command: string;
  intervalSeconds: number;
  timeoutSeconds: number;
  /** Consecutive failures before FAULT, and successes before it clears. */
  fall: number;
  rise: number;
}

/** Everything one gateway VRRP instance needs: pure data, rendered by renderKeepalivedConf. */
export interface VrrpOptions {
  /** global_defs router_id: the node's host name, so logs and adverts say who is who. */
  routerId: string;
  instance: string;
  interface: string;
  vip: string;
  prefix: number;
  virtualRouterId: number;
  priority: number;
  /** VRRP version and advert interval in seconds (v3 takes centiseconds; v2 rounds to whole seconds). */
  version: 2 | 3;
  advertIntSeconds: number;
  /** true: every node starts BACKUP and never takes the VIP back from a live master. */
  nopreempt: boolean;
  /** Unicast: our source address and the other members'; undefined means multicast. */
  unicast?: { src: string; peers: string[] };
  track?: TrackScript;
  scriptUser: string;
}

const safeName = /^[A-Za-z0-9_.-]{1,64}$/;
const safeIface = /^[A-Za-z0-9_.:@-]{1,15}$/;
// keepalived splits a script line on blanks and honours quotes; keep the command free of both.
const safeCommand = /^\/[A-Za-z0-9_./:=@%+,-]*( [A-Za-z0-9_./:=@%+,?&-]+)*$/;

/** Rejects anything that could break out of its line in the config; values come from etcd. */
export function checkVrrpOptions(o: VrrpOptions): void {
  if (!safeName.test(o.routerId)) throw badInput(`keepalived: bad router id "${o.routerId}"`);
  if (!safeName.test(o.instance)) throw badInput(`keepalived: bad instance name "${o.instance}"`);
  if (!safeIface.test(o.interface)) throw badInput(`keepalived: bad interface "${o.interface}"`);
  if (!isIpv4(o.vip)) throw badInput(`keepalived: VIP "${o.vip}" is not an IPv4 address`);
  if (!Number.isInteger(o.prefix) || o.prefix < 1 || o.prefix > 32) throw badInput(`keepalived: bad prefix ${o.prefix}`);
  if (!Number.isInteger(o.virtualRouterId) || o.virtualRouterId < 1 || o.virtualRouterId > 255) throw badInput(`keepalived: virtual_router_id ${o.virtualRouterId} not in 1..255`);
  // 255 is reserved for the address owner; our VIP is owned by no node.
  if (!Number.isInteger(o.priority) || o.priority < 1 || o.priority > 254) throw badInput(`keepalived: priority ${o.priority} not in 1..254`);
  const minAdvert = o.version === 3 ? 0.01 : 1;
  if (!(o.advertIntSeconds >= minAdvert && o.advertIntSeconds <= 40)) throw badInput(`keepalived: advert_int ${o.advertIntSeconds} not in ${minAdvert}..40 for VRRPv${o.version}`);
  if (o.unicast) {
    for (const ip of [o.unicast.src, ...o.unicast.peers]) if (!isIpv4(ip)) throw badInput(`keepalived: unicast address "${ip}" is not IPv4`);
  }
  if (o.track) {
    if (!safeName.test(o.track.name)) throw badInput(`keepalived: bad track script name "${o.track.name}"`);
    if (!safeCommand.test(o.track.command)) throw badInput(`keepalived: track script "${o.track.command}" must be an absolute path and plain words`);
  }
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(o.scriptUser)) throw badInput(`keepalived: bad script user "${o.scriptUser}"`);
}

/** The whole keepalived.conf for one VRRP instance; same input, same bytes (so "changed" is a string compare). */
export function renderKeepalivedConf(o: VrrpOptions): string {
  checkVrrpOptions(o);
  const l: string[] = [
    '# Rendered by the ycluster agent from etcd; edits are overwritten.',
    'global_defs {',
    `  router_id ${o.routerId}`,
    `  vrrp_version ${o.version}`,
    '  enable_script_security',
    `  script_user ${o.scriptUser}`,
    // A second gratuitous-ARP burst 1 s after taking over refreshes neighbours that missed the first.
    '  vrrp_garp_master_delay 1',
    '  vrrp_garp_master_repeat 3',
    // Real-time scheduling: at 0.1 s adverts a busy CPU would otherwise delay adverts into false failovers.
    '  max_auto_priority',
    '}',
  ];
  if (o.track) {
    l.push(
      `vrrp_script ${o.track.name} {`,
      `  script "${o.track.command}"`,
      `  interval ${o.track.intervalSeconds}`,
      `  timeout ${o.track.timeoutSeconds}`,
      `  fall ${o.track.fall}`,
      `  rise ${o.track.rise}`,
      '}',
    );
  }
  l.push(`vrrp_instance ${o.instance} {`, '  state BACKUP');
  if (o.nopreempt) l.push('  nopreempt');
  l.push(
    `  interface ${o.interface}`,
    `  virtual_router_id ${o.virtualRouterId}`,
    `  priority ${o.priority}`,
    `  advert_int ${o.advertIntSeconds}`,
  );
  if (o.unicast) {
    l.push(`  unicast_src_ip ${o.unicast.src}`, '  unicast_peer {');
    for (const p of [...o.unicast.peers].sort()) l.push(`    ${p}`);
    l.push('  }');
  }
  l.push('  virtual_ipaddress {', `    ${o.vip}/${o.prefix} dev ${o.interface}`, '  }');
  if (o.track) l.push('  track_script {', `    ${o.track.name}`, '  }');
  l.push('}', '');
  return l.join('\n');
}

export interface KeepalivedFiles {
  conf: string;
  pidFile: string;
  vrrpPidFile: string;
}

/** Foreground, console logging, VRRP only (no checker or BFD children), every file under our data dir. */
export function keepalivedArgs(f: KeepalivedFiles): string[] {
  return ['-n', '-l', '-D', '-P', '-f', f.conf, '-p', f.pidFile, '-r', f.vrrpPidFile];
}

export function keepalivedService(f: KeepalivedFiles & { logFile?: string; health?: () => Promise<boolean> }): ServiceSpec {
  return {
    name: 'keepalived',
    command: 'keepalived',
    args: keepalivedArgs(f),
    // SIGTERM: keepalived sends a priority-0 advert and removes the VIP, so a backup takes over at once.
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 5000,
    healthIntervalMs: 1000,
    unhealthyRestartAfter: 5,
    ...(f.health ? { health: f.health } : {}),
    ...(f.logFile ? { logFile: f.logFile } : {}),
  };
}

/** `keepalived -t -f FILE`: ok, or the parser's complaints. */
export async function validateKeepalivedConf(file: string): Promise<{ ok: boolean; detail: string }> {
  const r = await run('keepalived', ['-t', '-f', file], { timeoutMs: 10_000, allowFailure: true });
  const detail = [...new Set((r.stderr + r.stdout).split('\n').map((s) => s.trim()).filter(Boolean))].join('; ');
  return r.code === 0 ? { ok: true, detail: 'valid' } : { ok: false, detail: detail || `keepalived -t exited ${r.code}` };
}
