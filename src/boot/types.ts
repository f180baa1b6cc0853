/** What the boot module needs to know about a node and the cluster; filled in by the lead's etcd-backed lookup. */

export type NodeType = 'core' | 'storage' | 'compute' | 'macos' | 'frontend';
export const NODE_TYPES: readonly NodeType[] = ['core', 'storage', 'compute', 'macos', 'frontend'];

export interface BootNode {
  /** Normalised: lower-case, colon-separated. */
  mac: string;
  hostname: string;
  ip: string;
  type: NodeType;
}

export interface BootConfig {
  /** Base URL of this boot HTTP server as nodes reach it, e.g. http://10.0.0.1:8080 (no trailing slash needed). */
  serverBaseUrl: string;
  /** Installer kernel, initrd and ISO: operator-supplied URLs; ycluster never downloads them itself. */
  installerKernelUrl: string;
  installerInitrdUrl: string;
  isoUrl: string;
  sshAuthorizedKeys: string[];
  proxy?: string;
  domain: string;
  gatewayVip: string;
  dnsServers: string[];
  prefixLength: number;
  /** Kept for the config shape the issue named; user-data takes the token from BootLookup.issueJoinToken per request. */
  joinToken?: string;
  /** Defaults to <serverBaseUrl>/agent/ycluster-agent.deb. */
  agentPackageUrl?: string;
  /**
   * Base URLs of the admin API (gateway VIP first, then each core node) where an installed agent redeems its
   * join token (POST <url>/api/join). Defaults to the boot server's host on port 8080.
   */
  adminApiUrls?: string[];
}

export type InstallState = 'install' | 'installed';

/** The narrow view of cluster state the boot routes use. */
export interface BootLookup {
  nodeByMac(mac: string): Promise<BootNode | undefined>;
  /** Records an unknown MAC for the operator; returns a node if a rule admitted it at once. */
  registerUnknown(mac: string): Promise<BootNode | undefined>;
  bootConfig(): Promise<BootConfig>;
  installState(mac: string): Promise<InstallState>;
  /** A fresh one-time token for the agent's first join; called once per user-data fetch. */
  issueJoinToken(mac: string): Promise<string>;
}
