import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, DhcpDecodeError, encode } from './codec.js';
import { createDhcpHandler, type DhcpHandler, type DhcpOutcome } from './handler.js';
import { DhcpStats, processDatagram } from './intake.js';
import { MemoryDhcpBackend } from './memory-backend.js';
import { MsgType, Opt } from './options.js';
import { request } from './testing.js';
import { prng } from '../lib/prng.js';

const PACKETS = 100_000;
const WALL_CLOCK_MS = 20_000;


const rand = prng(0x5eed1);
const int = (n: number): number => Math.floor(rand() * n);
function bytes(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
}
const macs = ['52:54:00:00:00:01', '52:54:00:00:00:02', '52:54:00:00:00:03', '02:00:00:00:00:09'];

const seeds: Buffer[] = [
  request({ mac: macs[0], prl: [1, 3, 6, 12, 15, 42, 58, 59, 66, 67] }),
  request({ type: MsgType.REQUEST, mac: macs[0], serverId: '10.0.0.2', requestedIp: '10.0.0.11' }),
  request({ type: MsgType.REQUEST, mac: macs[1], requestedIp: '10.0.0.100' }),
  request({ type: MsgType.REQUEST, mac: macs[1], ciaddr: '10.0.0.100' }),
  request({ type: MsgType.RELEASE, mac: macs[1], ciaddr: '10.0.0.100', serverId: '10.0.0.2' }),
  request({ type: MsgType.DECLINE, mac: macs[2], requestedIp: '10.0.0.101' }),
  request({ type: MsgType.INFORM, mac: macs[2], ciaddr: '10.0.0.40', prl: [1, 3, 6] }),
  request({ mac: macs[3], giaddr: '10.0.0.1', options: [[Opt.VENDOR_CLASS, 'PXEClient:Arch:00000'], [Opt.CLIENT_ARCH, [0, 0]]] }),
  request({ mac: macs[3], options: [[Opt.USER_CLASS, 'iPXE'], [Opt.IPXE, [1, 1, 1]], [Opt.CLIENT_ARCH, [0, 7]]] }),
].map((p) => encode(p));

function optionSoup(): Buffer {
  const parts: Buffer[] = [seeds[int(seeds.length)]!.subarray(0, 240)];
  const count = int(12);
  for (let i = 0; i < count; i++) {
    const code = rand() < 0.3 ? [53, 50, 54, 55, 61, 77, 93, 52, 175][int(9)]! : int(256);
    const len = int(20);
    const lie = rand() < 0.1 ? int(256) : len;
    parts.push(Buffer.from([code, lie]), code === 53 && rand() < 0.7 ? Buffer.from([1 + int(9)]) : bytes(len));
  }
  if (rand() < 0.7) parts.push(Buffer.from([255]));
  return Buffer.concat(parts);
}

/** One malformed (or sometimes accidentally valid) datagram. */
function mutant(): Buffer {
  const seed = seeds[int(seeds.length)]!;
  switch (int(6)) {
    case 0: {
      const b = Buffer.from(seed);
      const flips = 1 + int(16);
      // Bias flips towards the options so many mutants get past the header checks.
      for (let i = 0; i < flips; i++) {
        const at = rand() < 0.7 ? 240 + int(b.length - 240) : int(b.length);
        b[at]! ^= 1 << int(8);
      }
      return b;
    }
    case 1:
      return seed.subarray(0, int(seed.length));
    case 2:
      return Buffer.concat([seed, bytes(1 + int(1700))]);
    case 3:
      return optionSoup();
    case 4:
      return bytes(int(1600));
    default: {
      const b = Buffer.from(seed);
      b.set(bytes(4), int(236)); // header fields: addresses, hlen, op, flags
      return b;
    }
  }
}

test(`fuzz: ${PACKETS} malformed packets through decode and the handler`, async () => {
  const backend = new MemoryDhcpBackend({
    rangeStart: '10.0.0.100', rangeEnd: '10.0.0.120',
    reservations: [{ mac: macs[0]!, ip: '10.0.0.11', hostname: 's1', nodeType: 'storage' }],
  });
  const inner = createDhcpHandler({
    serverIp: '10.0.0.2', subnet: '10.0.0.0/24', router: '10.0.0.254', dnsServers: ['10.0.0.2'], ntpServers: ['10.0.0.2'],
    domainName: 'lab', leaseSeconds: 600, boot: { tftpServer: '10.0.0.2', bootHost: '10.0.0.2', bootPort: 8080 },
  }, backend);
  const escaped: unknown[] = [];
  let handlerCalls = 0;
  let handlerDrops = 0;
  const handler: DhcpHandler = async (p) => {
    handlerCalls++;
    let o: DhcpOutcome;
    try {
      o = await inner(p);
    } catch (err) {
      escaped.push(err);
      throw err;
    }
    if (o.kind === 'drop') handlerDrops++;
    return o;
  };
  const stats = new DhcpStats();
  let sent = 0;
  const started = Date.now();
  let n = 0;
  for (; n < PACKETS && Date.now() - started < WALL_CLOCK_MS; n++) {
    const buf = mutant();
    // processDatagram maps anything but DhcpDecodeError to 'internal-error'; a sample is also checked directly.
    if (n % 16 === 0) {
      try {
        decode(buf);
      } catch (err) {
        if (!(err instanceof DhcpDecodeError)) escaped.push(err);
      }
    }
    const r = await processDatagram(buf, handler, stats);
    if (r.kind === 'send') {
      sent++;
      assert.ok(r.bytes.length >= 300 && r.bytes.length <= 1500);
    }
  }
  // Only packets that failed to decode never reach the handler.
  const decodeRejects = stats.received - handlerCalls;
  if (process.env.DHCP_FUZZ_VERBOSE) console.log(stats.snapshot());
  assert.deepEqual(escaped, [], 'only DhcpDecodeError may escape decode; nothing may escape the handler');
  assert.equal(n, PACKETS, `only ${n} packets in ${WALL_CLOCK_MS} ms`);
  assert.equal(stats.received, PACKETS);
  assert.equal(stats.dropped, decodeRejects + handlerDrops, 'every rejected packet is counted once');
  assert.equal(stats.dropsByReason.get('internal-error') ?? 0, 0, 'no error but DhcpDecodeError escapes decode, and every reply encodes');
  assert.equal(stats.replied, sent);
  assert.equal(stats.dropped + stats.replied + stats.handled, PACKETS);
  // The mutants must exercise both the decoder's and the handler's paths, not just one reason.
  assert.ok(decodeRejects > PACKETS / 4, `decode rejects: ${decodeRejects}`);
  assert.ok(sent > 100, `replies: ${sent}`);
  assert.ok(stats.dropsByReason.size >= 8, `drop reasons: ${[...stats.dropsByReason.keys()].join(', ')}`);
});
