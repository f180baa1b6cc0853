/** One datagram in, one decision out: decode, handle, encode, counting every drop by reason. Never throws. */
import { errorMessage } from '../lib/errors.js';
import { decode, DhcpDecodeError, encode } from './codec.js';
import type { Destination, DhcpHandler } from './handler.js';

export class DhcpStats {
  received = 0;
  replied = 0;
  handled = 0;
  dropped = 0;
  /** Replies the socket refused to send (counted in `replied` too: decided, but never left). */
  sendErrors = 0;
  readonly dropsByReason = new Map<string, number>();

  drop(reason: string): void {
    this.dropped++;
    this.dropsByReason.set(reason, (this.dropsByReason.get(reason) ?? 0) + 1);
  }

  snapshot(): Record<string, number> {
    const out: Record<string, number> = { received: this.received, replied: this.replied, handled: this.handled, dropped: this.dropped, sendErrors: this.sendErrors };
    for (const [reason, n] of this.dropsByReason) out[`drop.${reason}`] = n;
    return out;
  }
}

export type IntakeResult =
  | { kind: 'send'; bytes: Buffer; to: Destination; note: string }
  | { kind: 'done'; note: string }
  | { kind: 'drop'; reason: string; detail?: string };

export async function processDatagram(buf: Buffer, handler: DhcpHandler, stats: DhcpStats): Promise<IntakeResult> {
  stats.received++;
  let result: IntakeResult;
  try {
    const outcome = await handler(decode(buf));
    if (outcome.kind === 'reply') result = { kind: 'send', bytes: encode(outcome.reply), to: outcome.to, note: outcome.note };
    else result = outcome;
  } catch (err) {
    result = err instanceof DhcpDecodeError
      ? { kind: 'drop', reason: err.reason, detail: err.message }
      : { kind: 'drop', reason: 'internal-error', detail: errorMessage(err) };
  }
  if (result.kind === 'drop') stats.drop(result.reason);
  else if (result.kind === 'send') stats.replied++;
  else stats.handled++;
  return result;
}
