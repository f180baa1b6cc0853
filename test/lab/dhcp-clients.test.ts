// Root: the DHCP server (memory backend) in one namespace, real dhclient, udhcpc and dhcpcd in another.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { run } from '../../src/lib/exec.js';
import { isAlive } from '../../src/lib/exec.js';
import { waitFor } from '../../src/lib/time.js';

const id = randomBytes(2).toString('hex');
const SRV_NS = `ycdh${id}s`;
const CLI_NS = `ycdh${id}c`;
const SRV_IF = `ycdh${id}-s`;
const CLI_IF = `ycdh${id}-c`;
const SERVER_IP = '10.77.0.1';
const TFTP_IP = '10.77.0.5';
const BOOT = '10.77.0.6:8081';
const mac = (n: number): string => `02:77:${id.slice(0, 2)}:${id.slice(2)}:00:${n.toString(16).padStart(2, '0')}`;
const RESERVED = [
  { mac: mac(1), ip: '10.77.0.11', hostname: 's1' },
  { mac: mac(2), ip: '10.77.0.12', hostname: 's2' },
];

type Env = Record<string, string>;

function readEnv(file: string): Env {
  const env: Env = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

test('real DHCP clients in a namespace: addresses, names, renewal, release, PXE and iPXE', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), `ycdh${id}-`));
  const children: ChildProcess[] = [];
  const resolvBefore = readFileSync('/etc/resolv.conf', 'utf8');
  const dhcpcdLeases = (): string[] => [`/var/lib/dhcpcd/${CLI_IF}.lease`, `/var/lib/dhcpcd/${CLI_IF}.lease6`];
  t.after(async () => {
    for (const c of children) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null && isAlive(c.pid)) c.kill('SIGKILL');
    for (const ns of [SRV_NS, CLI_NS]) await run('ip', ['netns', 'del', ns], { allowFailure: true });
    for (const f of dhcpcdLeases()) rmSync(f, { force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  /** A hook that records the environment of each event in DIR/TAG.EVENT, written atomically. */
  const hook = (tag: string, eventVar: string, prelude = ''): string => {
    const path = join(dir, `${tag}.sh`);
    const out = join(dir, tag);
    writeFileSync(path, `#!/bin/sh\n${prelude}\nenv | sort > "${out}.${eventVar}.tmp" && mv "${out}.${eventVar}.tmp" "${out}.${eventVar}"\n`, { mode: 0o755 });
    return path;
  };
  const event = (tag: string, ev: string): Promise<Env> =>
    waitFor(`${tag} ${ev}`, () => (existsSync(join(dir, `${tag}.${ev}`)) ? readEnv(join(dir, `${tag}.${ev}`)) : undefined), { timeoutMs: 15_000 });
  const inClient = (cmd: string, args: string[]): Promise<unknown> => run('ip', ['netns', 'exec', CLI_NS, cmd, ...args], { timeoutMs: 20_000 });
  const spawnClient = (cmd: string, args: string[]): ChildProcess => {
    const c = spawn('ip', ['netns', 'exec', CLI_NS, cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(c);
    return c;
  };
  const setMac = (m: string): Promise<unknown> => run('ip', ['-n', CLI_NS, 'link', 'set', 'dev', CLI_IF, 'address', m]);
  const udhcpc = (tag: string, extra: string[] = []): Promise<unknown> =>
    inClient('busybox', ['udhcpc', '-i', CLI_IF, '-f', '-q', '-n', '-t', '5', '-T', '2', '-s', hook(tag, '$1'), ...extra]);
  const stopChild = async (c: ChildProcess, signal: NodeJS.Signals): Promise<void> => {
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((resolve) => c.once('exit', resolve));
    c.kill(signal);
    await exited;
  };

  // Two namespaces joined by a veth pair; the server's address exists only inside its namespace.
  await run('ip', ['netns', 'add', SRV_NS]);
  await run('ip', ['netns', 'add', CLI_NS]);
  await run('ip', ['link', 'add', SRV_IF, 'netns', SRV_NS, 'type', 'veth', 'peer', 'name', CLI_IF, 'netns', CLI_NS]);
  await run('ip', ['-n', SRV_NS, 'addr', 'add', `${SERVER_IP}/24`, 'dev', SRV_IF]);
  for (const [ns, dev] of [[SRV_NS, SRV_IF], [CLI_NS, CLI_IF], [SRV_NS, 'lo'], [CLI_NS, 'lo']] as const) {
    await run('ip', ['-n', ns, 'link', 'set', 'dev', dev, 'up']);
  }

  const server = spawn('ip', [
    'netns', 'exec', SRV_NS, process.execPath, '--import', 'tsx', 'src/dhcp/run-memory-server.ts',
    '--server-ip', SERVER_IP, '--subnet', '10.77.0.0/24', '--range', '10.77.0.100-10.77.0.120', '--interface', SRV_IF,
    '--router', '10.77.0.254', '--dns', SERVER_IP, '--ntp', SERVER_IP, '--domain', 'lab.test', '--lease', '3600',
    '--tftp', TFTP_IP, '--boot-host', BOOT.split(':')[0]!, '--boot-port', BOOT.split(':')[1]!,
    ...RESERVED.flatMap((r) => ['--reserve', `${r.mac},${r.ip},${r.hostname},storage`]),
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(server);
  let serverLog = '';
  server.stderr.setEncoding('utf8').on('data', (d: string) => (serverLog = (serverLog + d).slice(-20_000)));
  const lines = createInterface({ input: server.stdout });
  const statsLine = new Promise<string>((resolve) => lines.on('line', (l) => l.startsWith('DHCP-STATS ') && resolve(l.slice(11))));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`DHCP server not ready in 15 s: ${serverLog}`)), 15_000);
    lines.on('line', (l) => {
      if (l.startsWith('DHCP-READY ')) {
        clearTimeout(timer);
        resolve();
      }
    });
    server.once('exit', (code) => reject(new Error(`DHCP server exited (${code}): ${serverLog}`)));
  });
  t.diagnostic(`namespaces ${SRV_NS} ${CLI_NS}`);

  await t.test('udhcpc: a known MAC gets its node address and host name, again on a second run', async () => {
    await setMac(RESERVED[0]!.mac);
    await udhcpc('u1');
    const env = await event('u1', 'bound');
    assert.equal(env.ip, RESERVED[0]!.ip);
    assert.equal(env.hostname, RESERVED[0]!.hostname);
    assert.equal(env.serverid, SERVER_IP);
    assert.equal(env.router, '10.77.0.254');
    assert.equal(env.dns, SERVER_IP);
    assert.equal(env.domain, 'lab.test');
    assert.equal(env.mask, '24');
    assert.equal(env.lease, '3600');
    assert.equal(env.boot_file, undefined, 'a plain client gets no boot file');
    await udhcpc('u1b', ['-r', '10.77.0.99']);
    assert.equal((await event('u1b', 'bound')).ip, RESERVED[0]!.ip, 'the requested address does not override the node address');
  });

  await t.test('dhclient: address, host name, and init-reboot from its lease file keeps the address', async () => {
    await setMac(RESERVED[1]!.mac);
    const conf = join(dir, 'dhclient.conf');
    writeFileSync(conf, 'send host-name "client-b";\nrequest subnet-mask, routers, domain-name-servers, host-name, domain-name, ntp-servers;\n');
    const args = (tag: string): string[] => ['-d', '-1', '-sf', hook(tag, '$reason'), '-lf', join(dir, 'dhclient.leases'), '-pf', join(dir, 'dhclient.pid'), '-cf', conf, CLI_IF];
    const first = spawnClient('dhclient', args('d1'));
    const bound = await event('d1', 'BOUND');
    assert.equal(bound.new_ip_address, RESERVED[1]!.ip);
    assert.equal(bound.new_host_name, RESERVED[1]!.hostname);
    assert.equal(bound.new_ntp_servers, SERVER_IP);
    assert.equal(bound.new_dhcp_server_identifier, SERVER_IP);
    await stopChild(first, 'SIGTERM');
    // With a lease on file dhclient starts in INIT-REBOOT: REQUEST without server id, answered with ACK.
    const second = spawnClient('dhclient', args('d2'));
    const reboot = await event('d2', 'REBOOT');
    assert.equal(reboot.new_ip_address, RESERVED[1]!.ip);
    await stopChild(second, 'SIGTERM');
  });

  let dynamicIp = '';
  await t.test('udhcpc: a new MAC gets an allocation; renewal (unicast) keeps it; release makes it reusable', async () => {
    await setMac(mac(0x10));
    // This client configures its address (in the client namespace) so it can renew and release by unicast.
    const prelude = 'case "$1" in bound|renew) ip addr replace "$ip/$mask" dev "$interface";; deconfig) ip addr flush dev "$interface";; esac';
    const c = spawnClient('busybox', ['udhcpc', '-i', CLI_IF, '-f', '-n', '-R', '-t', '5', '-T', '2', '-s', hook('r1', '$1', prelude)]);
    const bound = await event('r1', 'bound');
    dynamicIp = bound.ip!;
    assert.match(dynamicIp, /^10\.77\.0\.1[0-2]\d$/);
    assert.equal(bound.hostname, `dyn-${mac(0x10).replace(/:/g, '')}`);
    c.kill('SIGUSR1');
    assert.equal((await event('r1', 'renew')).ip, dynamicIp);
    await stopChild(c, 'SIGTERM'); // -R: release on exit
    await setMac(mac(0x11));
    await udhcpc('r2');
    const next = await event('r2', 'bound');
    assert.equal(next.ip, dynamicIp, 'the released address is the lowest free one again');
    assert.equal(next.hostname, `dyn-${mac(0x11).replace(/:/g, '')}`);
  });

  await t.test('dhcpcd: a new MAC gets an allocation and its host name', async () => {
    await setMac(mac(0x20));
    const conf = join(dir, 'dhcpcd.conf');
    writeFileSync(conf, 'clientid\nnoarp\nnogateway\nnohook resolv.conf\noption host_name, domain_name, domain_name_servers, ntp_servers\n');
    for (const f of dhcpcdLeases()) rmSync(f, { force: true });
    await inClient('dhcpcd', ['-f', conf, '-c', hook('c1', '$reason'), '-B', '-1', '-4', CLI_IF]);
    const env = await event('c1', 'BOUND');
    assert.match(env.new_ip_address!, /^10\.77\.0\.1[0-2]\d$/);
    assert.notEqual(env.new_ip_address, dynamicIp);
    assert.equal(env.new_host_name, `dyn-${mac(0x20).replace(/:/g, '')}`);
    assert.equal(env.new_domain_name, 'lab.test');
  });

  await t.test('PXE clients: BIOS gets undionly.kpxe, UEFI x64 gets ipxe.efi, both from the TFTP next server', async () => {
    await setMac(mac(0x30));
    await udhcpc('p1', ['-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000']);
    const bios = await event('p1', 'bound');
    assert.equal(bios.boot_file, 'undionly.kpxe');
    assert.equal(bios.siaddr, TFTP_IP);
    assert.equal(bios.tftp, TFTP_IP);
    await setMac(mac(0x31));
    await udhcpc('p2', ['-V', 'PXEClient', '-x', '0x5d:0007']);
    assert.equal((await event('p2', 'bound')).boot_file, 'ipxe.efi');
  });

  await t.test('iPXE clients (user class iPXE or option 175) get their boot script URL', async () => {
    await setMac(mac(0x40));
    await udhcpc('i1', ['-x', '0x4d:' + Buffer.from('iPXE').toString('hex'), '-x', '0x5d:0000']);
    const env = await event('i1', 'bound');
    assert.equal(env.boot_file, `http://${BOOT}/boot.ipxe?mac=${mac(0x40)}`);
    assert.equal(env.siaddr, TFTP_IP);
    await setMac(mac(0x41));
    await udhcpc('i2', ['-x', '0xaf:150101']);
    assert.equal((await event('i2', 'bound')).boot_file, `http://${BOOT}/boot.ipxe?mac=${mac(0x41)}`);
  });

  await stopChild(server, 'SIGTERM');
  const stats = JSON.parse(await statsLine) as Record<string, number>;
  t.diagnostic(`server stats ${JSON.stringify(stats)}`);
  assert.equal(stats.dropped, 0, `no request was dropped: ${JSON.stringify(stats)}\n${serverLog}`);
  assert.ok(stats.handled! >= 1, 'the RELEASE reached the server');
  assert.ok(stats.replied! >= 20);
  assert.equal(readFileSync('/etc/resolv.conf', 'utf8'), resolvBefore, 'the host resolv.conf is untouched');
});
