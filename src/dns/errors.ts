/** The one error a DNS decoder throws: a short, countable reason for dropping the packet. */
export type DecodeReason =
  | 'short-header'
  | 'too-large'
  | 'truncated'
  | 'bad-count'
  | 'label-type'
  | 'bad-pointer'
  | 'name-too-long'
  | 'bad-rdata'
  | 'bad-opt'
  | 'trailing-data';

export class DnsDecodeError extends Error {
  constructor(readonly reason: DecodeReason, detail: string) {
    super(`malformed DNS message (${reason}): ${detail}`);
    this.name = 'DnsDecodeError';
  }
}
