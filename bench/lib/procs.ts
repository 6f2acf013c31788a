/**
 * Bench helpers: fresh random data files, `swarm serve` processes, timed child commands (peak RSS
 * and CPU through GNU time when present), byte-for-byte comparison. Every process started here is
 * stopped by PID in `stopAll()`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, writeSync, mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const SWARM_BIN = fileURLToPath(new URL('../../bin/swarm.js', import.meta.url));
export const HAVE_GNU_TIME = existsSync('/usr/bin/time');

const children = new Set<ChildProcess>();

export function stopAll(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
}
process.on('exit', stopAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => {
  stopAll();
  process.exit(130);
});

/** Write `bytes` of fresh random data (not reused between runs of the bench). */
export function makeRandomFile(path: string, bytes: number): void {
  const buf = Buffer.allocUnsafe(64 << 20);
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

export function filesEqual(a: string, b: string): boolean {
  const fa = openSync(a, 'r');
  const fb = openSync(b, 'r');
  const ba = Buffer.allocUnsafe(16 << 20);
  const bb = Buffer.allocUnsafe(16 << 20);
  try {
    for (let pos = 0; ; pos += ba.length) {
      const na = readSync(fa, ba, 0, ba.length, pos);
      const nb = readSync(fb, bb, 0, bb.length, pos);
      if (na !== nb) return false;
      if (na === 0) return true;
      if (!ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

/** Start `swarm serve DIR --json ...`; resolves with its port once it serves. */
export function startServe(dir: string, extra: string[] = [], cmdPrefix: string[] = []): Promise<{ port: number; child: ChildProcess }> {
  const argv = [...cmdPrefix, process.execPath, SWARM_BIN, 'serve', dir, '--json', '--no-tracker', ...extra];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const o = JSON.parse(line);
        if (o.event === 'serving') resolve({ port: o.port, child });
      } catch {
        // not JSON
      }
    });
    child.on('exit', (code) => reject(new Error(`swarm serve exited with ${code}`)));
  });
}

export interface Timed {
  seconds: number;
  maxRssMB: number | null;
  cpuSeconds: number | null;
  code: number | null;
}

/** Run a command to completion, timing it; GNU time adds peak RSS and user+sys CPU. */
export function timed(argv: string[], opts: { cwd?: string } = {}): Timed {
  const full = HAVE_GNU_TIME ? ['/usr/bin/time', '-f', '@@TIME %e %M %U %S', ...argv] : argv;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(full[0]!, full.slice(1), { cwd: opts.cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const m = /@@TIME ([\d.]+) (\d+) ([\d.]+) ([\d.]+)/.exec(r.stderr ?? '');
  if (r.status !== 0) process.stderr.write(`command failed (${r.status}): ${argv.join(' ')}\n${(r.stderr ?? '').slice(-2000)}\n`);
  return {
    seconds: m ? Number(m[1]) : wall,
    maxRssMB: m ? Number(m[2]) / 1024 : null,
    cpuSeconds: m ? Number(m[3]) + Number(m[4]) : null,
    code: r.status,
  };
}

export function ensureDir(d: string): string {
  mkdirSync(d, { recursive: true });
  return d;
}
