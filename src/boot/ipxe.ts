/** What a MAC boots (a JSON-able plan) and the iPXE script for that plan. Pure. */
import { baseUrl, macPath, safeHostname, safeUrl } from './boot-values.js';
import type { BootConfig, BootNode, InstallState, NodeType } from './types.js';

export type BootPlan =
  | {
      action: 'install';
      mac: string;
      hostname: string;
      type: NodeType;
      kernelUrl: string;
      initrdUrl: string;
      /** The cloud-init NoCloud seed: <seedUrl>user-data, meta-data and vendor-data. */
      seedUrl: string;
      cmdline: string;
      /** Asked again when a download or the boot fails. */
      retryUrl: string;
    }
  | { action: 'local'; mac: string; hostname: string }
  | { action: 'discover'; mac: string; retrySeconds: number; chainUrl: string };

export const DISCOVERY_RETRY_SECONDS = 30;

export function planBoot(mac: string, node: BootNode | undefined, state: InstallState, config: BootConfig): BootPlan {
  const base = baseUrl(config.serverBaseUrl);
  const again = `${base}/boot.ipxe?mac=${macPath(mac)}`;
  if (!node) return { action: 'discover', mac, retrySeconds: DISCOVERY_RETRY_SECONDS, chainUrl: again };
  const hostname = safeHostname(node.hostname);
  if (state === 'installed') return { action: 'local', mac, hostname };
  const seedUrl = `${base}/autoinstall/${macPath(mac)}/`;
  const isoUrl = safeUrl('isoUrl', config.isoUrl);
  // initrd= lets an EFI-stub kernel find the initrd iPXE registered under that name;
  // cloud-config-url=/dev/null stops cloud-init from fetching url= (the whole ISO) as its config.
  const cmdline = ['initrd=initrd', 'autoinstall', `ds=nocloud-net;s=${seedUrl}`, 'ip=dhcp', `url=${isoUrl}`, 'cloud-config-url=/dev/null', '---'].join(' ');
  return {
    action: 'install',
    mac,
    hostname,
    type: node.type,
    kernelUrl: safeUrl('installerKernelUrl', config.installerKernelUrl),
    initrdUrl: safeUrl('installerInitrdUrl', config.installerInitrdUrl),
    seedUrl,
    cmdline,
    retryUrl: again,
  };
}

/** Every script retries its own downloads, then falls back to asking again, so a flaky network never strands a node. */
export function renderBootScript(plan: BootPlan): string {
  const lines = ['#!ipxe', `# ycluster: ${plan.action} for ${plan.mac}`];
  switch (plan.action) {
    case 'install':
      lines.push(
        `echo ycluster: installing Ubuntu on ${plan.hostname} (${plan.type}, ${plan.mac})`,
        `kernel ${plan.kernelUrl} ${plan.cmdline} || goto retry`,
        `initrd --name initrd ${plan.initrdUrl} || goto retry`,
        'boot || goto retry',
        ':retry',
        'echo ycluster: download or boot failed, retrying in 10 seconds',
        'sleep 10',
        `chain --replace --autofree ${plan.retryUrl} || reboot`,
      );
      break;
    case 'local':
      lines.push(
        `echo ycluster: ${plan.hostname} is installed, booting from the local disk`,
        // BIOS: hand over to the first disk. UEFI (or if that fails): exit to the firmware's next boot entry.
        'iseq ${platform} efi && goto firmware ||',
        'sanboot --no-describe --drive 0x80 || goto firmware',
        ':firmware',
        'exit',
      );
      break;
    case 'discover':
      lines.push(
        `echo ycluster: this machine (${plan.mac}) is not part of the cluster yet.`,
        'echo ycluster: it has been registered; the operator can admit it from the dashboard or the CLI.',
        `echo ycluster: asking again in ${plan.retrySeconds} seconds...`,
        `sleep ${plan.retrySeconds}`,
        `chain --replace --autofree ${plan.chainUrl} || reboot`,
      );
      break;
  }
  return lines.join('\n') + '\n';
}
