/** Ubuntu autoinstall (subiquity) NoCloud seed for one node: user-data and meta-data. Pure. */
import { stringify } from 'yaml';
import { YcError } from '../lib/errors.js';
import { baseUrl, macPath, safeDomain, safeHostname, safeIp, safeToken, safeUrl } from './boot-values.js';
import type { BootConfig, BootNode, NodeType } from './types.js';

export const ADMIN_USER = 'ycluster';
export const AGENT_CONFIG_PATH = '/etc/ycluster/agent.json';
export const AGENT_UNIT = 'ycluster-agent.service';
/** Storage nodes keep the rest of their volume group as a logical volume for a Ceph OSD. */
export const CEPH_DATA_LV = '/dev/ubuntu-vg/ceph-data';

/** What the agent reads on first start; the token is good for one join only. */
export interface AgentBootstrapConfig {
  serverUrl: string;
  mac: string;
  hostname: string;
  fqdn: string;
  ip: string;
  type: NodeType;
  joinToken: string;
  /** Admin API base URLs to redeem the token at, tried in order (see src/agent/join.ts). */
  apiUrls: string[];
  cephDataDevice?: string;
}

export const DEFAULT_ADMIN_API_PORT = 8080;

function adminApiUrls(config: BootConfig): string[] {
  const urls = config.adminApiUrls?.length ? config.adminApiUrls : [`http://${new URL(baseUrl(config.serverBaseUrl)).hostname}:${DEFAULT_ADMIN_API_PORT}`];
  return urls.map((u) => baseUrl(safeUrl('adminApiUrls', u)));
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** lvm for nodes that hold cluster state (room to grow or snapshot); direct for the rest. */
function storageLayout(type: NodeType): Record<string, unknown> {
  switch (type) {
    case 'core':
      return { layout: { name: 'lvm', 'sizing-policy': 'all' } };
    case 'storage':
      // "scaled" leaves free space in the volume group; a late command gives it to Ceph.
      return { layout: { name: 'lvm', 'sizing-policy': 'scaled' } };
    default:
      return { layout: { name: 'direct' } };
  }
}

function network(node: BootNode, config: BootConfig): Record<string, unknown> {
  if (!Number.isInteger(config.prefixLength) || config.prefixLength < 1 || config.prefixLength > 32) {
    throw new YcError('CORRUPT_VALUE', `boot config prefixLength ${config.prefixLength} is not 1..32`);
  }
  const gateway = safeIp('gatewayVip', config.gatewayVip);
  const dns = config.dnsServers.length > 0 ? config.dnsServers.map((ip) => safeIp('dnsServers', ip)) : [gateway];
  return {
    version: 2,
    ethernets: {
      // Matched by MAC: interface names differ between the installer kernel and the installed system.
      cluster: {
        match: { macaddress: node.mac },
        dhcp4: false,
        addresses: [`${safeIp('ip', node.ip)}/${config.prefixLength}`],
        routes: [{ to: 'default', via: gateway }],
        nameservers: { addresses: dns, search: [safeDomain(config.domain)] },
      },
    },
  };
}

export function agentBootstrapConfig(node: BootNode, config: BootConfig & { joinToken: string }): AgentBootstrapConfig {
  const hostname = safeHostname(node.hostname);
  return {
    serverUrl: baseUrl(config.serverBaseUrl),
    mac: node.mac,
    hostname,
    fqdn: `${hostname}.${safeDomain(config.domain)}`,
    ip: safeIp('ip', node.ip),
    type: node.type,
    joinToken: safeToken(config.joinToken),
    apiUrls: adminApiUrls(config),
    ...(node.type === 'storage' ? { cephDataDevice: CEPH_DATA_LV } : {}),
  };
}

function lateCommands(node: BootNode, config: BootConfig & { joinToken: string }): string[] {
  const base = baseUrl(config.serverBaseUrl);
  const pkg = safeUrl('agentPackageUrl', config.agentPackageUrl ?? `${base}/agent/ycluster-agent.deb`);
  const proxy = config.proxy ? ` -x ${shellQuote(safeUrl('proxy', config.proxy))}` : '';
  const inTarget = 'curtin in-target --target=/target --';
  const agentJson = JSON.stringify(agentBootstrapConfig(node, config));
  const cmds = [
    `${inTarget} sh -c ${shellQuote(`curl -fsSL --retry 5${proxy} -o /tmp/ycluster-agent.deb ${pkg} && apt-get install -y /tmp/ycluster-agent.deb && rm -f /tmp/ycluster-agent.deb`)}`,
    // umask first: the join token must never be readable by anyone but root, not even briefly.
    `umask 077 && mkdir -p /target/etc/ycluster && printf '%s\\n' ${shellQuote(agentJson)} > /target${AGENT_CONFIG_PATH}`,
  ];
  if (node.type === 'storage') cmds.push(`${inTarget} lvcreate -l 100%FREE -n ceph-data ubuntu-vg`);
  // Enabled, not started: the installer's chroot has no systemd; the agent starts on first boot and joins.
  cmds.push(`${inTarget} systemctl enable ${AGENT_UNIT}`);
  return cmds;
}

/** `config.joinToken` must be a token issued for this node alone (BootLookup.issueJoinToken). */
export function renderUserData(node: BootNode, config: BootConfig & { joinToken: string }): string {
  const hostname = safeHostname(node.hostname);
  const keys = config.sshAuthorizedKeys.map(String);
  const autoinstall: Record<string, unknown> = {
    version: 1,
    locale: 'en_US.UTF-8',
    keyboard: { layout: 'us' },
    network: network(node, config),
    ...(config.proxy ? { proxy: safeUrl('proxy', config.proxy) } : {}),
    ssh: { 'install-server': true, 'authorized-keys': keys, 'allow-pw': false },
    storage: storageLayout(node.type),
    // cloud-init config for the installed system; with it, subiquity needs no "identity" (no password anywhere).
    'user-data': {
      hostname,
      fqdn: `${hostname}.${safeDomain(config.domain)}`,
      disable_root: true,
      ssh_pwauth: false,
      users: [
        {
          name: ADMIN_USER,
          gecos: 'ycluster administrator',
          groups: ['adm', 'sudo'],
          sudo: 'ALL=(ALL) NOPASSWD:ALL',
          shell: '/bin/bash',
          lock_passwd: true,
          ssh_authorized_keys: keys,
        },
      ],
    },
    'late-commands': lateCommands(node, config),
    shutdown: 'reboot',
  };
  return '#cloud-config\n' + stringify({ autoinstall }, { lineWidth: 0 });
}

export function renderMetaData(node: BootNode): string {
  return stringify({ 'instance-id': `ycluster-${macPath(node.mac)}`, 'local-hostname': safeHostname(node.hostname) });
}
