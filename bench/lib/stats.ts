/** Small helpers shared by the benchmarks: medians, spread, and a plain-text table. */

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Spread as ± half the range, in percent of the median. */
export function spreadPct(xs: number[]): number {
  const med = median(xs);
  if (med === 0) return 0;
  return ((Math.max(...xs) - Math.min(...xs)) / 2 / med) * 100;
}

export function fmt(x: number, digits = 1): string {
  return x.toFixed(digits);
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  return [line(cells[0]!), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...cells.slice(1).map(line)].join('\n');
}
