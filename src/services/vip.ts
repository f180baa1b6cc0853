import { networkInterfaces } from 'node:os';
import { run, type ExecResult } from '../lib/exec.js';
import { badInput } from '../lib/errors.js';
import { parseCidr } from '../lib/net.js';
import { sleep } from '../lib/time.js';

/** How long a gratuitous ARP is waited for: enough to see arping fail at once (no such device), no more. */
const ARP_SENT_MS = 50;

/** Runs a command; throws on a non-zero exit unless allowFailure. Injected in tests to check the commands built. */
export type CommandRunner = (cmd: string, args: readonly string[], opts?: { allowFailure?: boolean; timeoutMs?: number }) => Promise<ExecResult>;

const defaultRunner: CommandRunner = (cmd, args, opts) => run(cmd, args, { timeoutMs: opts?.timeoutMs ?? 2000, allowFailure: opts?.allowFailure ?? false });

export type ArpTool = 'iputils-arping' | 'busybox-arping' | 'none';

export interface AddVipResult {
  changed: boolean;
  /** Which tool sent the gratuitous ARP ('none' when none could, see arpError). */
  arp: ArpTool;
  arpError?: string;
}

/** "10.0.0.100/24" → address and prefix; a bare address is taken as /32. */
export function splitVip(cidr: string): { ip: string; prefix: number; cidr: string } {
  const [ip, len] = cidr.includes('/') ? cidr.split('/') : [cidr, '32'];
  try {
    parseCidr(`${ip}/${len}`);
  } catch {
    throw badInput(`not an IPv4 address with prefix: ${cidr}`);
  }
  const prefix = Number(len);
  return { ip: ip!, prefix, cidr: `${ip}/${prefix}` };
}

interface AddrInfo {
  family?: string;
  local?: string;
  prefixlen?: number;
}

/**
 * Whether iface carries the address (with any prefix: a stale VIP may have been added with another one). Asked
 * of `ip`, not getifaddrs as hasVip does: libuv lists only interfaces that are up and running, and a crashed
 * run's VIP must be found on a link that is still down too. Only removeVip's rare second try asks this.
 */
export async function vipPrefixOn(iface: string, ip: string, runner: CommandRunner = defaultRunner): Promise<number | undefined> {
  const res = await runner('ip', ['-j', '-4', 'addr', 'show', 'dev', iface]);
  const links = JSON.parse(res.stdout || '[]') as { addr_info?: AddrInfo[] }[];
  for (const link of links) for (const a of link.addr_info ?? []) if (a.local === ip) return a.prefixlen;
  return undefined;
}

/**
 * Whether iface carries the VIP's address, with any prefix. Asked in-process (getifaddrs), not with `ip`: every
 * node that could lead storage asks every two seconds, and a process start each time was most of an idle agent's
 * CPU on a small machine.
 */
export function hasVip(iface: string, cidr: string): boolean {
  const { ip } = splitVip(cidr);
  return (networkInterfaces()[iface] ?? []).some((a) => a.family === 'IPv4' && a.address === ip);
}

const ALREADY_THERE = /File exists|Address already assigned/i;

/**
 * Adds the VIP unless present, then announces it with one gratuitous ARP. Idempotent. One command, no look
 * first: a takeover's last step waits on it. The same address with the same prefix is refused ("Error: ipv4:
 * Address already assigned." from iproute2 6.1 with Debian 12's kernel; "RTNETLINK answers: File exists" from
 * older ones); a copy with another prefix can only be a crashed run's, and clearStaleVip removes that at start.
 */
export async function addVip(iface: string, cidr: string, runner: CommandRunner = defaultRunner): Promise<AddVipResult> {
  const v = splitVip(cidr);
  const res = await runner('ip', ['addr', 'add', v.cidr, 'dev', iface], { allowFailure: true });
  if (res.code !== 0 && !ALREADY_THERE.test(res.stderr)) throw new Error(`ip addr add ${v.cidr} dev ${iface}: ${res.stderr.trim()}`);
  const arp = await gratuitousArp(iface, v.ip, runner);
  return { changed: res.code === 0, ...arp };
}

/** Removes the VIP (whatever prefix it carries) if present. Idempotent; returns whether anything changed. */
export async function removeVip(iface: string, cidr: string, runner: CommandRunner = defaultRunner): Promise<boolean> {
  const v = splitVip(cidr);
  // The usual case first, in one command (a drain's write gap waits on it); a look only when that found nothing.
  const direct = await runner('ip', ['addr', 'del', v.cidr, 'dev', iface], { allowFailure: true });
  if (direct.code === 0) return true;
  if (!/Cannot assign requested address|Address not found/i.test(direct.stderr)) throw new Error(`ip addr del ${v.cidr} dev ${iface}: ${direct.stderr.trim()}`);
  const prefix = await vipPrefixOn(iface, v.ip, runner);
  if (prefix === undefined) return false;
  const res = await runner('ip', ['addr', 'del', `${v.ip}/${prefix}`, 'dev', iface], { allowFailure: true });
  // Gone between the look and the delete (the watchdog or a concurrent teardown removed it): already the goal.
  if (res.code !== 0 && !/Cannot assign requested address|Address not found/i.test(res.stderr)) throw new Error(`ip addr del ${v.ip}/${prefix} dev ${iface}: ${res.stderr.trim()}`);
  return res.code === 0;
}

/** At agent start nothing leads yet here: a VIP left on the interface by a crashed run is removed. */
export function clearStaleVip(iface: string, cidr: string, runner: CommandRunner = defaultRunner): Promise<boolean> {
  return removeVip(iface, cidr, runner);
}

/** Which arping is installed does not change while we run: asked once per runner, not on every takeover. */
const arpingVersions = new WeakMap<CommandRunner, Promise<{ result?: ExecResult; error?: string }>>();

function arpingVersion(runner: CommandRunner): Promise<{ result?: ExecResult; error?: string }> {
  let v = arpingVersions.get(runner);
  if (v === undefined) {
    v = runner('arping', ['-V'], { allowFailure: true }).then((result) => ({ result }), (err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }));
    arpingVersions.set(runner, v);
  }
  return v;
}

/** Unsolicited ARP so neighbours update their caches at once: iputils arping if present, else busybox's. */
export async function gratuitousArp(iface: string, ip: string, runner: CommandRunner = defaultRunner): Promise<{ arp: ArpTool; arpError?: string }> {
  const errors: string[] = [];
  const probe = await arpingVersion(runner);
  if (probe.error !== undefined) errors.push(probe.error);
  const version = probe.result;
  if (version && /iputils/i.test(version.stdout + version.stderr)) {
    // iputils arping sends its one request at once, then waits a whole second for replies that an unsolicited
    // ARP never gets: a takeover must not wait for that. Still running after a moment means it was sent.
    const running = runner('arping', ['-U', '-c', '1', '-I', iface, ip], { allowFailure: true });
    running.catch(() => undefined);
    const res = await Promise.race([running, sleep(ARP_SENT_MS).then(() => undefined)]);
    if (res === undefined || res.code === 0) return { arp: 'iputils-arping' };
    errors.push(`arping: ${res.stderr.trim()}`);
  }
  const bb = await runner('busybox', ['arping', '-U', '-c', '1', '-I', iface, ip], { allowFailure: true }).catch((err: unknown) => {
    errors.push(err instanceof Error ? err.message : String(err));
    return undefined;
  });
  if (bb?.code === 0) return { arp: 'busybox-arping' };
  if (bb) errors.push(`busybox arping: ${bb.stderr.trim()}`);
  return { arp: 'none', arpError: errors.join('; ') };
}
