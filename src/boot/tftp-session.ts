/**
 * One read transfer as a pure state machine: ACKs and timeouts in, blocks to (re)send out.
 * Sockets, timers and file reads stay in the server, so this is tested without I/O.
 */
import type { TransferParams } from './tftp-options.js';

export type SessionAction =
  | { type: 'send-oack' }
  /** Absolute block numbers (1-based, not wrapped); the wire number is block & 0xffff. */
  | { type: 'send-blocks'; blocks: number[] }
  | { type: 'done' }
  | { type: 'fail'; reason: string }
  | { type: 'none'; reason: string };

export class ReadSession {
  readonly totalBlocks: number;
  private phase: 'oack' | 'data' | 'done' | 'failed';
  /** First block not yet acknowledged. */
  private base = 1;
  private retries = 0;
  retransmits = 0;

  constructor(
    readonly size: number,
    readonly params: TransferParams,
    withOack: boolean,
    private readonly maxRetries: number,
  ) {
    // A transfer always ends with a short block, empty when the size is a multiple of blksize.
    this.totalBlocks = Math.floor(size / params.blksize) + 1;
    this.phase = withOack ? 'oack' : 'data';
  }

  get finished(): boolean {
    return this.phase === 'done' || this.phase === 'failed';
  }

  /** Byte range of an absolute block within the file. */
  blockRange(block: number): { offset: number; length: number } {
    const offset = (block - 1) * this.params.blksize;
    return { offset, length: Math.max(0, Math.min(this.params.blksize, this.size - offset)) };
  }

  start(): SessionAction {
    return this.phase === 'oack' ? { type: 'send-oack' } : this.window();
  }

  onAck(wireBlock: number): SessionAction {
    if (this.finished) return { type: 'none', reason: 'transfer finished' };
    if (this.phase === 'oack') {
      if (wireBlock !== 0) return { type: 'none', reason: 'expected ACK 0 after OACK' };
      this.phase = 'data';
      this.retries = 0;
      return this.window();
    }
    const last = this.windowEnd();
    // The window is at most 64 blocks, so a 16-bit number maps to one absolute block in range.
    for (let abs = this.base - 1; abs <= last; abs++) {
      if ((abs & 0xffff) !== wireBlock) continue;
      // A repeated ACK of what we already had must not trigger a resend (Sorcerer's Apprentice).
      if (abs === this.base - 1) return { type: 'none', reason: 'duplicate ACK' };
      this.base = abs + 1;
      this.retries = 0;
      if (abs === this.totalBlocks) {
        this.phase = 'done';
        return { type: 'done' };
      }
      return this.window();
    }
    return { type: 'none', reason: 'ACK outside the window' };
  }

  onClientError(message: string): SessionAction {
    if (this.finished) return { type: 'none', reason: 'transfer finished' };
    this.phase = 'failed';
    return { type: 'fail', reason: `client sent ERROR: ${message}` };
  }

  onTimeout(): SessionAction {
    if (this.finished) return { type: 'none', reason: 'transfer finished' };
    this.retries++;
    if (this.retries > this.maxRetries) {
      this.phase = 'failed';
      return { type: 'fail', reason: `no ACK after ${this.maxRetries} retransmissions` };
    }
    this.retransmits++;
    return this.phase === 'oack' ? { type: 'send-oack' } : this.window();
  }

  private windowEnd(): number {
    return Math.min(this.base + this.params.windowsize - 1, this.totalBlocks);
  }

  private window(): SessionAction {
    const blocks: number[] = [];
    for (let b = this.base; b <= this.windowEnd(); b++) blocks.push(b);
    return { type: 'send-blocks', blocks };
  }
}
