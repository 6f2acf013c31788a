/**
 * What every bench prints around its tables and keeps of a run: the machine line, and the JSON
 * record written to bench/results/ (git-ignored; `--results DIR` puts it elsewhere).
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDir } from './files.js';

/** bench/results of this checkout (from dist/bench/lib/report.js or bench/lib/report.ts). */
export const DEFAULT_RESULTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..', 'bench/results');

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.availableParallelism()} cores (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.type()} ${os.release()}, node ${process.version}`;
}

/** Write `data` as DIR/NAME-<time>.json; returns the path. */
export function writeResults(dir: string, name: string, started: Date, data: unknown): string {
  const file = path.join(ensureDir(dir), `${name}-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ machine: machine(), started, ...(data as object) }, null, 2));
  return file;
}

/** A path as printed: relative to the working folder when inside it, else absolute. */
export function shownPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') ? rel : p;
}
