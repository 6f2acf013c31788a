/**
 * What the full-scale hostile scenarios share: a real `swarm serve` child with DEFAULT limits and
 * its embedded tracker, gauges read from its /proc entry (RSS, sockets, open files) sampled
 * through an attack, and an honest `swarm get` child whose bytes are compared with the file.
 *
 * These run only with `npm run test:hostile` (file names end in .hostile.ts, so `npm test` never
 * picks them up). Each scenario is bounded (under about a minute) and prints its numbers.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { servePeer, swarm } from '../helpers/procs.js';
import { tempDir } from '../helpers/tmp.js';
import { fdCounts, rssBytes, type Teardown } from '../helpers/attack.js';

export const MiB = 1 << 20;

export interface ServeChild {
  pid: number;
  port: number;
  trackerPort: number;
  dir: string;
  files: Record<string, Buffer>;
}

/** `swarm serve` with default limits over a share of `big.bin` (64 MiB) and `mid.bin` (8 MiB). */
export async function startServeChild(t: Teardown): Promise<ServeChild> {
  const dir = tempDir(t, 'swarm-hostile-');
  const files = { 'big.bin': randomBytes(64 * MiB), 'mid.bin': randomBytes(8 * MiB + 12345) };
  for (const [name, bytes] of Object.entries(files)) writeFileSync(path.join(dir, name), bytes);
  const { proc, port } = await servePeer(t, dir, ['--tracker-port', '0']);
  const ev = await proc.waitFor((o) => o.event === 'serving');
  const trackerPort = Number(String(ev.tracker).split(':').pop());
  if (!(trackerPort > 0)) throw new Error(`no embedded tracker: ${JSON.stringify(ev)}`);
  return { pid: proc.child.pid!, port, trackerPort, dir, files };
}

/** An honest `swarm get` child; resolves with its exit code, seconds, and whether the bytes match. */
export async function honestCliGet(t: Teardown, s: ServeChild, name = 'mid.bin'): Promise<{ code: number | null; seconds: number; ok: boolean; output: string }> {
  const out = tempDir(t, 'swarm-hostile-get-');
  const started = Date.now();
  const p = swarm(t, ['get', name, '--peer', `127.0.0.1:${s.port}`, '-o', out, '--json']);
  const { code } = await p.exit;
  const seconds = (Date.now() - started) / 1000;
  let ok = false;
  try {
    ok = readFileSync(path.join(out, name)).equals(s.files[name]!);
  } catch {
    ok = false;
  }
  return { code, seconds, ok, output: code === 0 ? 'done' : (p.lines[p.lines.length - 1] ?? '').slice(0, 300) };
}

export interface Gauges {
  rss: number;
  sockets: number;
  files: number;
  fds: number;
}

export function gauges(pid: number): Gauges {
  const f = fdCounts(pid);
  return { rss: rssBytes(pid), sockets: f.sockets, files: f.files, fds: f.fds };
}

/** Samples a child's gauges every `stepMs` until stopped; keeps the peaks. */
export class Sampler {
  readonly peak: Gauges;
  private readonly timer: NodeJS.Timeout;

  constructor(
    t: Teardown,
    private readonly pid: number,
    stepMs = 100,
  ) {
    this.peak = gauges(pid);
    this.timer = setInterval(() => this.sample(), stepMs);
    t.teardown(() => clearInterval(this.timer));
  }

  sample(): Gauges {
    let g: Gauges;
    try {
      g = gauges(this.pid);
    } catch {
      return this.peak; // the child is gone; the test will say so
    }
    for (const k of Object.keys(g) as (keyof Gauges)[]) this.peak[k] = Math.max(this.peak[k], g[k]);
    return g;
  }

  stop(): Gauges {
    clearInterval(this.timer);
    return this.sample();
  }
}

export const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
