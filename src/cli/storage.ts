import { YcError, badInput } from '../lib/errors.js';
import { clusterStatus } from '../inventory/cluster-status.js';
import { loadConfig } from '../inventory/allocate.js';
import type { StateClient } from '../state/client.js';
import { keys, prefixes } from '../state/keys.js';
import { json, table, type Io } from './output.js';

const AGENT_API_PORT = 8080;

/**
 * `ycluster storage status|volumes|forget`: who leads storage, its services and alarms; the volumes as the leader
 * sees them, with the cluster's record of each; dropping a record on purpose.
 */
export async function storageCommand(state: StateClient, io: Io, args: string[], opts: { json: boolean; yes: boolean }): Promise<number> {
  const [sub] = args;
  const asJson = opts.json;
  if (sub === 'forget') return forgetVolume(state, io, args.slice(1), opts.yes);
  const s = await clusterStatus(state);
  const leaderName = s.leaders.storage ?? null;
  const leader = s.nodes.find((n) => n.hostname === leaderName);
  if (sub === 'status') {
    const config = await loadConfig(state);
    const status = leaderName ? await state.getValue(keys.status(leaderName)) : undefined;
    const alarms = s.nodes.flatMap((n) => n.failedChecks.filter((c) => /^(storage|service:)/.test(c)).map((c) => `${n.hostname}: ${c}`));
    const doc = { leader: leaderName, storageVip: config.storageVip, services: status?.services ?? [], alarms, healthy: !!leader?.healthy && alarms.length === 0 };
    if (asJson) io.out(json(doc));
    else {
      io.out(`Storage leader: ${leaderName ?? 'NONE'}   VIP: ${config.storageVip}\n`);
      io.out(table(['SERVICE', 'STATE', 'HEALTHY', 'RESTARTS'], doc.services.map((x) => [x.name, x.state, x.healthy ? 'yes' : 'NO', x.restarts])));
      io.out(alarms.length ? 'Alarms:\n' + alarms.map((a) => `  - ${a}\n`).join('') : 'No storage alarms\n');
    }
    return doc.healthy ? 0 : 1;
  }
  if (sub === 'volumes') {
    if (!leader) throw new YcError('UNAVAILABLE', 'no storage leader: nobody holds the volumes now');
    let res: Response;
    try {
      res = await fetch(`http://${leader.ip}:${AGENT_API_PORT}/api/storage/volumes`, { signal: AbortSignal.timeout(5000) });
    } catch (err) {
      throw new YcError('UNAVAILABLE', `storage leader ${leader.hostname} (${leader.ip}) did not answer: ${err instanceof Error ? err.message : String(err)}`);
    }
    const body = (await res.json()) as { volumes?: { name: string; exists: boolean; holder?: { node: string; token: number }; mapped: boolean; mountPoint?: string; sizeMiB: number; fsType: string }[]; reason?: string };
    if (!res.ok || !body.volumes) throw new YcError('UNAVAILABLE', `storage leader ${leader.hostname}: ${body.reason ?? res.status}`);
    const records = new Map((await state.list(prefixes.volumes)).entries.map((e) => [e.value.name, e.value]));
    const volumes = body.volumes.map((v) => ({ ...v, record: records.get(v.name) ?? null }));
    if (asJson) io.out(json({ volumes }));
    else {
      io.out(table(['VOLUME', 'SIZE', 'FS', 'HOLDER', 'TOKEN', 'MAPPED', 'MOUNTED AT', 'KNOWN SINCE', 'FORMATTED'], volumes.map((v) => [
        v.name, `${v.sizeMiB} MiB`, v.fsType, v.holder?.node, v.holder?.token, v.mapped ? 'yes' : 'no', v.mountPoint,
        v.record ? `${v.record.createdAt}${v.record.adopted ? ' (adopted)' : ''}` : 'unrecorded', v.record?.formattedAt ?? 'no',
      ])));
    }
    return 0;
  }
  throw badInput(`unknown storage command "${sub ?? ''}": use status, volumes or forget`);
}

/** Drops the record that keeps a vanished or blank volume from being re-created or formatted: a deliberate act. */
async function forgetVolume(state: StateClient, io: Io, args: string[], yes: boolean): Promise<number> {
  const [name, ...extra] = args;
  if (name === undefined || extra.length > 0) throw badInput('usage: ycluster storage forget VOLUME --yes');
  if (!/^[a-z0-9-]{1,40}$/.test(name)) throw badInput(`"${name}" is not a volume name ([a-z0-9-], at most 40)`);
  const record = await state.getValue(keys.volume(name));
  if (record === undefined) throw new YcError('NOT_FOUND', `the cluster has no record of a volume "${name}"`);
  if (!yes) {
    throw badInput(`forgetting volume ${name} lets the next storage leader create and format it afresh, empty, if it is missing or blank; add --yes to do it`);
  }
  await state.delete(keys.volume(name));
  io.out(`forgot volume ${name} (known since ${record.createdAt}${record.formattedAt ? `, formatted ${record.formattedAt}` : ''})\n`);
  return 0;
}
