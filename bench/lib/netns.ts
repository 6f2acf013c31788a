/**
 * Helpers for benches that build their own network in namespaces (root only), and run many
 * processes in it:
 *
 * - `createLab`: a hub namespace holding a Linux bridge (with the hub's own address, for
 *   trackers), and one namespace per peer, joined to the bridge by a veth pair. Each veth is
 *   created directly inside its namespaces (`ip link add ... netns A type veth peer ... netns B`),
 *   so no interface ever appears in the host's namespace, and the host's network is untouched.
 *   The peer-side end is shaped with `tc qdisc ... tbf`: that caps the peer's upload (egress from
 *   its namespace); its download is not capped. Addresses are link-local (SUBNET.1 for the hub,
 *   SUBNET.10+i for peer i, /24) and exist only inside these namespaces. `destroy()` deletes the
 *   namespaces, which deletes the veths and the bridge with them; it is synchronous so that it
 *   can run from an 'exit' handler.
 * - `Procs`: child processes started by a bench (usually through `ip netns exec NS`, which execs the
 *   command, so the PID is the command's own), each stopped by PID with SIGTERM, then SIGKILL
 *   after a grace period, its exit awaited (bounded) before the caller deletes anything it used.
 * - Bounded waits (`waitUntil`, `sleep`), all abortable with an AbortSignal (Ctrl-C).
 * - File helpers: fresh random data, streaming SHA-256, one HTTP GET from inside a namespace.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, createReadStream, mkdirSync, openSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';

// ---------------------------------------------------------------------------------------------
// namespaces

export interface TbfSpec {
  /** rate in Mbit/s (10^6 bit/s) */
  rateMbit: number;
  /** bucket size, tc syntax ("64kb" = 64 KiB) */
  burst: string;
  /** longest a packet may wait in the queue, tc syntax ("50ms"); sets the queue limit */
  latency: string;
}

export interface LabPeer {
  index: number;
  ns: string;
  addr: string;
  /** the veth end inside the peer's namespace (shaped) */
  dev: string;
}

export interface Lab {
  prefix: string;
  hub: string;
  hubAddr: string;
  peers: LabPeer[];
  tbf: TbfSpec | null;
  /** argv prefix that runs a command inside namespace `ns` */
  exec(ns: string): string[];
  /** delete every namespace of this lab (idempotent, synchronous) */
  destroy(): void;
}

const IFACE_HUB_BRIDGE = 'fcbr';
const IFACE_PEER = 'fcv0';

export function sh(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status ?? r.signal ?? r.error?.message}): ${(r.stderr ?? '').trim()}`);
  return r.stdout;
}

export function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Why namespaces cannot be used here, or null when they can. */
export function netnsSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, bridge and tc)';
  for (const t of ['ip', 'tc']) if (!which(t)) return `${t} not found (apt-get install -y iproute2)`;
  return null;
}

export function listNetns(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').map((l) => l.split(' ')[0]!.trim()).filter(Boolean);
}

/**
 * Namespaces named PREFIX<pid><role> left behind by a run of the same bench that was killed
 * outright (its PID no longer runs): stop the processes it left in them (by PID, SIGKILL: that run
 * started them and cannot any more), then delete them. Returns the names deleted.
 */
export async function deleteStaleLabs(prefix: string): Promise<string[]> {
  const re = new RegExp(`^${prefix}(\\d+)[a-z]`);
  const gone: string[] = [];
  for (const ns of listNetns()) {
    const m = re.exec(ns);
    if (!m) continue;
    if (isRunning(Number(m[1]))) continue;
    const pids = (spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '').split('\n').map(Number).filter((x) => x > 1);
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await waitUntil(() => pids.every((p) => !isRunning(p)), { timeoutMs: 5000, intervalMs: 50 });
    spawnSync('ip', ['netns', 'del', ns]);
    gone.push(ns);
  }
  return gone;
}

/**
 * Build the lab: hub namespace `${prefix}${pid}h` with bridge and `${subnet}.1/24`; peer i (0-based)
 * in `${prefix}${pid}p${i}` with `${subnet}.${10 + i}/24` on its veth, shaped with `tbf`. On any
 * failure, what was created is deleted before the error is thrown.
 */
export function createLab(opts: { prefix: string; peers: number; subnet: string; tbf: TbfSpec | null }): Lab {
  if (!/^169\.254\.\d{1,3}$/.test(opts.subnet)) throw new Error(`subnet ${opts.subnet}: only link-local 169.254.X is allowed`);
  if (opts.peers < 1 || opts.peers > 240) throw new Error(`peers ${opts.peers}: 1..240`);
  const base = `${opts.prefix}${process.pid}`;
  const hub = `${base}h`;
  const hubAddr = `${opts.subnet}.1`;
  const peers: LabPeer[] = Array.from({ length: opts.peers }, (_, i) => ({ index: i, ns: `${base}p${i}`, addr: `${opts.subnet}.${10 + i}`, dev: IFACE_PEER }));
  const created: string[] = [];
  const destroy = () => {
    // peers first, then the hub (deleting a namespace deletes its veth ends and the bridge)
    for (const ns of [...created].reverse()) spawnSync('ip', ['netns', 'del', ns], { timeout: 30_000 });
    created.length = 0;
  };
  const addNs = (ns: string) => {
    if (listNetns().includes(ns)) spawnSync('ip', ['netns', 'del', ns]); // our own name from an earlier lab of this PID
    sh(['ip', 'netns', 'add', ns]);
    created.push(ns);
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  };
  try {
    addNs(hub);
    sh(['ip', '-n', hub, 'link', 'add', IFACE_HUB_BRIDGE, 'type', 'bridge']);
    sh(['ip', '-n', hub, 'addr', 'add', `${hubAddr}/24`, 'dev', IFACE_HUB_BRIDGE]);
    sh(['ip', '-n', hub, 'link', 'set', IFACE_HUB_BRIDGE, 'up']);
    for (const p of peers) {
      addNs(p.ns);
      const hubEnd = `fcp${p.index}`;
      sh(['ip', 'link', 'add', p.dev, 'netns', p.ns, 'type', 'veth', 'peer', 'name', hubEnd, 'netns', hub]);
      sh(['ip', '-n', hub, 'link', 'set', hubEnd, 'master', IFACE_HUB_BRIDGE]);
      sh(['ip', '-n', hub, 'link', 'set', hubEnd, 'up']);
      sh(['ip', '-n', p.ns, 'addr', 'add', `${p.addr}/24`, 'dev', p.dev]);
      sh(['ip', '-n', p.ns, 'link', 'set', p.dev, 'up']);
      if (opts.tbf) {
        const t = opts.tbf;
        sh(['ip', 'netns', 'exec', p.ns, 'tc', 'qdisc', 'add', 'dev', p.dev, 'root', 'tbf', 'rate', `${t.rateMbit}mbit`, 'burst', t.burst, 'latency', t.latency]);
      }
    }
  } catch (e) {
    destroy();
    throw e;
  }
  return { prefix: base, hub, hubAddr, peers, tbf: opts.tbf, exec: (ns) => ['ip', 'netns', 'exec', ns], destroy };
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ---------------------------------------------------------------------------------------------
// waiting

export class Aborted extends Error {
  constructor() {
    super('interrupted');
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Aborted());
    const onAbort = () => {
      clearTimeout(t);
      reject(new Aborted());
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Poll `cond` every `intervalMs` until it is true (resolves true) or `timeoutMs` passed (false). */
export async function waitUntil(cond: () => boolean | Promise<boolean>, opts: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal }): Promise<boolean> {
  const end = performance.now() + opts.timeoutMs;
  for (;;) {
    if (opts.signal?.aborted) throw new Aborted();
    if (await cond()) return true;
    if (performance.now() >= end) return false;
    await sleep(Math.min(opts.intervalMs ?? 100, Math.max(1, end - performance.now())), opts.signal);
  }
}

/** Resolve with `p`, or with `fallback` after `ms`. */
export function within<T, F>(p: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<F>((r) => (t = setTimeout(() => r(fallback), ms)))]).finally(() => clearTimeout(t));
}

// ---------------------------------------------------------------------------------------------
// processes

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Proc {
  name: string;
  argv: string[];
  child: ChildProcess;
  pid: number;
  /** resolves when the process has exited (never rejects) */
  exited: Promise<Exit>;
  exit: Exit | null;
  /** the last lines of stdout and stderr, for error messages */
  tail: string[];
}

const TAIL_LINES = 40;

export class Procs {
  private readonly live = new Set<Proc>();

  /**
   * Start `argv` (stdin closed; stdout and stderr read line by line: `onLine` sees each stdout line
   * with the time it arrived, and the last lines of both are kept in `tail`).
   */
  start(name: string, argv: string[], opts: { cwd?: string; onLine?: (line: string, atMs: number) => void } = {}): Proc {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let resolveExit!: (e: Exit) => void;
    const exited = new Promise<Exit>((r) => (resolveExit = r));
    const p: Proc = { name, argv, child, pid: child.pid ?? -1, exited, exit: null, tail: [] };
    const keep = (line: string) => {
      p.tail.push(line.length > 400 ? line.slice(0, 400) + '…' : line);
      if (p.tail.length > TAIL_LINES) p.tail.shift();
    };
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const at = performance.timeOrigin + performance.now();
      keep(line);
      opts.onLine?.(line, at);
    });
    createInterface({ input: child.stderr! }).on('line', keep);
    const done = (e: Exit) => {
      if (p.exit) return;
      p.exit = e;
      this.live.delete(p);
      resolveExit(e);
    };
    child.on('error', (err) => {
      keep(`spawn error: ${err.message}`);
      done({ code: -1, signal: null });
    });
    child.on('exit', (code, signal) => done({ code, signal }));
    this.live.add(p);
    return p;
  }

  /**
   * Stop one process by PID: SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited
   * (true), or false when even SIGKILL did not end it within 10 s (then nothing it used should be
   * deleted).
   */
  async stop(p: Proc, graceMs = 2000): Promise<boolean> {
    if (p.exit) return true;
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      // already gone; 'exit' follows
    }
    if ((await within(p.exited, graceMs, null)) !== null) return true;
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    return (await within(p.exited, 10_000, null)) !== null;
  }

  /** Stop every process still running, in parallel; true when all have exited. */
  async stopAll(graceMs = 2000): Promise<boolean> {
    const rs = await Promise.all([...this.live].map((p) => this.stop(p, graceMs)));
    return rs.every(Boolean);
  }

  /** Last resort from an 'exit' handler or a second Ctrl-C: SIGKILL every process still running. */
  killAllSync(): void {
    for (const p of this.live) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  get running(): number {
    return this.live.size;
  }
}

/**
 * Run a short command to completion (inside a namespace, say), bounded by `timeoutMs`; the child
 * is killed by PID when the time is up.
 */
export function runBounded(argv: string[], timeoutMs: number): Promise<{ code: number | null; stdout: Buffer }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => chunks.push(d));
    const t = setTimeout(() => {
      try {
        process.kill(child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, timeoutMs);
    child.on('error', () => {
      clearTimeout(t);
      resolve({ code: -1, stdout: Buffer.alloc(0) });
    });
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout: Buffer.concat(chunks) });
    });
  });
}

const HTTP_GET_SCRIPT = `
const http = require('node:http');
const req = http.get(process.argv[1], { timeout: 3000 }, (res) => {
  const b = [];
  res.on('data', (d) => b.push(d));
  res.on('end', () => { process.stdout.write(Buffer.concat(b)); process.exit(res.statusCode === 200 ? 0 : 2); });
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', () => process.exit(1));
`;

/** One HTTP GET made from inside a namespace (Node cannot enter one itself); the body, or null. */
export async function httpGetIn(nsPrefix: string[], url: string, timeoutMs = 5000): Promise<Buffer | null> {
  const r = await runBounded([...nsPrefix, process.execPath, '-e', HTTP_GET_SCRIPT, url], timeoutMs);
  return r.code === 0 ? r.stdout : null;
}

const TCP_SEND_SCRIPT = `
const net = require('node:net');
const [host, port, bytes] = process.argv.slice(1);
const buf = Buffer.alloc(1 << 20, 0x5a);
const server = net.createServer((s) => {
  s.on('error', () => {});
  let left = Number(bytes);
  const w = () => {
    while (left > 0) {
      const n = Math.min(left, buf.length);
      left -= n;
      if (!s.write(n === buf.length ? buf : buf.subarray(0, n))) return void s.once('drain', w);
    }
    s.end();
    server.close();
  };
  w();
});
server.listen(Number(port), host, () => console.log('listening'));
`;

const TCP_RECEIVE_SCRIPT = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
const t0 = performance.now();
let n = 0;
const s = net.connect(Number(port), host);
s.on('data', (d) => (n += d.length));
s.on('end', () => console.log(JSON.stringify({ bytes: n, seconds: (performance.now() - t0) / 1000 })));
s.on('error', (e) => { console.error(e.message); process.exit(1); });
`;

/**
 * The shaped link, measured: one TCP stream of `bytes` from `from` (which uploads, so its tbf is
 * the limit) to `to`. Resolves with TCP payload bytes per second, or null if it failed.
 */
export async function measureTcp(lab: Lab, procs: Procs, from: LabPeer, to: LabPeer, bytes: number, port = 9009, signal?: AbortSignal): Promise<number | null> {
  let listening = false;
  const server = procs.start('tcp sender', [...lab.exec(from.ns), process.execPath, '-e', TCP_SEND_SCRIPT, from.addr, String(port), String(bytes)], {
    onLine: (l) => (listening ||= l === 'listening'),
  });
  try {
    if (!(await waitUntil(() => listening || !!server.exit, { timeoutMs: 10_000, intervalMs: 20, ...(signal ? { signal } : {}) })) || !listening) return null;
    const r = await runBounded([...lab.exec(to.ns), process.execPath, '-e', TCP_RECEIVE_SCRIPT, from.addr, String(port)], 10_000 + (bytes / 1e6) * 1000);
    const m = r.code === 0 ? (JSON.parse(r.stdout.toString()) as { bytes: number; seconds: number }) : null;
    return m && m.bytes === bytes ? m.bytes / m.seconds : null;
  } finally {
    await procs.stop(server);
  }
}

// ---------------------------------------------------------------------------------------------
// files

export function ensureDir(d: string): string {
  mkdirSync(d, { recursive: true });
  return d;
}

/** Write `bytes` of fresh random data. */
export function writeRandomFile(path: string, bytes: number): void {
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

/** SHA-256 of a file (hex), or null when it cannot be read. */
export function sha256File(path: string): Promise<string | null> {
  return new Promise((resolve) => {
    const h = createHash('sha256');
    const s = createReadStream(path, { highWaterMark: 4 << 20 });
    s.on('data', (d) => h.update(d));
    s.on('error', () => resolve(null));
    s.on('end', () => resolve(h.digest('hex')));
  });
}
