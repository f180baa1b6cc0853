import { appendFileSync } from 'node:fs';

export interface JournalEntry {
  election: string;
  event: 'leading' | 'stopped';
  token?: number;
  reason?: string;
}

/**
 * An append-only file of leadership changes with wall-clock and monotonic times, written
 * synchronously so that it survives kill -9; lab tests read it to prove no two leaders overlapped.
 */
export class Journal {
  constructor(private readonly path: string, private readonly node: string) {}

  record(entry: JournalEntry): void {
    appendFileSync(this.path, JSON.stringify({ t: Date.now(), node: this.node, ...entry }) + '\n');
  }
}
