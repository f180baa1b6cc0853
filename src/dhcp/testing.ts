/** Builders for test requests (shared by unit tests, the fuzz test and benchmarks). */
import { BOOTREQUEST, type DhcpPacket } from './codec.js';
import { ipBytes, MsgType, Opt, u8 } from './options.js';

export interface RequestSpec {
  type?: number;
  mac?: string;
  xid?: number;
  ciaddr?: string;
  giaddr?: string;
  flags?: number;
  options?: Array<[number, Buffer | string | number[]]>;
  requestedIp?: string;
  serverId?: string;
  prl?: number[];
}

export function request(spec: RequestSpec = {}): DhcpPacket {
  const options = new Map<number, Buffer>([[Opt.MESSAGE_TYPE, u8(spec.type ?? MsgType.DISCOVER)]]);
  if (spec.requestedIp) options.set(Opt.REQUESTED_IP, ipBytes(spec.requestedIp));
  if (spec.serverId) options.set(Opt.SERVER_ID, ipBytes(spec.serverId));
  if (spec.prl) options.set(Opt.PARAM_REQUEST_LIST, Buffer.from(spec.prl));
  for (const [code, v] of spec.options ?? []) options.set(code, typeof v === 'string' ? Buffer.from(v, 'latin1') : Buffer.from(v));
  return {
    op: BOOTREQUEST, htype: 1, hlen: 6, hops: 0, xid: spec.xid ?? 0x12345678, secs: 0, flags: spec.flags ?? 0,
    ciaddr: spec.ciaddr ?? '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: spec.giaddr ?? '0.0.0.0',
    chaddr: Buffer.from((spec.mac ?? '52:54:00:00:00:01').replace(/:/g, ''), 'hex'), sname: '', file: '', options,
  };
}
