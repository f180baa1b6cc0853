import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';

const VipSchema = z.object({ iface: z.string(), cidr: z.string() }).strict();
export type FenceVip = z.infer<typeof VipSchema>;

const EntrySchema = z.object({ deadlineEpochMs: z.number(), pids: z.array(z.number().int().positive()), vips: z.array(VipSchema) }).strict();
export type FenceEntry = z.infer<typeof EntrySchema>;

/** Per election this node leads: when its deadline passes, which processes to kill and which addresses to drop. */
export const FenceFileSchema = z.object({ agentPid: z.number().int(), leaderships: z.record(EntrySchema) }).strict();
export type FenceFileContent = z.infer<typeof FenceFileSchema>;

/** What the role tells the watchdog it must fence if the agent cannot. */
export interface FenceTargets {
  pids: number[];
  vips: FenceVip[];
}

/** Written atomically (temp + rename) so the watchdog never reads half a file. */
export function writeFenceFile(path: string, content: FenceFileContent): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(content));
  renameSync(tmp, path);
}

export function readFenceFile(path: string): FenceFileContent | undefined {
  try {
    return FenceFileSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
  } catch {
    return undefined;
  }
}
