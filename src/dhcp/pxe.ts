/** Which boot file a network-booting client gets: chosen from its architecture, or its iPXE script if it already runs iPXE. */

export interface BootConfig {
  /** Next server (siaddr) and option 66. */
  tftpServer: string;
  /** Host and port of the HTTP server that renders per-machine iPXE scripts. */
  bootHost: string;
  bootPort: number;
}

export interface BootClientInfo {
  mac: string;
  vendorClass?: string | undefined;
  /** Option 93, first entry. */
  arch?: number | undefined;
  /** Option 77, as read by userClasses(). */
  userClasses: readonly string[];
  /** Option 175 is present: only iPXE sends it. */
  hasIpxeOption: boolean;
}

export type BootDecision =
  | { kind: 'none'; reason: string }
  | { kind: 'tftp'; nextServer: string; file: string }
  | { kind: 'ipxe-script'; nextServer: string; file: string };

export const Arch = { BIOS: 0, EFI_BC: 7, EFI_X64: 9 } as const;

const tftpFileByArch = new Map<number, string>([
  [Arch.BIOS, 'undionly.kpxe'],
  [Arch.EFI_BC, 'ipxe.efi'],
  [Arch.EFI_X64, 'ipxe.efi'],
]);

export function isIpxe(c: BootClientInfo): boolean {
  return c.hasIpxeOption || c.userClasses.includes('iPXE');
}

export function isPxeClient(c: BootClientInfo): boolean {
  return isIpxe(c) || c.arch !== undefined || (c.vendorClass?.startsWith('PXEClient') ?? false);
}

export function bootScriptUrl(cfg: BootConfig, mac: string): string {
  return `http://${cfg.bootHost}:${cfg.bootPort}/boot.ipxe?mac=${mac}`;
}

export function decideBoot(c: BootClientInfo, cfg: BootConfig): BootDecision {
  if (isIpxe(c)) return { kind: 'ipxe-script', nextServer: cfg.tftpServer, file: bootScriptUrl(cfg, c.mac) };
  if (!isPxeClient(c)) return { kind: 'none', reason: 'not a network-boot client' };
  // A PXE client without option 93 is a legacy BIOS ROM (RFC 4578 made the option mandatory later).
  const arch = c.arch ?? Arch.BIOS;
  const file = tftpFileByArch.get(arch);
  if (file === undefined) return { kind: 'none', reason: `unsupported client architecture ${arch}` };
  return { kind: 'tftp', nextServer: cfg.tftpServer, file };
}
