/** The DHCP policy: a pure function from a parsed request (and the backend's answers) to a reply and where to send it. */
import { errorMessage } from '../lib/errors.js';
import { cidrContains, formatIpv4, parseCidr, prefixMask } from '../lib/net.js';
import type { Binding, DhcpBackend } from './backend.js';
import { BOOTREPLY, BOOTREQUEST, DhcpDecodeError, FLAG_BROADCAST, ipNumber, type DhcpPacket } from './codec.js';
import * as o from './options.js';
import { Opt, MsgType, msgTypeName } from './options.js';
import { decideBoot, type BootConfig, type BootDecision } from './pxe.js';

export interface DhcpHandlerConfig {
  /** Our address on the served link: option 54 and what clients in SELECTING state must name. */
  serverIp: string;
  /** The served subnet, e.g. "10.0.0.0/24": its mask is option 1; requests for addresses outside it are NAKed. */
  subnet: string;
  /** Option 3, usually the gateway VIP. */
  router?: string;
  dnsServers: readonly string[];
  ntpServers: readonly string[];
  domainName?: string;
  /** Lease asked of the backend; T1 = 0.5×, T2 = 0.875× of the lease granted. */
  leaseSeconds: number;
  boot: BootConfig;
}

export interface Destination {
  address: string;
  port: number;
}

export type DhcpOutcome =
  | { kind: 'reply'; reply: DhcpPacket; to: Destination; note: string }
  /** Handled with nothing to send (RELEASE, DECLINE). */
  | { kind: 'done'; note: string }
  /** Rejected; `reason` is short and fixed so it can key a counter. */
  | { kind: 'drop'; reason: string; detail?: string };

export type DhcpHandler = (req: DhcpPacket) => Promise<DhcpOutcome>;

const ZERO = '0.0.0.0';
const BROADCAST: Destination = { address: '255.255.255.255', port: 68 };
const drop = (reason: string, detail?: string): DhcpOutcome => (detail === undefined ? { kind: 'drop', reason } : { kind: 'drop', reason, detail });

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** aa:bb:cc:dd:ee:ff of the first 6 bytes (macFromBytes without the per-byte arrays). */
function macOf(chaddr: Buffer): string {
  return `${HEX[chaddr[0]!]}:${HEX[chaddr[1]!]}:${HEX[chaddr[2]!]}:${HEX[chaddr[3]!]}:${HEX[chaddr[4]!]}:${HEX[chaddr[5]!]}`;
}

/** Vendor class "ycluster:<type>" is how our installer reports the node type it was built for. */
function reportedType(vendor: string | undefined): string | undefined {
  const m = vendor?.match(/^ycluster:([a-z0-9-]{1,32})$/);
  return m?.[1];
}

export function createDhcpHandler(cfg: DhcpHandlerConfig, backend: DhcpBackend): DhcpHandler {
  const subnet = parseCidr(cfg.subnet);
  const inSubnet = (ip: string): boolean => {
    const n = ipNumber(ip);
    return n >= 0 && cidrContains(subnet, n);
  };
  // Option values that never change, encoded once; replies share them (encode only reads them).
  const typeBytes = new Map<number, Buffer>(Object.values(MsgType).map((t) => [t, o.u8(t)]));
  const serverIdBytes = o.ipBytes(cfg.serverIp);
  const maskBytes = o.ipBytes(formatIpv4(prefixMask(subnet.prefix)));
  const fixed = new Map<number, Buffer>();
  if (cfg.router) fixed.set(Opt.ROUTER, o.ipBytes(cfg.router));
  if (cfg.dnsServers.length > 0) fixed.set(Opt.DNS_SERVERS, o.ips(cfg.dnsServers));
  if (cfg.domainName) fixed.set(Opt.DOMAIN_NAME, o.text(cfg.domainName));
  if (cfg.ntpServers.length > 0) fixed.set(Opt.NTP_SERVERS, o.ips(cfg.ntpServers));
  const u32Cache = new Map<number, Buffer>();
  const u32 = (n: number): Buffer => {
    let b = u32Cache.get(n);
    if (!b) {
      b = o.u32(n);
      if (u32Cache.size < 64) u32Cache.set(n, b);
    }
    return b;
  };

  function reply(req: DhcpPacket, type: number): DhcpPacket {
    const options = new Map<number, Buffer>([
      [Opt.MESSAGE_TYPE, typeBytes.get(type) ?? o.u8(type)],
      [Opt.SERVER_ID, serverIdBytes],
    ]);
    return {
      op: BOOTREPLY, htype: req.htype, hlen: req.hlen, hops: 0, xid: req.xid, secs: 0, flags: req.flags,
      ciaddr: ZERO, yiaddr: ZERO, siaddr: ZERO, giaddr: req.giaddr, chaddr: req.chaddr, sname: '', file: '', options,
    };
  }

  /** Mandatory options first, then the requested ones we can answer, in the client's order (RFC 2132 §9.8). */
  function fillOptions(req: DhcpPacket, rep: DhcpPacket, binding: Binding | null, boot: BootDecision): void {
    if (binding) rep.options.set(Opt.LEASE_TIME, u32(binding.leaseSeconds));
    rep.options.set(Opt.SUBNET_MASK, maskBytes);
    if (boot.kind !== 'none') {
      rep.siaddr = boot.nextServer;
      rep.file = boot.file;
      rep.options.set(Opt.TFTP_SERVER, o.text(boot.nextServer));
      rep.options.set(Opt.BOOTFILE, o.text(boot.file));
    }
    const prl = req.options.get(Opt.PARAM_REQUEST_LIST);
    if (prl === undefined) return;
    for (const code of prl) {
      if (rep.options.has(code)) continue;
      let v = fixed.get(code);
      if (v === undefined && binding) {
        if (code === Opt.HOST_NAME) v = o.text(binding.hostname);
        else if (code === Opt.T1) v = u32(Math.floor(binding.leaseSeconds * 0.5));
        else if (code === Opt.T2) v = u32(Math.floor(binding.leaseSeconds * 0.875));
      }
      if (v !== undefined) rep.options.set(code, v);
    }
  }

  function bootFor(req: DhcpPacket, mac: string): BootDecision {
    return decideBoot({
      mac,
      vendorClass: o.vendorClass(req.options),
      arch: o.clientArch(req.options),
      userClasses: o.userClasses(req.options),
      hasIpxeOption: req.options.has(Opt.IPXE),
    }, cfg.boot);
  }

  function destination(req: DhcpPacket, rep: DhcpPacket, type: number): Destination {
    if (req.giaddr !== ZERO) {
      // The relay cannot know whether the client can take unicast before it has an address.
      if (type === MsgType.NAK) rep.flags |= FLAG_BROADCAST;
      return { address: req.giaddr, port: 67 };
    }
    if (type !== MsgType.NAK && req.ciaddr !== ZERO) return { address: req.ciaddr, port: 68 };
    return BROADCAST;
  }

  function send(req: DhcpPacket, rep: DhcpPacket, note: string): DhcpOutcome {
    const type = rep.options.get(Opt.MESSAGE_TYPE)![0]!;
    return { kind: 'reply', reply: rep, to: destination(req, rep, type), note };
  }

  function nak(req: DhcpPacket, mac: string, why: string): DhcpOutcome {
    const rep = reply(req, MsgType.NAK);
    rep.options.set(Opt.MESSAGE, o.text(why));
    return send(req, rep, `NAK ${mac}: ${why}`);
  }

  function ack(req: DhcpPacket, mac: string, b: Binding, state: string): DhcpOutcome {
    const rep = reply(req, MsgType.ACK);
    rep.ciaddr = req.ciaddr;
    rep.yiaddr = b.ip;
    const boot = bootFor(req, mac);
    fillOptions(req, rep, b, boot);
    return send(req, rep, `ACK ${b.ip} ${b.hostname} to ${mac} (${state}${boot.kind === 'none' ? '' : `, boot ${boot.file}`})`);
  }

  async function commitAndAck(req: DhcpPacket, mac: string, ip: string, state: string): Promise<DhcpOutcome> {
    if (!inSubnet(ip)) return nak(req, mac, `${ip} is not on this network`);
    const b = await backend.commit(mac, ip, cfg.leaseSeconds);
    if (!b || b.ip !== ip) return nak(req, mac, `${ip} is not the address for ${mac}`);
    return ack(req, mac, b, state);
  }

  async function onDiscover(req: DhcpPacket, mac: string): Promise<DhcpOutcome> {
    const requested = o.requestedIp(req.options);
    const hint = o.hostName(req.options);
    const type = reportedType(o.vendorClass(req.options));
    const b = await backend.offer({
      mac,
      ...(requested !== undefined && { requestedIp: requested }),
      ...(type !== undefined && { reportedType: type }),
      ...(hint !== undefined && { hostnameHint: hint }),
    });
    const rep = reply(req, MsgType.OFFER);
    rep.yiaddr = b.ip;
    const boot = bootFor(req, mac);
    fillOptions(req, rep, b, boot);
    return send(req, rep, `OFFER ${b.ip} ${b.hostname} to ${mac}${boot.kind === 'none' ? '' : ` (boot ${boot.file})`}`);
  }

  async function onRequest(req: DhcpPacket, mac: string): Promise<DhcpOutcome> {
    const sid = o.serverId(req.options);
    const requested = o.requestedIp(req.options);
    if (sid !== undefined) {
      if (sid !== cfg.serverIp) return drop('other-server', `${mac} selected ${sid}`);
      if (requested === undefined) return drop('no-requested-ip');
      return commitAndAck(req, mac, requested, 'selecting');
    }
    if (req.ciaddr !== ZERO) return commitAndAck(req, mac, req.ciaddr, 'renewing');
    if (requested === undefined) return drop('bad-request-state');
    if (!inSubnet(requested)) return nak(req, mac, `${requested} is not on this network`);
    const current = await backend.lookup(mac);
    // RFC 2131 4.3.2: with no record of the client, stay silent so another server may answer.
    if (!current) return drop('init-reboot-unknown', mac);
    if (current.ip !== requested) return nak(req, mac, `${requested} is not the address for ${mac}`);
    return commitAndAck(req, mac, requested, 'init-reboot');
  }

  async function dispatch(req: DhcpPacket): Promise<DhcpOutcome> {
    if (req.op !== BOOTREQUEST) return drop('not-request');
    if (req.htype !== 1 || req.hlen !== 6) return drop('unsupported-hardware');
    if (req.giaddr !== ZERO && !inSubnet(req.giaddr)) return drop('foreign-relay', req.giaddr);
    const type = o.messageType(req.options);
    if (type === undefined) return drop('no-message-type');
    const mac = macOf(req.chaddr);
    switch (type) {
      case MsgType.DISCOVER:
        return onDiscover(req, mac);
      case MsgType.REQUEST:
        return onRequest(req, mac);
      case MsgType.RELEASE: {
        const sid = o.serverId(req.options);
        if (sid !== undefined && sid !== cfg.serverIp) return drop('other-server');
        if (req.ciaddr === ZERO) return drop('release-without-ciaddr');
        await backend.release(mac, req.ciaddr);
        return { kind: 'done', note: `RELEASE ${req.ciaddr} by ${mac}` };
      }
      case MsgType.DECLINE: {
        const sid = o.serverId(req.options);
        if (sid !== undefined && sid !== cfg.serverIp) return drop('other-server');
        const ip = o.requestedIp(req.options);
        if (ip === undefined) return drop('no-requested-ip');
        await backend.decline(mac, ip);
        return { kind: 'done', note: `DECLINE ${ip} by ${mac}` };
      }
      case MsgType.INFORM: {
        if (req.ciaddr === ZERO) return drop('inform-without-ciaddr');
        const rep = reply(req, MsgType.ACK);
        rep.ciaddr = req.ciaddr;
        fillOptions(req, rep, null, bootFor(req, mac));
        return send(req, rep, `ACK (inform) to ${req.ciaddr} ${mac}`);
      }
      default:
        return drop('unexpected-message-type', msgTypeName(type));
    }
  }

  return async (req) => {
    try {
      return await dispatch(req);
    } catch (err) {
      if (err instanceof DhcpDecodeError) return drop(err.reason);
      return drop('backend-error', errorMessage(err));
    }
  };
}
