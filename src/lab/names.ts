// Names of a lab's namespaces and interfaces. Lab names have no '-', so "NAME-" prefixes never overlap.
import { badInput } from '../lib/errors.js';
import { validateLabName } from './registry.js';

export const IFNAMSIZ = 15;
/** Short name of the admin namespace (a node name, so execInNode/spawnInNode work on it too). */
export const ADMIN_NODE = 'adm';
export const SWITCH_NODE = 'sw';
/** Interface name inside every node namespace. */
export const NODE_IFACE = 'eth0';

export function nsName(name: string, node: string): string {
  return `${name}-${node}`;
}
export const switchNs = (name: string): string => nsName(name, SWITCH_NODE);
export const bridgeName = (name: string): string => `${name}-br`;
/** The switch-side end of a node's cable (in NAME-sw, enslaved to NAME-br). */
export const switchPort = (name: string, node: string): string => nsName(name, node);

/** A fresh lab name: "yc" + 4 random base36 characters. */
export function newLabName(random: () => number = Math.random): string {
  let s = 'yc';
  for (let i = 0; i < 4; i++) s += Math.floor(random() * 36).toString(36);
  return s;
}

/** Node names: [a-z][a-z0-9]*, not the reserved "sw"/"br", and short enough that every interface name fits IFNAMSIZ. */
export function validateNodeName(name: string, node: string): void {
  validateLabName(name);
  if (!/^[a-z][a-z0-9]*$/.test(node)) throw badInput(`invalid node name "${node}": [a-z][a-z0-9]*`);
  if (node === SWITCH_NODE || node === 'br') throw badInput(`node name "${node}" is reserved`);
  const longest = switchPort(name, node);
  if (longest.length > IFNAMSIZ) {
    throw badInput(`node name "${node}" too long for lab "${name}": "${longest}" exceeds ${IFNAMSIZ} characters`);
  }
}

