import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DhcpPacket } from './codec.js';
import { createDhcpHandler, type DhcpHandlerConfig, type DhcpOutcome } from './handler.js';
import { MemoryDhcpBackend } from './memory-backend.js';
import { getIp, getIps, getString, getU32, messageType, MsgType, Opt } from './options.js';
import { request, type RequestSpec } from './testing.js';

const cfg: DhcpHandlerConfig = {
  serverIp: '10.0.0.2',
  subnet: '10.0.0.0/24',
  router: '10.0.0.254',
  dnsServers: ['10.0.0.2', '10.0.0.3'],
  ntpServers: ['10.0.0.4'],
  domainName: 'cluster.lan',
  leaseSeconds: 1000,
  boot: { tftpServer: '10.0.0.5', bootHost: '10.0.0.6', bootPort: 8080 },
};
const KNOWN = '52:54:00:aa:00:01';
const NEW = '52:54:00:bb:00:01';

function setup(): { handle: (s: RequestSpec) => Promise<DhcpOutcome>; backend: MemoryDhcpBackend } {
  const backend = new MemoryDhcpBackend({
    rangeStart: '10.0.0.100', rangeEnd: '10.0.0.102', leaseSeconds: 1000,
    reservations: [{ mac: KNOWN, ip: '10.0.0.11', hostname: 's1', nodeType: 'storage' }],
  });
  const h = createDhcpHandler(cfg, backend);
  return { handle: (s) => h(request(s)), backend };
}

function replyOf(o: DhcpOutcome): { reply: DhcpPacket; to: { address: string; port: number } } {
  assert.equal(o.kind, 'reply', JSON.stringify(o));
  if (o.kind !== 'reply') throw new Error('unreachable');
  return o;
}

function dropOf(o: DhcpOutcome): string {
  assert.equal(o.kind, 'drop', JSON.stringify(o));
  return o.kind === 'drop' ? o.reason : '';
}

test('DISCOVER from a known MAC offers its node address, broadcast, with mandatory options only', async () => {
  const { handle } = setup();
  const { reply, to } = replyOf(await handle({ mac: KNOWN }));
  assert.equal(messageType(reply.options), MsgType.OFFER);
  assert.equal(reply.yiaddr, '10.0.0.11');
  assert.equal(reply.xid, 0x12345678);
  assert.deepEqual(to, { address: '255.255.255.255', port: 68 });
  assert.deepEqual([...reply.options.keys()], [Opt.MESSAGE_TYPE, Opt.SERVER_ID, Opt.LEASE_TIME, Opt.SUBNET_MASK]);
  assert.equal(getIp(reply.options, Opt.SERVER_ID), '10.0.0.2');
  assert.equal(getIp(reply.options, Opt.SUBNET_MASK), '255.255.255.0');
  assert.equal(getU32(reply.options, Opt.LEASE_TIME), 1000);
  assert.equal(reply.siaddr, '0.0.0.0');
  assert.equal(reply.file, '');
});

test('the parameter request list selects options, in the client order', async () => {
  const { handle } = setup();
  const { reply } = replyOf(await handle({ mac: KNOWN, prl: [42, 12, 3, 6, 15, 59, 58, 99, 1] }));
  assert.deepEqual([...reply.options.keys()], [53, 54, 51, 1, 42, 12, 3, 6, 15, 59, 58]);
  assert.equal(getString(reply.options, Opt.HOST_NAME), 's1');
  assert.equal(getIp(reply.options, Opt.ROUTER), '10.0.0.254');
  assert.deepEqual(getIps(reply.options, Opt.DNS_SERVERS), ['10.0.0.2', '10.0.0.3']);
  assert.deepEqual(getIps(reply.options, Opt.NTP_SERVERS), ['10.0.0.4']);
  assert.equal(getString(reply.options, Opt.DOMAIN_NAME), 'cluster.lan');
  assert.equal(getU32(reply.options, Opt.T1), 500);
  assert.equal(getU32(reply.options, Opt.T2), 875);
});

test('DISCOVER from an unknown MAC gets an allocation; a second DISCOVER gets the same address', async () => {
  const { handle } = setup();
  const a = replyOf(await handle({ mac: NEW, prl: [12] })).reply;
  assert.equal(a.yiaddr, '10.0.0.100');
  assert.equal(getString(a.options, Opt.HOST_NAME), 'dyn-525400bb0001');
  const b = replyOf(await handle({ mac: NEW })).reply;
  assert.equal(b.yiaddr, '10.0.0.100');
  const other = replyOf(await handle({ mac: '52:54:00:bb:00:02', requestedIp: '10.0.0.100' })).reply;
  assert.equal(other.yiaddr, '10.0.0.101', 'an address held for another client is not offered');
});

test('range exhausted: DISCOVER is dropped with a backend reason', async () => {
  const { handle } = setup();
  for (let i = 0; i < 3; i++) replyOf(await handle({ mac: `52:54:00:cc:00:0${i}` }));
  assert.equal(dropOf(await handle({ mac: '52:54:00:cc:00:09' })), 'backend-error');
});

test('REQUEST selecting: our server id → ACK; another server id → ignored; wrong address → NAK', async () => {
  const { handle, backend } = setup();
  const offer = replyOf(await handle({ mac: NEW })).reply;
  assert.equal(dropOf(await handle({ type: MsgType.REQUEST, mac: NEW, serverId: '10.0.0.9', requestedIp: offer.yiaddr })), 'other-server');
  const { reply, to } = replyOf(await handle({ type: MsgType.REQUEST, mac: NEW, serverId: cfg.serverIp, requestedIp: offer.yiaddr, prl: [12] }));
  assert.equal(messageType(reply.options), MsgType.ACK);
  assert.equal(reply.yiaddr, offer.yiaddr);
  assert.deepEqual(to, { address: '255.255.255.255', port: 68 });
  assert.deepEqual(backend.activeLeases(), [{ mac: NEW, ip: offer.yiaddr }]);
  const nak = replyOf(await handle({ type: MsgType.REQUEST, mac: KNOWN, serverId: cfg.serverIp, requestedIp: '10.0.0.101' }));
  assert.equal(messageType(nak.reply.options), MsgType.NAK);
  assert.equal(nak.reply.yiaddr, '0.0.0.0');
  assert.deepEqual([...nak.reply.options.keys()], [Opt.MESSAGE_TYPE, Opt.SERVER_ID, Opt.MESSAGE]);
  assert.equal(dropOf(await handle({ type: MsgType.REQUEST, mac: NEW, serverId: cfg.serverIp })), 'no-requested-ip');
});

test('REQUEST init-reboot: matching binding → ACK, other address → NAK, no record → silent', async () => {
  const { handle } = setup();
  const ack = replyOf(await handle({ type: MsgType.REQUEST, mac: KNOWN, requestedIp: '10.0.0.11' })).reply;
  assert.equal(messageType(ack.options), MsgType.ACK);
  assert.equal(ack.yiaddr, '10.0.0.11');
  const nak = replyOf(await handle({ type: MsgType.REQUEST, mac: KNOWN, requestedIp: '10.0.0.12' }));
  assert.equal(messageType(nak.reply.options), MsgType.NAK);
  assert.deepEqual(nak.to, { address: '255.255.255.255', port: 68 });
  const wrongNet = replyOf(await handle({ type: MsgType.REQUEST, mac: NEW, requestedIp: '192.168.1.5' })).reply;
  assert.equal(messageType(wrongNet.options), MsgType.NAK);
  assert.equal(dropOf(await handle({ type: MsgType.REQUEST, mac: NEW, requestedIp: '10.0.0.100' })), 'init-reboot-unknown');
  assert.equal(dropOf(await handle({ type: MsgType.REQUEST, mac: NEW })), 'bad-request-state');
});

test('REQUEST renewing/rebinding: ciaddr is used, reply unicast to ciaddr; a foreign address is NAKed', async () => {
  const { handle } = setup();
  const { reply, to } = replyOf(await handle({ type: MsgType.REQUEST, mac: KNOWN, ciaddr: '10.0.0.11' }));
  assert.equal(messageType(reply.options), MsgType.ACK);
  assert.equal(reply.ciaddr, '10.0.0.11');
  assert.equal(reply.yiaddr, '10.0.0.11');
  assert.deepEqual(to, { address: '10.0.0.11', port: 68 });
  const nak = replyOf(await handle({ type: MsgType.REQUEST, mac: NEW, ciaddr: '10.0.0.11' }));
  assert.equal(messageType(nak.reply.options), MsgType.NAK);
  assert.deepEqual(nak.to, { address: '255.255.255.255', port: 68 }, 'a NAK is broadcast');
});

test('RELEASE frees a dynamic lease for reuse; DECLINE keeps the address out of allocation', async () => {
  const { handle, backend } = setup();
  const ip = replyOf(await handle({ mac: NEW })).reply.yiaddr;
  replyOf(await handle({ type: MsgType.REQUEST, mac: NEW, serverId: cfg.serverIp, requestedIp: ip }));
  assert.equal(dropOf(await handle({ type: MsgType.RELEASE, mac: NEW })), 'release-without-ciaddr');
  assert.equal((await handle({ type: MsgType.RELEASE, mac: NEW, ciaddr: ip, serverId: cfg.serverIp })).kind, 'done');
  assert.deepEqual(backend.activeLeases(), []);
  assert.equal(replyOf(await handle({ mac: '52:54:00:dd:00:01' })).reply.yiaddr, ip, 'released address is reused');
  assert.equal((await handle({ type: MsgType.DECLINE, mac: '52:54:00:dd:00:01', requestedIp: ip, serverId: cfg.serverIp })).kind, 'done');
  assert.equal(dropOf(await handle({ type: MsgType.DECLINE, mac: NEW })), 'no-requested-ip');
  assert.notEqual(replyOf(await handle({ mac: '52:54:00:dd:00:02' })).reply.yiaddr, ip, 'declined address is not offered');
});

test('INFORM: ACK with requested options, no lease and no yiaddr, unicast to ciaddr', async () => {
  const { handle } = setup();
  const { reply, to } = replyOf(await handle({ type: MsgType.INFORM, mac: NEW, ciaddr: '10.0.0.50', prl: [3, 6, 51, 58] }));
  assert.equal(messageType(reply.options), MsgType.ACK);
  assert.equal(reply.yiaddr, '0.0.0.0');
  assert.deepEqual([...reply.options.keys()], [53, 54, 1, 3, 6]);
  assert.deepEqual(to, { address: '10.0.0.50', port: 68 });
  assert.equal(dropOf(await handle({ type: MsgType.INFORM, mac: NEW })), 'inform-without-ciaddr');
});

test('relayed requests are answered to giaddr:67; relays outside the subnet are ignored', async () => {
  const { handle } = setup();
  const { reply, to } = replyOf(await handle({ mac: KNOWN, giaddr: '10.0.0.1' }));
  assert.deepEqual(to, { address: '10.0.0.1', port: 67 });
  assert.equal(reply.giaddr, '10.0.0.1');
  const nak = replyOf(await handle({ type: MsgType.REQUEST, mac: KNOWN, requestedIp: '10.0.0.12', giaddr: '10.0.0.1' }));
  assert.deepEqual(nak.to, { address: '10.0.0.1', port: 67 });
  assert.equal(nak.reply.flags & 0x8000, 0x8000);
  assert.equal(dropOf(await handle({ mac: KNOWN, giaddr: '10.9.0.1' })), 'foreign-relay');
});

test('PXE BIOS client gets undionly.kpxe and the next server, even without requesting 66/67', async () => {
  const { handle } = setup();
  const { reply } = replyOf(await handle({ mac: KNOWN, options: [[Opt.VENDOR_CLASS, 'PXEClient:Arch:00000:UNDI:002001'], [Opt.CLIENT_ARCH, [0, 0]]], prl: [1, 3] }));
  assert.equal(reply.file, 'undionly.kpxe');
  assert.equal(reply.siaddr, '10.0.0.5');
  assert.equal(getString(reply.options, Opt.BOOTFILE), 'undionly.kpxe');
  assert.equal(getString(reply.options, Opt.TFTP_SERVER), '10.0.0.5');
});

test('PXE UEFI x64 clients (arch 7 and 9) get ipxe.efi; unsupported arch gets no boot file', async () => {
  const { handle } = setup();
  for (const arch of [7, 9]) {
    const { reply } = replyOf(await handle({ mac: KNOWN, options: [[Opt.CLIENT_ARCH, [0, arch]]] }));
    assert.equal(reply.file, 'ipxe.efi');
  }
  const { reply } = replyOf(await handle({ mac: KNOWN, options: [[Opt.CLIENT_ARCH, [0, 11]]] }));
  assert.equal(reply.file, '');
  assert.equal(reply.options.has(Opt.BOOTFILE), false);
});

test('iPXE clients (user class or option 175) get their boot script URL', async () => {
  const { handle } = setup();
  const url = `http://10.0.0.6:8080/boot.ipxe?mac=${KNOWN}`;
  const byClass = replyOf(await handle({ mac: KNOWN, options: [[Opt.USER_CLASS, 'iPXE'], [Opt.CLIENT_ARCH, [0, 0]]] })).reply;
  assert.equal(byClass.file, url);
  assert.equal(getString(byClass.options, Opt.BOOTFILE), url);
  const byOpt = replyOf(await handle({ type: MsgType.REQUEST, mac: KNOWN, serverId: cfg.serverIp, requestedIp: '10.0.0.11', options: [[Opt.IPXE, [1, 1, 1]]] })).reply;
  assert.equal(byOpt.file, url);
  assert.equal(byOpt.siaddr, '10.0.0.5');
});

test('non-requests, other hardware, missing or unknown type, and malformed options are dropped with reasons', async () => {
  const { handle } = setup();
  const h = createDhcpHandler(cfg, new MemoryDhcpBackend({ rangeStart: '10.0.0.100', rangeEnd: '10.0.0.100' }));
  const reply = request();
  reply.op = 2;
  assert.equal(dropOf(await h(reply)), 'not-request');
  const ib = request();
  ib.htype = 32;
  assert.equal(dropOf(await h(ib)), 'unsupported-hardware');
  const bootp = request();
  bootp.options.clear();
  assert.equal(dropOf(await h(bootp)), 'no-message-type');
  assert.equal(dropOf(await handle({ type: MsgType.OFFER })), 'unexpected-message-type');
  assert.equal(dropOf(await handle({ type: 200 })), 'unexpected-message-type');
  assert.equal(dropOf(await handle({ options: [[Opt.REQUESTED_IP, [1, 2, 3]]] })), 'bad-option-50');
  assert.equal(dropOf(await handle({ options: [[Opt.CLIENT_ARCH, [1]]] })), 'bad-option-93');
  assert.equal(dropOf(await handle({ options: [[Opt.MESSAGE_TYPE, [1, 1]]] })), 'bad-option-53');
});

test('empty text options (host name, vendor class) are treated as absent, not as malformed', async () => {
  const { handle } = setup();
  const { reply } = replyOf(await handle({ mac: KNOWN, options: [[Opt.HOST_NAME, ''], [Opt.VENDOR_CLASS, [0]]] }));
  assert.equal(reply.yiaddr, '10.0.0.11');
});
