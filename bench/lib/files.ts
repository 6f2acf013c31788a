/**
 * Files of the benches: fresh random data, the byte check of a downloaded copy against its source
 * (SHA-256 of the source computed once, of each copy after it is written), and deleting a bench's
 * folders only after every process it started has exited.
 *
 * For tests only: with SWARM_BENCH_CORRUPT_ONE_BYTE=1 in the environment, the first copy a bench
 * checks has one byte flipped just before it is hashed, so that check fails, the "bytes ok" column
 * shows it and the bench exits non-zero (test/bench.test.ts proves the check can fail).
 */
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import type { Procs } from './procs.js';

export const CORRUPT_ENV = 'SWARM_BENCH_CORRUPT_ONE_BYTE';

export function ensureDir(d: string): string {
  mkdirSync(d, { recursive: true });
  return d;
}

/** Write `bytes` of fresh random data (never reused between runs of a bench). */
export function makeRandomFile(path: string, bytes: number): void {
  const buf = Buffer.allocUnsafe(Math.min(bytes, 16 << 20) || 1);
  const fd = openSync(path, 'w');
  try {
    for (let at = 0; at < bytes; at += buf.length) {
      const n = Math.min(buf.length, bytes - at);
      randomFillSync(buf, 0, n);
      writeSync(fd, buf, 0, n, at);
    }
  } finally {
    closeSync(fd);
  }
}

/** SHA-256 of a file (hex), or null when it cannot be read (missing: a failed download). */
export function sha256File(path: string): Promise<string | null> {
  return new Promise((resolve) => {
    const h = createHash('sha256');
    const s = createReadStream(path, { highWaterMark: 4 << 20 });
    s.on('data', (d) => h.update(d));
    s.on('error', () => resolve(null));
    s.on('end', () => resolve(h.digest('hex')));
  });
}

let corruptNext = process.env[CORRUPT_ENV] === '1';

/** Flip the middle byte of `path` in place (the test hook above). */
export function flipOneByte(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    const at = Math.floor(fstatSync(fd).size / 2);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

/** The source's hash, computed once; `matches(copy)` hashes a downloaded copy and compares. */
export class SourceHash {
  private constructor(
    readonly path: string,
    readonly sha256: string,
  ) {}

  static async of(path: string): Promise<SourceHash> {
    const h = await sha256File(path);
    if (h === null) throw new Error(`cannot read ${path}`);
    return new SourceHash(path, h);
  }

  async matches(copy: string): Promise<boolean> {
    if (corruptNext) {
      corruptNext = false;
      try {
        flipOneByte(copy);
        process.stderr.write(`${CORRUPT_ENV}=1: flipped one byte of ${copy} before checking it\n`);
      } catch {
        // no copy to corrupt: it fails its check anyway
      }
    }
    return (await sha256File(copy)) === this.sha256;
  }
}

/** Passed and made byte checks, for a "bytes ok" column. */
export class Checks {
  ok = 0;
  made = 0;
  add(passed: boolean): boolean {
    this.made++;
    if (passed) this.ok++;
    return passed;
  }
  get failed(): number {
    return this.made - this.ok;
  }
  toString(): string {
    return `${this.ok}/${this.made}`;
  }
}

/**
 * Delete `paths` once every process of `procs` has exited (stopped by PID, exits awaited); when
 * one would not exit, keep them and say so. Returns true when they were deleted.
 */
export async function removeAfterStop(procs: Procs, paths: string[]): Promise<boolean> {
  if (!(await procs.stopAll())) {
    process.stderr.write(`some processes would not exit: kept ${paths.join(', ')}\n`);
    return false;
  }
  for (const p of paths) rmSync(p, { recursive: true, force: true, maxRetries: 3 });
  return true;
}
