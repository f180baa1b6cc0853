/**
 * Plain Ceph (Debian) for a lab or a test: one config directory holds every path (config, keyrings, data,
 * sockets, logs, pid files), so nothing lands in /etc/ceph or /var/lib/ceph. These functions only render
 * files and commands; the caller (the agent, or test/helpers/ceph.ts) runs them and supervises the daemons,
 * which all run in the foreground (-f).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { badInput } from '../lib/errors.js';
import { MON_FAILOVER_SETTINGS } from '../storage/ceph-cli.js';

export interface Cmd {
  command: string;
  args: string[];
}

/** One monitor: its id (a, b, c, ...) and the address it binds (msgr v1, port monPort). */
export interface CephMon {
  id: string;
  ip: string;
}

export interface CephLab {
  dir: string;
  conf: string;
  /** Holds mon., client.admin and mgr.x: every mon imports it at mkfs, clients use client.admin. */
  keyring: string;
  fsid: string;
  /** Every mon of the monmap; quorum is a majority of them. */
  mons: CephMon[];
  monPort: number;
}

export interface CephConfigInput {
  dir: string;
  fsid: string;
  mons: readonly CephMon[];
  monPort: number;
  objectstore: 'memstore' | 'bluestore';
  poolSize: number;
  /** Where daemons bind, e.g. the lab subnet; 127.0.0.0/8 for a test on loopback. */
  publicNetwork: string;
  /** Size of each bluestore OSD's sparse block file (default 4 GiB; only what is written takes disk). */
  bluestoreBlockBytes?: number;
}

/** A cephx secret: le16 type (1 = AES), le32 seconds, le32 nanoseconds, le16 length, 16 random bytes. */
export function cephSecret(now = Date.now(), random: Buffer = randomBytes(16)): string {
  const b = Buffer.alloc(12 + 16);
  b.writeUInt16LE(1, 0);
  b.writeUInt32LE(Math.floor(now / 1000), 2);
  b.writeUInt32LE((now % 1000) * 1_000_000, 6);
  b.writeUInt16LE(16, 10);
  random.copy(b, 12, 0, 16);
  return b.toString('base64');
}

export function cephConfigText(c: CephConfigInput): string {
  const d = c.dir;
  return `[global]
fsid = ${c.fsid}
mon_host = ${c.mons.map((m) => `[v1:${m.ip}:${c.monPort}]`).join(',')}
ms_bind_msgr2 = false
ms_bind_ipv4 = true
ms_bind_ipv6 = false
public_network = ${c.publicNetwork}
run_dir = ${d}/run
admin_socket = ${d}/run/$cluster-$name.asok
pid_file = ${d}/run/$cluster-$name.pid
log_file = ${d}/log/$cluster-$name.log
mon_cluster_log_file = ${d}/log/$cluster.log
keyring = ${d}/keyring
mon_data = ${d}/mon/$cluster-$id
mgr_data = ${d}/mgr/$cluster-$id
osd_data = ${d}/osd/$cluster-$id
osd_objectstore = ${c.objectstore}
memstore_device_bytes = 2147483648
osd_pool_default_size = ${c.poolSize}
osd_pool_default_min_size = 1
# A fixed PG count: the mgr's autoscaler took the lab pool from 8 to 32 PGs one step every 2 s for minutes after
# bring-up, and every step re-peers placement groups, stalling I/O (lock breaks included) for a second or two.
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
osd_crush_chooseleaf_type = 0
mon_data_avail_warn = 5
mon_data_avail_crit = 1
osd_max_object_name_len = 256
osd_max_object_namespace_len = 64
auth_allow_insecure_global_id_reclaim = false
# A crashed OSD must be marked down in seconds, not 20+ s: until then I/O to its PGs waits. One reporter is
# enough in a lab of one or two OSDs; the grace is not stretched by laggy history.
osd_heartbeat_interval = 1
osd_heartbeat_grace = 6
mon_osd_min_down_reporters = 1
mon_osd_reporter_subtree_level = osd
mon_osd_adjust_heartbeat_grace = false
# A placement group whose primary died serves nothing until the dead primary's read lease has surely run out
# (read_lease_ratio x osd_heartbeat_grace: 4.8 s here by default), even once that OSD is marked down: a takeover's
# lock break waited on it. 0.4 makes the lease 2.4 s, about when ycluster has marked the dead OSD down anyway.
osd_pool_default_read_lease_ratio = 0.4
# Any dead mon stops the mons' writes (osd blocklist add, osd down: what a storage takeover needs): a Paxos
# round needs every quorum member, so the leader waits for the accept/lease timeout (mon_lease x 2), then an
# election that waits mon_election_timeout for the dead mon. About 3 s here, 15 s with the defaults (5 s each).
mon_lease = 1
mon_election_timeout = 1
# A mon change (blocklist add, osd down) waits for the rest of this interval after the last commit (1 s by
# default): a takeover makes two or three such changes in a row.
paxos_propose_interval = 0.25
# Bluestore on a sparse file under osd_data: survives kill -9 (memstore keeps data only in RAM), small cache.
bluestore_block_create = true
bluestore_block_size = ${c.bluestoreBlockBytes ?? 4294967296}
bluestore_cache_autotune = false
bluestore_cache_size = 67108864
osd_memory_target = 939524096

[osd]
keyring = $osd_data/keyring

[client]
# Every client here is client.admin: one shared admin socket path would only collide.
admin_socket =
# No client cache: a blocklisted client must see I/O errors at once, not keep serving from memory.
rbd_cache = false
# Layering only: librbd's exclusive-lock feature refuses to work while our manual (advisory) lock is held.
rbd_default_features = 1
# A client learns that an OSD went down only when it asks for a newer map, and it asks for one when an op has
# waited objecter_timeout (10 s by default), checked every objecter_tick_interval (5 s). An op sent to an OSD that
# died (a takeover's lock break, the leader's own writes) would wait that long after the OSD is marked down.
objecter_timeout = 1
objecter_tick_interval = 0.5
# A monitor cut off by a partition (a core node): see MON_FAILOVER_SETTINGS. The agent's own clients get them
# from the agent; this covers the CLI tools.
${Object.entries(MON_FAILOVER_SETTINGS).map(([k, v]) => `${k} = ${v}`).join('\n')}
`;
}

function keyringText(entries: { entity: string; key: string; caps: Record<string, string> }[]): string {
  return entries
    .map((e) => `[${e.entity}]\n\tkey = ${e.key}\n${Object.entries(e.caps).map(([k, v]) => `\tcaps ${k} = "${v}"\n`).join('')}`)
    .join('');
}

/**
 * Writes ceph.conf and the keyring under labDir/ceph; returns where they are. `mons` is one address (mon "a",
 * as a single-host test uses) or every mon with its id; all share monPort, each on its own address.
 */
export async function cephLabConfig(
  labDir: string,
  mons: string | readonly CephMon[],
  opts: { monPort?: number; objectstore?: 'memstore' | 'bluestore'; poolSize?: number; publicNetwork?: string } = {},
): Promise<CephLab> {
  const list = typeof mons === 'string' ? [{ id: 'a', ip: mons }] : [...mons];
  if (list.length === 0) throw badInput('a Ceph cluster needs at least one mon');
  if (new Set(list.map((m) => m.id)).size !== list.length || new Set(list.map((m) => m.ip)).size !== list.length) {
    throw badInput(`mon ids and addresses must be unique: ${list.map((m) => `${m.id}=${m.ip}`).join(' ')}`);
  }
  const dir = join(labDir, 'ceph');
  for (const sub of ['run', 'log', 'mon', 'mgr', 'osd']) await mkdir(join(dir, sub), { recursive: true });
  const lab: CephLab = { dir, conf: join(dir, 'ceph.conf'), keyring: join(dir, 'keyring'), fsid: randomUUID(), mons: list, monPort: opts.monPort ?? 6789 };
  await writeFile(lab.conf, cephConfigText({ dir, fsid: lab.fsid, mons: list, monPort: lab.monPort, objectstore: opts.objectstore ?? 'memstore', poolSize: opts.poolSize ?? 1, publicNetwork: opts.publicNetwork ?? `${list[0]!.ip}/32` }));
  const all = 'allow *';
  await writeFile(lab.keyring, keyringText([
    { entity: 'mon.', key: cephSecret(), caps: { mon: all } },
    { entity: 'client.admin', key: cephSecret(), caps: { mon: all, osd: all, mgr: all, mds: all } },
    { entity: 'mgr.x', key: cephSecret(), caps: { mon: 'allow profile mgr', osd: all, mds: all } },
  ]), { mode: 0o600 });
  return lab;
}

/** The initial monmap with every mon (written to ceph/monmap); each mon's --mkfs reads it. */
export function monmapCommand(lab: CephLab): Cmd {
  const add = lab.mons.flatMap((m) => ['--addv', m.id, `[v1:${m.ip}:${lab.monPort}]`]);
  return { command: 'monmaptool', args: ['--create', '--clobber', '--fsid', lab.fsid, ...add, join(lab.dir, 'monmap')] };
}

/** One mon's store, made from the shared monmap and keyring; then `run` starts it in the foreground. */
export function monCommands(lab: CephLab, id: string): { setup: Cmd[]; run: Cmd } {
  if (!lab.mons.some((m) => m.id === id)) throw badInput(`mon ${id} is not in the monmap (${lab.mons.map((m) => m.id).join(', ')})`);
  const c = ['-c', lab.conf];
  return {
    setup: [{ command: 'ceph-mon', args: [...c, '--mkfs', '-i', id, '--monmap', join(lab.dir, 'monmap'), '--keyring', lab.keyring] }],
    run: { command: 'ceph-mon', args: [...c, '-f', '-i', id] },
  };
}

/** Every mon and one mgr ("x") on one host: setup runs once, in order; run are the daemons (mons first). */
export function monMgrCommands(lab: CephLab): { setup: Cmd[]; run: Cmd[] } {
  const mons = lab.mons.map((m) => monCommands(lab, m.id));
  return {
    setup: [monmapCommand(lab), ...mons.flatMap((m) => m.setup), { command: 'mkdir', args: ['-p', join(lab.dir, 'mgr', 'ceph-x')] }],
    run: [...mons.map((m) => m.run), { command: 'ceph-mgr', args: ['-c', lab.conf, '-f', '-i', 'x'] }],
  };
}

/**
 * One OSD with a fixed id on a storage node. Setup needs the mon up (it registers the OSD with its own key);
 * the OSD keyring is written before --mkfs, as ceph-osd reads it there.
 */
export async function osdCommands(lab: CephLab, id: number): Promise<{ setup: Cmd[]; run: Cmd[] }> {
  const c = ['-c', lab.conf];
  const uuid = randomUUID();
  const data = join(lab.dir, 'osd', `ceph-${id}`);
  const key = cephSecret();
  await mkdir(data, { recursive: true });
  const secretFile = join(data, 'secret.json');
  await writeFile(secretFile, JSON.stringify({ cephx_secret: key }), { mode: 0o600 });
  await writeFile(join(data, 'keyring'), keyringText([{ entity: `osd.${id}`, key, caps: {} }]), { mode: 0o600 });
  return {
    setup: [
      { command: 'ceph', args: [...c, '--id', 'admin', 'osd', 'new', uuid, String(id), '-i', secretFile] },
      { command: 'ceph-osd', args: [...c, '--mkfs', '-i', String(id), '--osd-uuid', uuid] },
    ],
    run: [{ command: 'ceph-osd', args: [...c, '-f', '-i', String(id)] }],
  };
}

/**
 * A replicated pool tagged for RBD, made with only the mon up (nothing is written to it): the lab creates it
 * before any OSD runs. Its size and min_size come from ceph.conf (osd_pool_default_size = poolSize, min 1).
 */
export function poolCreateCommands(lab: CephLab, pool: string, pgs = 8): Cmd[] {
  const c = ['-c', lab.conf, '--id', 'admin'];
  return [
    { command: 'ceph', args: [...c, 'osd', 'pool', 'create', pool, String(pgs), String(pgs)] },
    { command: 'ceph', args: [...c, 'osd', 'pool', 'application', 'enable', pool, 'rbd'] },
  ];
}

/** A replicated pool initialised for RBD, created once the OSDs are up. */
export function poolCommands(lab: CephLab, pool: string, pgs = 8): Cmd[] {
  const c = ['-c', lab.conf, '--id', 'admin'];
  return [
    { command: 'ceph', args: [...c, 'osd', 'pool', 'create', pool, String(pgs), String(pgs)] },
    { command: 'rbd', args: [...c, 'pool', 'init', pool] },
  ];
}
