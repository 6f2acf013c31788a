/**
 * The machine's floors for the head-to-head: what the unavoidable steps of a verified download
 * cost here, each measured alone in a child process of its own (its user+sys CPU), so the table's
 * goals can be weighed against them:
 *
 * - seeder: a Node process that does nothing but read the file (1 MiB reads, the callback API)
 *   and write each block to one loopback TCP socket: the copying seeder's floor, two kernel
 *   copies (page cache to buffer, buffer to socket) and the loopback TCP work. swarm's seeders
 *   send complete files by `sendfile` where its native helper is built (the `swarm-copy` row is
 *   them with it off); a bare sendfile sender measured 0.43-0.53 CPU s/GiB on this guest.
 * - write: `writeSync` of the file's size into a new file in 1 MiB blocks, no fsync: the kernel's
 *   page-cache copy every downloader pays (aria2c, curl and cp too).
 * - hash: BLAKE3 of every 1 MiB chunk on one thread (the library swarm uses).
 *
 * The receiving side's floor is the table's own "swarm transport only" row (receive and count).
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GiB } from './stats.js';

const HASHING = fileURLToPath(new URL('../../lib/hashing.js', import.meta.url));

export interface Floors {
  /** CPU s per GiB of a minimal Node seeder (read + socket write) */
  seeder: number;
  /** CPU s per GiB of writing into the page cache */
  write: number;
  /** CPU s per GiB of BLAKE3 over 1 MiB chunks */
  hash: number;
}

const SINK = `
import net from 'node:net';
const srv = net.createServer((s) => { s.on('data', () => {}); s.on('end', () => srv.close()); s.on('error', () => srv.close()); });
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
setTimeout(() => process.exit(3), 120_000).unref();`;

const SENDER = `
import net from 'node:net'; import { openSync, read, fstatSync } from 'node:fs';
const [file, port] = [process.argv[1], Number(process.argv[2])];
const fd = openSync(file, 'r'); const size = fstatSync(fd).size; const BLOCK = 1 << 20;
const bufs = [0, 1, 2, 3].map(() => Buffer.allocUnsafe(BLOCK)); let at = 0, k = 0;
const sock = net.connect(port, '127.0.0.1', () => {
  const next = () => {
    if (at >= size) return sock.end();
    const b = bufs[k++ % bufs.length];
    read(fd, b, 0, BLOCK, at, (err, n) => { if (err || n === 0) return sock.destroy(err ?? undefined); at += n; if (sock.write(b.subarray(0, n))) setImmediate(next); else sock.once('drain', next); });
  };
  next();
});
sock.on('close', () => { const r = process.resourceUsage(); console.log(JSON.stringify({ cpu: (r.userCPUTime + r.systemCPUTime) / 1e6, bytes: at })); });`;

const WRITER = `
import { openSync, writeSync, closeSync, readSync, fstatSync } from 'node:fs';
const [src, dst] = [process.argv[1], process.argv[2]];
const BLOCK = 1 << 20; const buf = Buffer.alloc(BLOCK); const fd0 = openSync(src, 'r'); readSync(fd0, buf, 0, BLOCK, 0); const size = fstatSync(fd0).size; closeSync(fd0);
const before = process.resourceUsage();
const fd = openSync(dst, 'w');
for (let at = 0; at < size; at += BLOCK) writeSync(fd, buf, 0, Math.min(BLOCK, size - at), at);
closeSync(fd);
const r = process.resourceUsage();
console.log(JSON.stringify({ cpu: (r.userCPUTime + r.systemCPUTime - before.userCPUTime - before.systemCPUTime) / 1e6, bytes: size }));`;

const HASHER = `
import { openSync, readSync, fstatSync } from 'node:fs';
const { chunkHash } = await import(process.argv[2]);
const fd = openSync(process.argv[1], 'r'); const size = fstatSync(fd).size; const BLOCK = 1 << 20; const buf = Buffer.alloc(BLOCK);
let cpu = 0;
for (let at = 0; at < size; at += BLOCK) {
  const n = readSync(fd, buf, 0, BLOCK, at);
  const t = process.cpuUsage(); chunkHash(buf.subarray(0, n)); const d = process.cpuUsage(t); cpu += (d.user + d.system) / 1e6;
}
console.log(JSON.stringify({ cpu, bytes: size }));`;

/** Runs `script` (ESM) in a child Node with `args`; resolves with its stdout lines. */
function child(script: string, args: string[], onFirstLine?: (line: string) => void): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const c = spawn(process.execPath, ['--input-type=module', '-e', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env });
    let out = '';
    let first = true;
    const timer = setTimeout(() => c.kill('SIGKILL'), 180_000);
    c.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (first && out.includes('\n')) {
        first = false;
        onFirstLine?.(out.split('\n')[0]!);
      }
    });
    c.on('error', reject);
    c.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`floor probe exited ${code}`));
      else resolve(out.trim().split('\n'));
    });
  });
}

function perGiB(line: string): number {
  const r = JSON.parse(line) as { cpu: number; bytes: number };
  if (!(r.bytes > 0)) throw new Error('floor probe moved no bytes');
  return r.cpu / (r.bytes / GiB);
}

/** Measures the three floors with `file` (already in the page cache); scratch writes go to `dir`. */
export async function measureFloors(file: string, dir: string): Promise<Floors> {
  let senderDone!: Promise<string[]>;
  const sinkDone = child(SINK, [], (port) => {
    senderDone = child(SENDER, [file, port]);
  });
  await sinkDone;
  const seeder = perGiB((await senderDone).at(-1)!);
  const scratch = path.join(dir, 'floor-write.bin');
  let write: number;
  try {
    write = perGiB((await child(WRITER, [file, scratch])).at(-1)!);
  } finally {
    rmSync(scratch, { force: true });
  }
  const hash = perGiB((await child(HASHER, [file, HASHING])).at(-1)!);
  return { seeder, write, hash };
}
