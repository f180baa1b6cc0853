// Root. Real firmware against the lab's own DHCP, TFTP and boot HTTP: QEMU VMs (SeaBIOS + QEMU's iPXE ROM, or
// OVMF with EDK2's own PXE; TCG, no disk) network-boot on the lab switch. Proven from both ends: the VM's serial console and what our
// servers recorded (etcd leases and nodes, the agents' boot-request log lines, the installer server's log).
// The "installer kernel" is Debian's ipxe.lkrn, a real bzImage, so the last step is a kernel actually booting
// with the command line ycluster rendered. The join that follows an install is done from the user-data by hand
// (`ycluster join`, as the agent does at first start) against the admin API on the gateway VIP.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, run } from '../../src/lib/exec.js';
import { waitFor } from '../../src/lib/time.js';
import { addNode, execInNode, spawnInNode } from '../../src/lab/netns.js';
import { labDir } from '../../src/lab/registry.js';
import { labStatus, MAIN, uniqueLabName, waitForLeader, ycluster } from '../helpers/lab.js';
import { expectInOrder, qemuMissing, startPxeVm, type PxeVm } from '../helpers/qemu.js';

const missing = qemuMissing();
const name = uniqueLabName('ycf');
const WEB_IP = '10.0.0.240';
const BASE = `http://${WEB_IP}`;
const KERNEL = '/usr/lib/ipxe/ipxe.lkrn';
const MAC_UNKNOWN = '02:fb:00:00:00:01';
const MAC_STORAGE = '02:fb:00:00:00:02';
const MAC_UEFI = '02:fb:00:00:00:03';
/** From power-on to the downloaded kernel running: about 15 s here when the machine is idle. */
const BOOT_TIMEOUT_MS = 90_000;
const dir = mkdtempSync(join(tmpdir(), `${name}-fw-`));
const vms: PxeVm[] = [];
let webPid: number | undefined;
let labUp = false;

/** The operator's installer server: files from one directory, one log line per request (method, path, client, status). */
const WEB_SERVER = `
const http = require('node:http'); const fs = require('node:fs'); const path = require('node:path');
const [root, host] = process.argv.slice(1);
http.createServer((req, res) => {
  const file = path.join(root, path.basename(new URL(req.url, 'http://x').pathname));
  const ok = req.method === 'GET' && fs.existsSync(file);
  console.log(JSON.stringify({ method: req.method, path: req.url, client: req.socket.remoteAddress, status: ok ? 200 : 404 }));
  if (!ok) { res.writeHead(404); res.end(); return; }
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  fs.createReadStream(file).pipe(res);
}).listen(80, host, () => console.log('LISTENING'));
`;

interface WebHit { method: string; path: string; client: string; status: number }
const webLog = join(dir, 'web.log');
const webHits = (): WebHit[] =>
  existsSync(webLog) ? readFileSync(webLog, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as WebHit) : [];

/** The agents' log lines with this message and client address, from every core node. */
function agentLog(msg: string, client: string): { node: string; [k: string]: unknown }[] {
  const nodes = join(labDir(name), 'nodes');
  const out: { node: string; [k: string]: unknown }[] = [];
  for (const node of readdirSync(nodes)) {
    const log = join(nodes, node, 'agent.log');
    if (!existsSync(log)) continue;
    for (const line of readFileSync(log, 'utf8').split('\n')) {
      if (!line.includes(`"${msg}"`) || !line.includes(client)) continue;
      const j = JSON.parse(line) as Record<string, unknown>;
      if (j.msg === msg && j.client === client) out.push({ ...j, node });
    }
  }
  return out;
}

/** The agents' "boot request" log lines (src/provision/boot-http.ts) for this MAC, from every core node. */
function bootRequests(mac: string): { node: string; path: string; status: number; client: string }[] {
  const nodes = join(labDir(name), 'nodes');
  const out: { node: string; path: string; status: number; client: string }[] = [];
  for (const node of readdirSync(nodes)) {
    const log = join(nodes, node, 'agent.log');
    if (!existsSync(log)) continue;
    for (const line of readFileSync(log, 'utf8').split('\n')) {
      if (!line.includes('"boot request"') || !line.includes(mac)) continue;
      const j = JSON.parse(line) as { path: string; status: number; client: string; mac?: string };
      if (j.mac === mac) out.push({ node, path: j.path, status: j.status, client: j.client });
    }
  }
  return out;
}

const yc = (...args: string[]): ReturnType<typeof ycluster> => ycluster(['lab', 'exec', name, 's1', '--', 'ycluster', ...args], 30_000);
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Boots a VM and waits for the installer kernel it downloaded to run; returns its serial console. */
async function bootToKernel(node: string, mac: string): Promise<{ vm: PxeVm; console: string; seconds: number }> {
  const t0 = Date.now();
  const vm = await startPxeVm(name, node, mac, join(dir, `${node}.serial`));
  vms.push(vm);
  // ipxe.lkrn runs its command line as an iPXE script: "autoinstall" is the first word ycluster put there.
  await vm.waitSerial(/initrd\.\.\. ok[\s\S]*iPXE initialising devices[\s\S]*autoinstall: command not found/, BOOT_TIMEOUT_MS);
  const seconds = (Date.now() - t0) / 1000;
  await vm.kill();
  return { vm, console: vm.serial(), seconds };
}

describe('real firmware (SeaBIOS + iPXE ROM, OVMF) in QEMU network-boots from the lab', { skip: missing ? `skipped: ${missing}` : false }, () => {
  before(async () => {
    const up = await ycluster(['lab', 'up', '--name', name, '--storage', '0', '--compute', '0'], 180_000);
    labUp = true;
    assert.equal(up.code, 0, `lab up failed:\n${up.stderr}\n${up.stdout}`);
    const www = join(dir, 'www');
    mkdirSync(www);
    copyFileSync(KERNEL, join(www, 'vmlinuz'));
    writeFileSync(join(www, 'initrd'), 'ycluster firmware test initrd\n');
    await addNode(name, 'web', WEB_IP, 24);
    const web = spawnInNode(name, 'web', process.execPath, ['-e', WEB_SERVER, www, WEB_IP], { logFile: webLog, what: 'web' });
    web.unref();
    webPid = web.pid;
    await waitFor('installer web server', () => (readFileSync(webLog, 'utf8').includes('LISTENING') ? true : undefined), { timeoutMs: 10_000 });
    const conf = await yc('boot', 'configure', '--kernel', `${BASE}/vmlinuz`, '--initrd', `${BASE}/initrd`, '--iso', `${BASE}/ubuntu.iso`, '--ssh-key', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIfw op@lab');
    assert.equal(conf.code, 0, conf.stderr);
  });

  after(async () => {
    for (const vm of vms) await vm.kill();
    if (webPid !== undefined && isAlive(webPid)) process.kill(webPid, 'SIGKILL');
    const down = labUp ? await ycluster(['lab', 'down', name]) : undefined;
    rmSync(dir, { recursive: true, force: true });
    if (down) assert.equal(down.code, 0, down.stderr);
    const ns = (await run('ip', ['netns', 'list'])).stdout;
    assert.ok(!ns.split('\n').some((l) => l.startsWith(`${name}-`)), `namespaces left: ${ns}`);
  });

  test('an unknown machine: DHCP → boot.ipxe (registers it) → installer kernel and initrd over HTTP → the kernel runs', async () => {
    const leader = await waitForLeader(name, 'dhcp', undefined);
    const leaderIp = (await labStatus(name)).nodes.find((n) => n.hostname === leader)!.ip;
    const { console: out, seconds } = await bootToKernel('vm1', MAC_UNKNOWN);
    console.log(`# power-on → installer kernel running: ${seconds.toFixed(1)} s`);

    // Server side: the MAC was allocated a node and given a lease by ycluster's DHCP.
    const nodes = JSON.parse((await yc('node', 'list', '--json')).stdout) as { mac: string; hostname: string; ip: string; type: string }[];
    const node = nodes.find((n) => n.mac === MAC_UNKNOWN);
    assert.ok(node, `the VM's MAC is a node now: ${JSON.stringify(nodes)}`);
    assert.equal(node.type, 'compute');
    const leases = JSON.parse((await yc('dhcp', 'leases', '--json')).stdout) as { mac: string; ip: string }[];
    assert.ok(leases.some((l) => l.mac === MAC_UNKNOWN && l.ip === node.ip), `lease of ${MAC_UNKNOWN}: ${JSON.stringify(leases)}`);
    const allocs = (await yc('dhcp', 'allocations')).stdout;
    assert.match(allocs, new RegExp(`^${node.hostname} +compute +${esc(node.ip)} +${MAC_UNKNOWN}`, 'm'));

    // The firmware's side, in order: its DHCP (the ROM is iPXE, so the answer is the boot script URL
    // straight away), the script, the downloads, the kernel.
    const steps = [
      `Configuring (net0 ${MAC_UNKNOWN})`,
      `net0: ${node.ip}/255.255.255.0 gw 10.0.0.254`,
      `Next server: ${leaderIp}`,
      `Filename: http://${leaderIp}:8081/boot.ipxe?mac=${MAC_UNKNOWN}`,
      `http://${leaderIp}:8081/boot.ipxe... ok`,
      `ycluster: installing Ubuntu on ${node.hostname} (compute, ${MAC_UNKNOWN})`,
      `${BASE}/vmlinuz... ok`,
      `${BASE}/initrd... ok`,
      'iPXE initialising devices',
    ];
    const at = expectInOrder(out, steps);
    // The booted kernel got ycluster's command line (ipxe.lkrn runs it as a script and names its first word).
    assert.match(out.slice(at), /autoinstall: command not found/);

    // boot HTTP saw the VM ask for its script from the address DHCP gave it; the installer server saw the downloads.
    const reqs = bootRequests(MAC_UNKNOWN);
    assert.ok(reqs.some((r) => r.path === '/boot.ipxe' && r.status === 200 && r.client === node.ip), `boot requests: ${JSON.stringify(reqs)}`);
    const hits = webHits().filter((h) => h.client === node.ip);
    assert.deepEqual(hits.map((h) => `${h.method} ${h.path} ${h.status}`), ['GET /vmlinuz 200', 'GET /initrd 200']);
  });

  test('a machine registered as storage boots its install under its own name and address, joins once with the token from its user-data, then boots from disk', async () => {
    const added = await yc('node', 'add', MAC_STORAGE, '--type', 'storage', '--json');
    assert.equal(added.code, 0, added.stderr);
    const node = JSON.parse(added.stdout) as { hostname: string; ip: string };
    assert.equal((await yc('boot', 'reinstall', MAC_STORAGE)).code, 0);
    const { console: out, seconds } = await bootToKernel('vm2', MAC_STORAGE);
    console.log(`# power-on → installer kernel running: ${seconds.toFixed(1)} s`);
    assert.ok(out.includes(`net0: ${node.ip}/255.255.255.0`), `iPXE was given ${node.ip}:\n${out}`);
    assert.ok(out.includes(`ycluster: installing Ubuntu on ${node.hostname} (storage, ${MAC_STORAGE})`), out);
    const reqs = bootRequests(MAC_STORAGE);
    assert.ok(reqs.some((r) => r.path === '/boot.ipxe' && r.status === 200 && r.client === node.ip), `boot requests: ${JSON.stringify(reqs)}`);
    assert.deepEqual(webHits().filter((h) => h.client === node.ip).map((h) => h.path), ['/vmlinuz', '/initrd']);

    // The installer's part, done by hand from another lab machine: fetch the user-data, take the agent's bootstrap
    // config from it and join as the agent's first start would (over the lab network, admin API on the VIP).
    const seed = `http://10.0.0.11:8081/autoinstall/${MAC_STORAGE.replace(/:/g, '-')}/`;
    const userData = (await execInNode(name, 'web', 'curl', ['-sf', `${seed}user-data`], { timeoutMs: 10_000 })).stdout;
    const bootstrap = /'(\{"serverUrl".*\})'/.exec(userData)?.[1];
    assert.ok(bootstrap, `agent bootstrap config in the user-data:\n${userData}`);
    const cfgPath = join(dir, 'agent.json');
    writeFileSync(cfgPath, bootstrap, { mode: 0o600 });
    const joinCli = (): ReturnType<typeof execInNode> => execInNode(name, 'web', process.execPath, [MAIN, 'join', '--config', cfgPath, '--json'], { timeoutMs: 30_000, allowFailure: true });
    const joined = await joinCli();
    assert.equal(joined.code, 0, joined.stderr);
    const grant = (JSON.parse(joined.stdout) as { grant: { hostname: string; ip: string; etcdEndpoints: string[] } }).grant;
    assert.deepEqual([grant.hostname, grant.ip, grant.etcdEndpoints], [node.hostname, node.ip, ['10.0.0.11:2379', '10.0.0.12:2379', '10.0.0.13:2379']]);
    writeFileSync(cfgPath, bootstrap, { mode: 0o600 });
    const reused = await joinCli();
    assert.notEqual(reused.code, 0);
    assert.match(reused.stderr, /join refused .*403.*used already/);

    // Joined means installed: the same firmware is now told to boot from its disk (this VM has none).
    const vm = await startPxeVm(name, 'vm3', MAC_STORAGE, join(dir, 'vm3.serial'));
    vms.push(vm);
    await vm.waitSerial(new RegExp(`ycluster: ${node.hostname} is installed, booting from the local disk`), BOOT_TIMEOUT_MS);
    await vm.kill();
  });

  test('UEFI (OVMF, EDK2\'s own PXE): DHCP arch 7 → TFTP ipxe.efi → iPXE asks again as iPXE → boot.ipxe → installer kernel downloaded', { skip: qemuMissing('uefi') ?? false }, async () => {
    const t0 = Date.now();
    const vm = await startPxeVm(name, 'vm4', MAC_UEFI, join(dir, 'vm4.serial'), 'uefi');
    vms.push(vm);
    // ipxe.lkrn has no EFI stub, so iPXE EFI refuses it once downloaded ("Exec format error") and the script
    // takes its retry path: that is as far as this kernel goes under UEFI.
    await vm.waitSerial(/vmlinuz\.\.\. ok[\s\S]*download or boot failed/, 120_000);
    console.log(`# UEFI power-on → installer kernel downloaded: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await vm.kill();
    const out = vm.serial();
    const node = (JSON.parse((await yc('node', 'list', '--json')).stdout) as { mac: string; hostname: string; ip: string }[]).find((n) => n.mac === MAC_UEFI);
    assert.ok(node, 'the UEFI machine was registered');
    const steps = [
      'Start PXE over IPv4',
      `Station IP address is ${node.ip}`,
      'NBP filename is ipxe.efi',
      'NBP file downloaded successfully',
      `Configuring (net0 ${MAC_UEFI})`,
      `Filename: http://`,
      `ycluster: installing Ubuntu on ${node.hostname} (compute, ${MAC_UEFI})`,
      `${BASE}/vmlinuz... ok`,
      'ycluster: download or boot failed, retrying in 10 seconds',
    ];
    expectInOrder(out, steps);
    const tftp = agentLog('TFTP transfer completed', node.ip);
    assert.ok(tftp.some((l) => l.file === 'ipxe.efi'), `TFTP log lines for ${node.ip}: ${JSON.stringify(tftp)}`);
    assert.ok(bootRequests(MAC_UEFI).some((r) => r.path === '/boot.ipxe' && r.status === 200 && r.client === node.ip));
    assert.deepEqual(webHits().filter((h) => h.client === node.ip).map((h) => `${h.path} ${h.status}`)[0], '/vmlinuz 200');
  });
});
