/** Human output helpers for the CLI: sizes, rates, times, tables, NDJSON. */

export function humanBytes(n: number): string {
  if (n < 0) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(n)} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** "1 file", "2 files": a count with its noun, singular or plural. */
export function count(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}

export function humanRate(bytesPerSec: number): string {
  return `${humanBytes(bytesPerSec)}/s`;
}

export function humanTime(mtimeSec: number): string {
  return new Date(mtimeSec * 1000).toISOString().replace('T', ' ').slice(0, 19);
}

export function printTable(headers: string[], rows: string[][], rightAlign: number[] = []): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (rightAlign.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  process.stdout.write(fmt(headers) + '\n');
  for (const r of rows) process.stdout.write(fmt(r) + '\n');
}

/** "ip:port" or "[v6]:port" as the {ip, port} object every --json peer list uses. */
export function peerAddress(a: string): { ip: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(a) ?? /^([^:]+):(\d+)$/.exec(a);
  return m ? { ip: m[1]!, port: Number(m[2]) } : { ip: a, port: 0 };
}

/** True for a peer's "ip:port" / "[v6]:port" (not prose like "tracker 1.2.3.4:7077"). */
export function isAddress(a: string): boolean {
  return /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):\d{1,5}$/.test(a);
}

export function ndjson(obj: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

export { printable } from '../lib/text.js';
