// Figures and tables for the benchmarks' output.

/** Nearest-rank percentile (p in 0..100) of the values; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
}

export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    min: values.length ? Math.min(...values) : NaN,
    max: values.length ? Math.max(...values) : NaN,
  };
}

const cell = (v: unknown): string => {
  if (typeof v === 'number') return Number.isNaN(v) ? '-' : Number.isInteger(v) ? String(v) : v.toFixed(1);
  return typeof v === 'string' ? v : v === undefined || v === null ? '-' : JSON.stringify(v);
};

/** A plain-text table with columns padded to their widest cell. */
export function table(head: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const text = [head.map(String), ...rows.map((r) => r.map(cell))];
  const widths = head.map((_, i) => Math.max(...text.map((r) => (r[i] ?? '').length)));
  return text.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

export const say = (m: string): void => void process.stderr.write(`${m}\n`);
