/** Plain aligned columns: readable in a terminal and stable for tests. */
export function table(headers: string[], rows: (string | number | boolean | null | undefined)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const json = (v: unknown): string => JSON.stringify(v, null, 2) + '\n';
