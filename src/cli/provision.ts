import { parseArgs } from 'node:util';
import { badInput } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import type { StateClient } from '../state/client.js';
import {
  bootShow,
  configureBoot,
  dnsLookup,
  listAllocations,
  listLeases,
  markNode,
  releaseLease,
} from '../provision/provision-admin.js';
import { stateFromFlags } from './context.js';
import { json, table, type Io } from './output.js';

export const PROVISION_USAGE = `  ycluster dhcp leases|allocations [--json]   leases in etcd (with expiry) / what DHCP hands out
  ycluster dhcp release MAC                     delete the lease; the node keeps its address
  ycluster dns lookup NAME [--type A|PTR|SRV|NS|SOA] [--json]   answer from the cluster zone (no network query)
  ycluster boot show MAC [--json]               what that MAC would boot now
  ycluster boot configure --kernel URL --initrd URL --iso URL [--ssh-key KEY ...] [--proxy URL] [--agent-package URL]
  ycluster boot installed|reinstall MAC         boot from disk / install on the next network boot
`;

interface Flags {
  json: boolean;
  type?: string;
  kernel?: string;
  initrd?: string;
  iso?: string;
  'ssh-key'?: string[];
  proxy?: string;
  'agent-package'?: string;
}

function parse(args: string[]): { values: Flags & { etcd?: string }; positionals: string[] } {
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      options: {
        etcd: { type: 'string' },
        json: { type: 'boolean', default: false },
        type: { type: 'string' },
        kernel: { type: 'string' },
        initrd: { type: 'string' },
        iso: { type: 'string' },
        'ssh-key': { type: 'string', multiple: true },
        proxy: { type: 'string' },
        'agent-package': { type: 'string' },
      },
    });
  } catch (err) {
    throw badInput(`${err instanceof Error ? err.message : String(err)}\n${PROVISION_USAGE}`);
  }
}

/** `ycluster dhcp|dns|boot ...`: returns the exit code; bad input throws a BAD_INPUT error. */
export async function provisionCommand(command: string, args: string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parse(args);
  const state = stateFromFlags(values.etcd, env);
  try {
    switch (command) {
      case 'dhcp':
        return await dhcp(state, io, positionals, values);
      case 'dns':
        return await dns(state, io, positionals, values);
      case 'boot':
        return await boot(state, io, positionals, values);
      default:
        throw badInput(`unknown command "${command}"`);
    }
  } finally {
    state.close();
  }
}

function need(sub: string, what: string, v: string | undefined): string {
  if (!v) throw badInput(`${sub}: missing ${what}\n${PROVISION_USAGE}`);
  return v;
}

async function dhcp(state: StateClient, io: Io, [sub, arg]: string[], f: Flags): Promise<number> {
  switch (sub) {
    case 'leases': {
      const r = await listLeases(state);
      io.out(f.json ? json(r.leases) : table(['MAC', 'IP', 'NODE', 'EXPIRES', 'EXPIRED'], r.leases.map((l) => [l.mac, l.ip, l.hostname, l.expiresAt, l.expired ? 'yes' : 'no'])));
      for (const c of r.corrupt) io.err(`warning: ${c.error}\n`);
      return r.corrupt.length ? 1 : 0;
    }
    case 'allocations': {
      const r = await listAllocations(state);
      io.out(f.json ? json(r.allocations) : table(['NODE', 'TYPE', 'IP', 'MAC', 'TYPE FROM', 'LEASE UNTIL'], r.allocations.map((a) => [a.hostname, a.type, a.ip, a.mac, a.typeSource, a.leaseExpiresAt])));
      for (const c of r.corrupt) io.err(`warning: ${c.error}\n`);
      return r.corrupt.length ? 1 : 0;
    }
    case 'release': {
      const r = await releaseLease(state, need('dhcp release', 'MAC', arg));
      io.out(f.json ? json(r) : `released the lease of ${r.released} (${r.ip}); the node keeps its address\n`);
      return 0;
    }
    default:
      throw badInput(`unknown dhcp command "${sub ?? ''}": use leases, allocations or release`);
  }
}

async function dns(state: StateClient, io: Io, [sub, arg]: string[], f: Flags): Promise<number> {
  if (sub !== 'lookup') throw badInput(`unknown dns command "${sub ?? ''}": use lookup NAME [--type A|PTR|SRV|NS|SOA]`);
  const r = await dnsLookup(state, need('dns lookup', 'NAME', arg), f.type);
  if (f.json) io.out(json(r));
  else {
    io.out(`;; ${r.name} ${r.type}: ${r.rcode}\n`);
    if (r.answers.length) io.out(table(['NAME', 'TTL', 'TYPE', 'DATA'], r.answers.map((a) => [a.name, a.ttl, a.type, typeof a.data === 'string' ? a.data : JSON.stringify(a.data)])));
  }
  // Like `host`: a name that does not exist is a non-zero exit.
  return r.rcode === 'NOERROR' ? 0 : 1;
}

async function boot(state: StateClient, io: Io, [sub, arg]: string[], f: Flags): Promise<number> {
  switch (sub) {
    case 'show': {
      const r = await bootShow(state, need('boot show', 'MAC', arg), createLogger({ level: 'warn' }));
      if (f.json) io.out(json(r));
      else {
        const p = r.plan;
        const who = p.action === 'discover' ? 'unknown machine' : `${p.hostname}`;
        io.out(`${r.mac}: ${p.action} (${who}; install state ${r.installState ?? '-'})\n\n${r.script}`);
      }
      return 0;
    }
    case 'configure': {
      const s = await configureBoot(state, {
        ...(f.kernel !== undefined ? { installerKernelUrl: f.kernel } : {}),
        ...(f.initrd !== undefined ? { installerInitrdUrl: f.initrd } : {}),
        ...(f.iso !== undefined ? { isoUrl: f.iso } : {}),
        ...(f['ssh-key'] !== undefined ? { sshAuthorizedKeys: f['ssh-key'] } : {}),
        ...(f.proxy !== undefined ? { proxy: f.proxy } : {}),
        ...(f['agent-package'] !== undefined ? { agentPackageUrl: f['agent-package'] } : {}),
      });
      io.out(json(s));
      return 0;
    }
    case 'installed':
    case 'reinstall': {
      const r = await markNode(state, need(`boot ${sub}`, 'MAC', arg), sub === 'installed' ? 'installed' : 'install');
      io.out(f.json ? json(r) : `${r.hostname} (${r.mac}) ${sub === 'installed' ? 'boots from disk' : 'installs on its next network boot'}\n`);
      return 0;
    }
    default:
      throw badInput(`unknown boot command "${sub ?? ''}": use show, configure, installed or reinstall`);
  }
}
