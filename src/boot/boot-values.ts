/**
 * Checks on values that end up inside iPXE scripts, kernel command lines and shell commands.
 * They come from etcd, so a bad one is a corrupt value (500), not the booting client's fault.
 */
import { YcError } from '../lib/errors.js';
import { isIpv4 } from '../lib/net.js';

const corrupt = (what: string, value: string, why: string): YcError =>
  new YcError('CORRUPT_VALUE', `boot config ${what} "${value}" ${why}`, { detail: { what } });

/** http(s) only, and nothing iPXE, the kernel command line or sh would interpret. */
export function safeUrl(what: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw corrupt(what, value, 'is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw corrupt(what, value, 'is not http or https');
  if (/[\s'"`\\;$&|<>]/.test(value)) throw corrupt(what, value, 'contains characters unsafe in a boot script');
  return value;
}

export function baseUrl(value: string): string {
  return safeUrl('serverBaseUrl', value).replace(/\/+$/, '');
}

export function safeHostname(value: string): string {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(value)) throw corrupt('hostname', value, 'is not a valid host name');
  return value;
}

export function safeDomain(value: string): string {
  if (!/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(value)) {
    throw corrupt('domain', value, 'is not a valid domain');
  }
  return value;
}

export function safeIp(what: string, value: string): string {
  if (!isIpv4(value)) throw corrupt(what, value, 'is not an IPv4 address');
  return value;
}

/** Join tokens are written into a shell command: allow only URL-safe token characters. */
export function safeToken(value: string): string {
  if (!/^[A-Za-z0-9._~+/=-]{16,512}$/.test(value)) throw new YcError('INTERNAL', 'join token has an unexpected format');
  return value;
}

/** The MAC as it appears in URL paths and on the kernel command line: dashes, no colons. */
export function macPath(mac: string): string {
  return mac.replace(/:/g, '-');
}
