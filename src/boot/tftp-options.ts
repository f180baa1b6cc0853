/** Option negotiation (RFC 2347): which requested options we acknowledge, and with what values. */

export interface TransferParams {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
}

export interface Negotiated {
  params: TransferParams;
  /** Options to put in the OACK; empty means no OACK (plain RFC 1350 transfer). */
  oack: Record<string, string>;
}

export const BLKSIZE_MIN = 8;
export const BLKSIZE_MAX = 65464;
/** A window bigger than this only adds loss on a busy LAN; clients accept a smaller value in the OACK. */
export const WINDOWSIZE_MAX = 64;

const intOption = (value: string, min: number, max: number): number | undefined => {
  if (!/^\d{1,6}$/.test(value)) return undefined;
  const n = Number(value);
  return n >= min && n <= max ? n : undefined;
};

/**
 * Options we cannot honour are left out of the OACK rather than refused (RFC 2347 allows that),
 * so a client asking for something odd still gets its file with defaults.
 */
export function negotiate(requested: Record<string, string>, fileSize: number, defaults: { timeoutMs: number }): Negotiated {
  const params: TransferParams = { blksize: 512, windowsize: 1, timeoutMs: defaults.timeoutMs };
  const oack: Record<string, string> = {};
  for (const [name, value] of Object.entries(requested)) {
    switch (name) {
      case 'blksize': {
        // A request above our maximum is answered with the maximum (RFC 2348); below 8 is ignored.
        if (!/^\d{1,6}$/.test(value) || Number(value) < BLKSIZE_MIN) break;
        params.blksize = Math.min(Number(value), BLKSIZE_MAX);
        oack.blksize = String(params.blksize);
        break;
      }
      case 'timeout': {
        const n = intOption(value, 1, 255);
        if (n === undefined) break;
        params.timeoutMs = n * 1000;
        oack.timeout = String(n);
        break;
      }
      case 'tsize':
        // In a read request the client sends 0 and we answer with the size.
        if (!/^\d{1,20}$/.test(value)) break;
        oack.tsize = String(fileSize);
        break;
      case 'windowsize': {
        if (!/^\d{1,6}$/.test(value) || Number(value) < 1 || Number(value) > 65535) break;
        params.windowsize = Math.min(Number(value), WINDOWSIZE_MAX);
        oack.windowsize = String(params.windowsize);
        break;
      }
      default:
        break;
    }
  }
  return { params, oack };
}
