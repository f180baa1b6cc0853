/**
 * Telling Ceph at once that an OSD is gone. Until a dead OSD is marked down, every I/O to the placement groups it
 * was primary for waits (a new storage leader's lock break among them), and Ceph's own detection takes its
 * heartbeat grace plus a report interval: 6–10 s in the lab, 20 s and more with Ceph's defaults. The storage
 * leader knows sooner: it was elected because the old leader's node stopped renewing. So at takeover it probes
 * every OSD that Ceph still calls up, and marks down those that no longer answer on their address.
 *
 * A wrong mark-down is harmless (a live OSD says "wrongly marked me down" and is up again within a second), but
 * one that cannot be reached is what we are after: a cut-off node must not hold I/O either. A candidate that
 * reaches no OSD at all is more likely cut off itself, and then marks nothing.
 */
import { Socket } from 'node:net';

export interface OsdEndpoint {
  id: number;
  host: string;
  port: number;
}

interface DumpedOsd {
  osd?: unknown;
  up?: unknown;
  public_addr?: unknown;
  public_addrs?: { addrvec?: { type?: unknown; addr?: unknown }[] };
}

/** What the storage leader's checks read from an `osd dump`: one parse per dump. */
export interface OsdDump {
  /** The map epoch, if the dump says. */
  epoch: number | undefined;
  /**
   * What a client must know of the OSDs to reach its data: each OSD's id, whether it is up, and its address. Two
   * dumps with the same fingerprint route every request alike; other epoch changes (PG temp mappings) do not
   * count. Undefined when the dump lists no OSDs array.
   */
  fingerprint: string | undefined;
  /** The up OSDs and their public address; anything unreadable is skipped. */
  up: OsdEndpoint[];
}

/** Parses `osd dump` JSON; throws when it is not JSON at all. */
export function parseOsdDump(dumpJson: string): OsdDump {
  const dump = JSON.parse(dumpJson) as { epoch?: unknown; osds?: DumpedOsd[] };
  const osds = Array.isArray(dump.osds) ? dump.osds : undefined;
  return {
    epoch: typeof dump.epoch === 'number' ? dump.epoch : undefined,
    fingerprint: osds?.map((o) => `${String(o.osd)}:${String(o.up)}:${JSON.stringify(o.public_addrs ?? o.public_addr ?? null)}`).sort().join(' '),
    up: (osds ?? []).flatMap((o) => {
      const e = upEndpoint(o);
      return e ? [e] : [];
    }),
  };
}

function upEndpoint(o: DumpedOsd): OsdEndpoint | undefined {
  if (typeof o.osd !== 'number' || o.up !== 1) return undefined;
  const fromVec = o.public_addrs?.addrvec?.find((a) => typeof a.addr === 'string')?.addr;
  const addr = typeof fromVec === 'string' ? fromVec : typeof o.public_addr === 'string' ? o.public_addr.split('/')[0] : undefined;
  const m = addr === undefined ? null : /^(\d{1,3}(?:\.\d{1,3}){3}):(\d+)$/.exec(addr);
  return m ? { id: o.osd, host: m[1]!, port: Number(m[2]) } : undefined;
}

export type ProbeResult = 'open' | 'refused' | 'silent';

/** A TCP connect: the kernel answers for a live process even when it is busy or stopped, so only a dead or unreachable one fails. */
export function probeTcp(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (r: ProbeResult): void => {
      s.destroy();
      resolve(r);
    };
    s.setTimeout(timeoutMs, () => done('silent'));
    s.once('connect', () => done('open'));
    s.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'refused' : 'silent'));
    s.connect(port, host);
  });
}

/** Which of the probed OSDs to mark down: none when none answered (this node is the one cut off). */
export function osdsToMarkDown(results: { osd: OsdEndpoint; probe: ProbeResult }[]): number[] {
  if (!results.some((r) => r.probe === 'open')) return [];
  return results.filter((r) => r.probe !== 'open').map((r) => r.osd.id);
}

export interface OsdMarkdownOps {
  /** `osd dump`, parsed. */
  dumpOsds(): Promise<OsdDump>;
  markDown(ids: number[]): Promise<void>;
  probe?: (host: string, port: number, timeoutMs: number) => Promise<ProbeResult>;
}

/** A live host answers a SYN from its kernel within a millisecond on a LAN, busy or not. */
export const OSD_PROBE_MS = 300;

async function probeUpOsds(ops: OsdMarkdownOps): Promise<{ osd: OsdEndpoint; probe: ProbeResult }[]> {
  const probe = ops.probe ?? probeTcp;
  const osds = (await ops.dumpOsds()).up;
  return Promise.all(osds.map(async (osd) => ({ osd, probe: await probe(osd.host, osd.port, OSD_PROBE_MS) })));
}

/** Probes every up OSD at once and marks the unreachable ones down; returns their ids. For a takeover: one look. */
export async function markUnreachableOsdsDown(ops: OsdMarkdownOps): Promise<number[]> {
  const down = osdsToMarkDown(await probeUpOsds(ops));
  if (down.length > 0) await ops.markDown(down);
  return down;
}

/**
 * The same check run about once a second by every node that can lead storage, so that an OSD node's death is
 * known to Ceph before the storage election has even ended (and the leader's own I/O stops waiting when another
 * OSD node dies). An OSD is marked down after `misses` probes in a row found it unreachable at the same address.
 */
export class OsdFailureDetector {
  private readonly missed = new Map<string, number>();

  constructor(private readonly ops: OsdMarkdownOps, private readonly misses = 2) {}

  async pass(): Promise<number[]> {
    const results = await probeUpOsds(this.ops);
    const key = (o: OsdEndpoint): string => `${o.id}@${o.host}:${o.port}`;
    const seen = new Map<string, number>();
    for (const r of results) {
      const k = key(r.osd);
      seen.set(k, r.probe === 'open' ? 0 : (this.missed.get(k) ?? 0) + 1);
    }
    // Only what this pass saw: an OSD that went down or moved starts afresh.
    this.missed.clear();
    for (const [k, n] of seen) this.missed.set(k, n);
    const due = new Set(results.filter((r) => (this.missed.get(key(r.osd)) ?? 0) >= this.misses).map((r) => r.osd.id));
    const down = osdsToMarkDown(results).filter((id) => due.has(id));
    if (down.length === 0) return [];
    await this.ops.markDown(down);
    for (const r of results) if (down.includes(r.osd.id)) this.missed.delete(key(r.osd));
    return down;
  }
}
