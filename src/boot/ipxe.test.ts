import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isYcError } from '../lib/errors.js';
import { planBoot, renderBootScript } from './ipxe.js';
import type { BootConfig, BootNode } from './types.js';

const config: BootConfig = {
  serverBaseUrl: 'http://10.0.0.1:8080',
  installerKernelUrl: 'http://mirror.example/casper/vmlinuz',
  installerInitrdUrl: 'http://mirror.example/casper/initrd',
  isoUrl: 'http://mirror.example/ubuntu.iso',
  sshAuthorizedKeys: [],
  domain: 'cluster.lan',
  gatewayVip: '10.0.0.1',
  dnsServers: [],
  prefixLength: 24,
};
const mac = 'aa:bb:cc:00:11:22';
const node: BootNode = { mac, hostname: 's1', ip: '10.0.0.11', type: 'core' };

test('a node to install gets kernel, initrd and its own NoCloud seed URL', () => {
  const plan = planBoot(mac, node, 'install', config);
  assert.equal(plan.action, 'install');
  const script = renderBootScript(plan);
  const lines = script.split('\n');
  assert.equal(lines[0], '#!ipxe');
  const kernel = lines.find((l) => l.startsWith('kernel '))!;
  assert.ok(kernel.startsWith('kernel http://mirror.example/casper/vmlinuz initrd=initrd autoinstall '));
  assert.ok(kernel.includes(' ds=nocloud-net;s=http://10.0.0.1:8080/autoinstall/aa-bb-cc-00-11-22/ '));
  assert.ok(kernel.includes(' ip=dhcp url=http://mirror.example/ubuntu.iso '));
  assert.ok(lines.includes('initrd --name initrd http://mirror.example/casper/initrd || goto retry'));
  assert.ok(lines.includes('boot || goto retry'));
  assert.ok(lines.includes('chain --replace --autofree http://10.0.0.1:8080/boot.ipxe?mac=aa-bb-cc-00-11-22 || reboot'));
  // The script is deterministic: the same plan renders the same text.
  assert.equal(renderBootScript(planBoot(mac, node, 'install', config)), script);
});

test('an installed node boots from its disk (sanboot on BIOS, exit on UEFI)', () => {
  const script = renderBootScript(planBoot(mac, node, 'installed', config));
  assert.ok(script.includes('sanboot --no-describe --drive 0x80'));
  assert.ok(script.includes('\nexit\n'));
  assert.ok(!script.includes('kernel '));
});

test('an unknown MAC gets a discovery script that waits and asks again', () => {
  const plan = planBoot(mac, undefined, 'install', config);
  assert.deepEqual(plan, { action: 'discover', mac, retrySeconds: 30, chainUrl: 'http://10.0.0.1:8080/boot.ipxe?mac=aa-bb-cc-00-11-22' });
  const script = renderBootScript(plan);
  assert.ok(script.includes('not part of the cluster'));
  assert.ok(script.includes('\nsleep 30\n'));
  assert.ok(script.includes('chain --replace --autofree http://10.0.0.1:8080/boot.ipxe?mac=aa-bb-cc-00-11-22'));
});

test('unsafe operator URLs are refused rather than spliced into the script', () => {
  for (const bad of ['ftp://x/vmlinuz', 'http://x/a b', 'http://x/${foo}', 'not a url']) {
    assert.throws(() => planBoot(mac, node, 'install', { ...config, installerKernelUrl: bad }), (e) => isYcError(e, 'CORRUPT_VALUE'), bad);
  }
});
