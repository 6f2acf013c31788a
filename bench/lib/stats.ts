/**
 * Numbers and tables shared by the benches: medians, spread, the one rate unit, plain-text tables.
 *
 * Units, the same in every bench: rates in MB/s = 10^6 bytes per second (so a 100 Mbit/s link is
 * 12.5 MB/s); sizes and memory in MiB and GiB = 2^20 and 2^30 bytes; CPU in seconds per GiB moved.
 * `mbps` is the only place a rate is computed; `UNITS` is the line each table's header carries.
 */

export const UNITS = 'MB/s = 10^6 bytes/s; MiB, GiB = 2^20, 2^30 bytes';

/** The one rate unit: MB/s = 10^6 bytes per second. */
export function mbps(bytes: number, seconds: number): number {
  return bytes / 1e6 / seconds;
}

export const MiB = 2 ** 20;
export const GiB = 2 ** 30;

/** "4 MiB", "1 GiB", "1.5 GiB" */
export function sizeText(bytes: number): string {
  if (bytes >= GiB) return `${+(bytes / GiB).toFixed(2)} GiB`;
  if (bytes >= MiB) return `${+(bytes / MiB).toFixed(2)} MiB`;
  return `${+(bytes / 1024).toFixed(2)} KiB`;
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Spread as ± half the range, in percent of the median. */
export function spreadPct(xs: number[]): number {
  const med = median(xs);
  if (!xs.length || med === 0) return 0;
  return ((Math.max(...xs) - Math.min(...xs)) / 2 / med) * 100;
}

/** A number with `digits` decimals; '—' for no value (NaN, null: nothing was measured). */
export function fmt(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits);
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  return [line(cells[0]!), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...cells.slice(1).map(line)].join('\n');
}
