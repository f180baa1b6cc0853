import { parseArgs } from 'node:util';
import { badInput, errorMessage } from '../lib/errors.js';
import { createLogger, type Logger } from '../lib/log.js';
import { sleep } from '../lib/time.js';
import { removeVip } from '../services/vip.js';
import { readFenceFile, type FenceEntry } from './fence-file.js';

/**
 * `ycluster watchdog --file F`: a separate process beside the agent. When a leadership's deadline passes
 * and the agent has not stepped down (it is frozen: SIGSTOP, swap storm, a stuck syscall), the watchdog
 * kills that leadership's services and drops its VIPs, before the lease can expire and a successor start.
 */
export async function watchdogCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { file: { type: 'string' }, 'interval-ms': { type: 'string', default: '100' } } });
  if (!values.file) throw badInput('watchdog: --file FILE is required');
  const interval = Number(values['interval-ms']);
  const log = createLogger({ fields: { service: 'watchdog' } });
  const fenced = new Map<string, number>();
  let running = true;
  process.once('SIGTERM', () => (running = false));
  process.once('SIGINT', () => (running = false));
  while (running) {
    await checkOnce(values.file, fenced, log);
    await sleep(interval);
  }
  return 0;
}

/** One look at the file: fences every leadership whose deadline has passed (once per deadline). Returns those fenced. */
export async function checkOnce(file: string, fenced: Map<string, number>, log: Logger, now = Date.now()): Promise<string[]> {
  const done: string[] = [];
  for (const [election, entry] of Object.entries(readFenceFile(file)?.leaderships ?? {})) {
    if (now <= entry.deadlineEpochMs || fenced.get(election) === entry.deadlineEpochMs) continue;
    fenced.set(election, entry.deadlineEpochMs);
    log.error('leader deadline passed while the agent did not step down: fencing', { election, lateMs: now - entry.deadlineEpochMs, pids: entry.pids, vips: entry.vips });
    await fence(entry, log);
    done.push(election);
  }
  return done;
}

async function fence(entry: FenceEntry, log: Logger): Promise<void> {
  // The addresses first: from this instant no client reaches this node's services.
  await Promise.all(entry.vips.map((v) => removeVip(v.iface, v.cidr).catch((err: unknown) => log.error('cannot remove VIP', { ...v, error: errorMessage(err) }))));
  for (const pid of entry.pids) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        /* gone already */
      }
    }
  }
}
