// A QEMU VM that network-boots on a lab's switch: SeaBIOS with QEMU's iPXE option ROM (Debian ipxe-qemu) or
// OVMF (UEFI, Debian ovmf), TCG (KVM crashes inside iPXE here), no disk, serial console to a file. Its tap lives in a namespace of its
// own ("NAME-<node>"), bridged there to that namespace's cable into the lab switch: the host namespace never
// sees the tap or any of the VM's traffic.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { isAlive, run } from '../../src/lib/exec.js';
import { sleep } from '../../src/lib/time.js';
import { addNode, NODE_IFACE, nsName, spawnInNode } from '../../src/lab/netns.js';

export const QEMU = '/usr/bin/qemu-system-x86_64';
/** The e1000's option ROM QEMU loads (its firmware path includes /usr/lib/ipxe/qemu on Debian). */
export const PXE_ROM = '/usr/lib/ipxe/qemu/pxe-e1000.rom';

/** UEFI firmware (Debian ovmf): code read-only, variables copied per VM. */
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

export type Firmware = 'bios' | 'uefi';

/** Why a firmware test cannot run here, or undefined when it can. */
export function qemuMissing(firmware: Firmware = 'bios'): string | undefined {
  if (!existsSync(QEMU)) return `${QEMU} is not installed (Debian qemu-system-x86)`;
  if (firmware === 'bios' && !existsSync(PXE_ROM)) return `${PXE_ROM} is not installed (Debian ipxe-qemu)`;
  if (firmware === 'uefi' && !existsSync(OVMF_CODE)) return `${OVMF_CODE} is not installed (Debian ovmf)`;
  return undefined;
}

/**
 * BIOS: SeaBIOS runs the e1000's iPXE option ROM, which is the PXE client. UEFI: OVMF with no option ROM on a
 * virtio NIC, so the PXE client is EDK2's own (OVMF's virtio-net driver and PXE stack), as on most servers.
 */
function firmwareArgs(firmware: Firmware, mac: string, varsFile: string): string[] {
  if (firmware === 'bios') return ['-device', `e1000,netdev=n0,mac=${mac}`];
  copyFileSync(OVMF_VARS, varsFile);
  return [
    '-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`,
    '-drive', `if=pflash,format=raw,file=${varsFile}`,
    '-device', `virtio-net-pci,netdev=n0,mac=${mac},romfile=`,
  ];
}

export interface PxeVm {
  node: string;
  mac: string;
  pid: number;
  /** The serial console so far, with terminal escapes and backspaces removed. */
  serial(): string;
  /** Waits until the serial console matches; fails with the console's tail. */
  waitSerial(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** SIGKILL by PID; waits (bounded) for the exit. Idempotent. */
  kill(): Promise<void>;
}

// eslint-disable-next-line no-control-regex -- terminal escapes and backspaces are exactly what this strips
const ESCAPES = /\x1b(\[[0-9;?]*[A-Za-z]|c)|[\x08\r]/g;

/**
 * Adds lab node `node` (unaddressed), bridges its cable with a tap there and starts the VM on the tap. The
 * VM's PID is recorded in the lab's registry, so `lab down` kills it too if the test's own cleanup cannot.
 */
export async function startPxeVm(name: string, node: string, mac: string, serialFile: string, firmware: Firmware = 'bios'): Promise<PxeVm> {
  await addNode(name, node, null, 24);
  const ns = nsName(name, node);
  const ip = (...args: string[]): Promise<unknown> => run('ip', ['-n', ns, ...args], { timeoutMs: 10_000 });
  await ip('link', 'add', 'br0', 'type', 'bridge');
  await ip('tuntap', 'add', 'dev', 'tap0', 'mode', 'tap');
  await ip('link', 'set', NODE_IFACE, 'master', 'br0');
  await ip('link', 'set', 'tap0', 'master', 'br0');
  for (const dev of ['br0', 'tap0']) await ip('link', 'set', dev, 'up');
  const args = [
    '-accel', 'tcg', '-m', '256', '-nographic', '-nodefaults', '-serial', 'stdio', '-monitor', 'none',
    '-boot', 'n', '-no-reboot',
    '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no',
    ...firmwareArgs(firmware, mac, `${serialFile}.vars.fd`),
  ];
  const child: ChildProcess = spawnInNode(name, node, QEMU, args, { logFile: serialFile, what: 'qemu' });
  const pid = child.pid;
  if (pid === undefined) throw new Error('qemu did not start');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const serial = (): string => (existsSync(serialFile) ? readFileSync(serialFile, 'latin1').replace(ESCAPES, '') : '');
  return {
    node,
    mac,
    pid,
    serial,
    waitSerial: async (re, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = serial().match(re);
        if (m) return m;
        const gone = child.exitCode !== null || child.signalCode !== null;
        if (gone || Date.now() > deadline) {
          throw new Error(`${gone ? `qemu exited (${child.exitCode ?? child.signalCode})` : `no ${re} within ${timeoutMs} ms`} on the serial console of ${node}:\n${serial().slice(-3000)}`);
        }
        await sleep(200);
      }
    },
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null || !isAlive(pid)) return;
      child.kill('SIGKILL');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000).unref())]);
    },
  };
}

/** Asserts that each line of `steps` appears in the serial console `out`, in this order; returns where the last ends. */
export function expectInOrder(out: string, steps: readonly string[]): number {
  let at = 0;
  for (const step of steps) {
    const i = out.indexOf(step, at);
    assert.ok(i >= 0, `serial console: "${step}" after position ${at}:\n${out}`);
    at = i + step.length;
  }
  return at;
}
