/* eslint-disable @typescript-eslint/no-explicit-any -- parsed YAML is untyped; each field is asserted below */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { isYcError } from '../lib/errors.js';
import { AGENT_CONFIG_PATH, renderMetaData, renderUserData } from './autoinstall.js';
import { NODE_TYPES, type BootConfig, type BootNode, type NodeType } from './types.js';

const config: BootConfig = {
  serverBaseUrl: 'http://10.0.0.1:8080/',
  installerKernelUrl: 'http://mirror.example/vmlinuz',
  installerInitrdUrl: 'http://mirror.example/initrd',
  isoUrl: 'http://mirror.example/ubuntu-24.04-live-server-amd64.iso',
  sshAuthorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake admin@laptop', 'ssh-rsa AAAAB3Nza second'],
  domain: 'cluster.lan',
  gatewayVip: '10.0.0.1',
  dnsServers: ['10.0.0.11', '10.0.0.12', '10.0.0.13'],
  prefixLength: 24,
};
const TOKEN = 'jt_0123456789abcdefABCDEF-token';
const node = (type: NodeType): BootNode => ({ mac: 'aa:bb:cc:00:11:22', hostname: `${type}-1`, ip: '10.0.0.42', type });

const expectedLayout: Record<NodeType, string> = { core: 'lvm', storage: 'lvm', compute: 'direct', macos: 'direct', frontend: 'direct' };

for (const type of NODE_TYPES) {
  test(`user-data for a ${type} node follows the autoinstall schema`, () => {
    const text = renderUserData(node(type), { ...config, joinToken: TOKEN });
    assert.ok(text.startsWith('#cloud-config\n'));
    const doc = parse(text) as { autoinstall: Record<string, any> };
    assert.deepEqual(Object.keys(doc), ['autoinstall']);
    const ai = doc.autoinstall;
    assert.equal(ai.version, 1);
    assert.ok(Number.isInteger(ai.version));
    // No identity section (so no password): user-data creates the admin user with keys only.
    assert.equal(ai.identity, undefined);
    const ud = ai['user-data'];
    assert.equal(ud.hostname, `${type}-1`);
    assert.equal(ud.fqdn, `${type}-1.cluster.lan`);
    assert.equal(ud.users.length, 1);
    assert.equal(typeof ud.users[0].name, 'string');
    assert.equal(ud.users[0].lock_passwd, true);
    assert.deepEqual(ud.users[0].ssh_authorized_keys, config.sshAuthorizedKeys);

    assert.equal(ai.network.version, 2);
    const eth = Object.values(ai.network.ethernets as Record<string, any>);
    assert.equal(eth.length, 1);
    assert.deepEqual(eth[0].match, { macaddress: 'aa:bb:cc:00:11:22' });
    assert.deepEqual(eth[0].addresses, ['10.0.0.42/24']);
    assert.deepEqual(eth[0].routes, [{ to: 'default', via: '10.0.0.1' }]);
    assert.deepEqual(eth[0].nameservers, { addresses: config.dnsServers, search: ['cluster.lan'] });

    assert.deepEqual(ai.ssh, { 'install-server': true, 'authorized-keys': config.sshAuthorizedKeys, 'allow-pw': false });
    assert.ok(ai.ssh['authorized-keys'].every((k: unknown) => typeof k === 'string'));
    assert.equal(ai.storage.layout.name, expectedLayout[type]);
    assert.equal(ai.proxy, undefined);

    const late = ai['late-commands'] as unknown[];
    assert.ok(Array.isArray(late) && late.every((c) => typeof c === 'string'));
    const cmds = late;
    assert.ok(cmds.some((c) => c.includes('http://10.0.0.1:8080/agent/ycluster-agent.deb') && c.includes('apt-get install')));
    assert.ok(cmds.at(-1)!.includes('systemctl enable ycluster-agent.service'));
    assert.equal(cmds.some((c) => c.includes('lvcreate')), type === 'storage');

    // The join token appears once in the whole document: inside the agent config written by a late command.
    assert.equal(text.split(TOKEN).length - 1, 1);
    const writer = cmds.find((c) => c.includes(TOKEN))!;
    assert.ok(writer.startsWith('umask 077') && writer.endsWith(`> /target${AGENT_CONFIG_PATH}`));
    const agent = JSON.parse(/'(\{.*\})'/.exec(writer)![1]!);
    assert.deepEqual(agent, {
      serverUrl: 'http://10.0.0.1:8080',
      mac: 'aa:bb:cc:00:11:22',
      hostname: `${type}-1`,
      fqdn: `${type}-1.cluster.lan`,
      ip: '10.0.0.42',
      type,
      joinToken: TOKEN,
      apiUrls: ['http://10.0.0.1:8080'],
      ...(type === 'storage' ? { cephDataDevice: '/dev/ubuntu-vg/ceph-data' } : {}),
    });
  });
}

test('proxy, custom agent package and default DNS (gateway VIP)', () => {
  const text = renderUserData(node('compute'), {
    ...config, dnsServers: [], proxy: 'http://proxy.lan:3128', agentPackageUrl: 'https://pkgs.example/ycluster_1.0_amd64.deb', joinToken: TOKEN,
  });
  const ai = (parse(text) as { autoinstall: Record<string, any> }).autoinstall;
  assert.equal(ai.proxy, 'http://proxy.lan:3128');
  const eth = Object.values(ai.network.ethernets as Record<string, any>)[0];
  assert.deepEqual(eth.nameservers.addresses, ['10.0.0.1']);
  const install = (ai['late-commands'] as string[])[0]!;
  assert.ok(install.includes('https://pkgs.example/ycluster_1.0_amd64.deb'));
  assert.ok(install.includes('-x'));
});

test('values that could inject into shell or YAML are refused as corrupt config', () => {
  const bad: [string, () => string][] = [
    ['hostname', () => renderUserData({ ...node('core'), hostname: 'a;reboot' }, { ...config, joinToken: TOKEN })],
    ['token', () => renderUserData(node('core'), { ...config, joinToken: "x'; rm -rf / #xxxxxxxx" })],
    ['url', () => renderUserData(node('core'), { ...config, agentPackageUrl: "http://x/'a", joinToken: TOKEN })],
    ['ip', () => renderUserData({ ...node('core'), ip: '10.0.0.300' }, { ...config, joinToken: TOKEN })],
    ['prefix', () => renderUserData(node('core'), { ...config, prefixLength: 33, joinToken: TOKEN })],
  ];
  for (const [what, fn] of bad) assert.throws(fn, (e) => isYcError(e), what);
});

test('meta-data has instance-id and local-hostname', () => {
  const meta = parse(renderMetaData(node('core'))) as Record<string, unknown>;
  assert.deepEqual(meta, { 'instance-id': 'ycluster-aa-bb-cc-00-11-22', 'local-hostname': 'core-1' });
});
