import { normalizeMac } from '../lib/net.js';
import type { StateClient } from '../state/client.js';
import { keys } from '../state/keys.js';

export type InstallStateValue = 'install' | 'installed';

/** Records whether the machine with this MAC installs on its next network boot. */
export async function setInstallState(state: StateClient, mac: string, value: InstallStateValue): Promise<void> {
  await state.put(keys.installState(normalizeMac(mac)), { state: value, at: new Date().toISOString() });
}

/**
 * A node that runs the agent is installed: its next network boot boots from disk. Called from the
 * agent's registration; writes only when the state changes, so restarts cost one read.
 */
export async function markInstalled(state: StateClient, mac: string): Promise<void> {
  const normal = normalizeMac(mac);
  if ((await state.getValue(keys.installState(normal)))?.state === 'installed') return;
  await setInstallState(state, normal, 'installed');
}
