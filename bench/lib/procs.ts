/**
 * Processes a bench starts. `Procs` tracks every child by PID: `stop` sends SIGTERM, then SIGKILL
 * after a grace period, and resolves once the child has exited, so a bench deletes nothing a
 * process may still be writing (a `swarm serve` writes DIR/.swarm). `runMain` is every bench's
 * entry: Ctrl-C aborts the run (the bench stops its processes and prints what it measured), a
 * second Ctrl-C kills at once; whatever still runs at exit is killed by PID. Also here: a
 * `swarm serve` seeder (resolves with its port) and timed runs of a command (peak RSS and CPU
 * through GNU time when present).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Aborted, within } from './wait.js';

// NODE_EXTRA_CA_CERTS (set on some machines, this one included, for TLS through a proxy) makes
// every Node process parse a certificate store at start: ~0.1 CPU s each, measured, and neither
// swarm nor any tool a bench runs uses TLS. The processes a bench starts go without it, as on a
// machine that does not set it.
delete process.env.NODE_EXTRA_CA_CERTS;

export const SWARM_BIN = fileURLToPath(new URL('../../bin/swarm.js', import.meta.url));
export const GNU_TIME = '/usr/bin/time';
export const HAVE_GNU_TIME = existsSync(GNU_TIME);

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
  /** resolves when its stdout and stderr are closed too (all lines seen) */
  closed: Promise<void>;
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
    let resolveClosed!: () => void;
    const p: Proc = {
      name,
      argv,
      child,
      pid: child.pid ?? -1,
      exited: new Promise<Exit>((r) => (resolveExit = r)),
      closed: new Promise<void>((r) => (resolveClosed = r)),
      exit: null,
      tail: [],
    };
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
      resolveClosed();
    });
    child.on('exit', (code, signal) => done({ code, signal }));
    child.on('close', () => resolveClosed());
    this.live.add(p);
    return p;
  }

  /**
   * Stop one process by PID: SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited
   * (true), or false when even SIGKILL did not end it within 10 s (then nothing it used should be
   * deleted).
   */
  async stop(p: Proc, graceMs = 3000): Promise<boolean> {
    if (p.exit) return true;
    sendSignal(p.pid, 'SIGTERM');
    if ((await within(p.exited, graceMs, null)) !== null) return true;
    sendSignal(p.pid, 'SIGKILL');
    return (await within(p.exited, 10_000, null)) !== null;
  }

  /** Stop every process still running, in parallel; true when all have exited. */
  async stopAll(graceMs = 3000): Promise<boolean> {
    const rs = await Promise.all([...this.live].map((p) => this.stop(p, graceMs)));
    return rs.every(Boolean);
  }

  /** Last resort from an 'exit' handler or a second Ctrl-C: SIGKILL every process still running. */
  killAllSync(): void {
    for (const p of this.live) sendSignal(p.pid, 'SIGKILL');
  }

  get running(): number {
    return this.live.size;
  }
}

function sendSignal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone; its 'exit' follows
  }
}

/** PIDs of the direct children of `pid` (Linux /proc), none when unreadable. */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function tailOf(p: Proc | undefined, lines = 8): string {
  return p ? p.tail.slice(-lines).map((l) => `    ${l}`).join('\n') : '';
}

export interface Run {
  procs: Procs;
  /** aborted on the first Ctrl-C or SIGTERM */
  signal: AbortSignal;
  /** a synchronous cleanup (deleting namespaces) for exit and a second Ctrl-C; returns its remover */
  atExit(fn: () => void): () => void;
}

/**
 * A bench's entry point: runs `main`, then stops every process it left (awaiting their exits), and
 * exits with main's code (130 after Ctrl-C, 1 when main threw).
 */
export function runMain(name: string, main: (run: Run) => Promise<number>): void {
  const procs = new Procs();
  const abort = new AbortController();
  const cleanups = new Set<() => void>();
  const cleanUp = () => {
    procs.killAllSync();
    for (const fn of cleanups) fn();
    cleanups.clear();
  };
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals === 1) {
      process.stderr.write(`\n${name}: ${sig}: stopping every process, then printing what was measured (again to quit at once)\n`);
      abort.abort();
      return;
    }
    cleanUp();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', cleanUp);
  const run: Run = {
    procs,
    signal: abort.signal,
    atExit(fn) {
      cleanups.add(fn);
      return () => cleanups.delete(fn);
    },
  };
  main(run)
    .catch((e: unknown) => {
      if (e instanceof Aborted) return 130;
      console.error(`${name}: ${(e as Error)?.stack ?? String(e)}`);
      return 1;
    })
    .then(async (code) => {
      await procs.stopAll();
      process.exit(abort.signal.aborted ? 130 : code);
    });
}

/** Start `swarm serve DIR --json --no-tracker ...`; resolves with its port once it serves. */
export async function startServe(procs: Procs, dir: string, extra: string[] = [], cmdPrefix: string[] = [], timeoutMs = 300_000): Promise<{ port: number; proc: Proc }> {
  let port = 0;
  let onServing!: () => void;
  const serving = new Promise<void>((r) => (onServing = r));
  const argv = [...cmdPrefix, process.execPath, SWARM_BIN, 'serve', dir, '--json', '--no-tracker', ...extra];
  const proc = procs.start(`swarm serve ${dir}`, argv, {
    onLine: (line) => {
      if (!line.includes('"serving"')) return;
      try {
        const o = JSON.parse(line) as { event?: string; port?: number };
        if (o.event === 'serving' && typeof o.port === 'number') {
          port = o.port;
          onServing();
        }
      } catch {
        // not JSON
      }
    },
  });
  const r = await within(Promise.race([serving.then(() => 'serving' as const), proc.exited.then(() => 'exited' as const)]), timeoutMs, 'timeout' as const);
  if (r !== 'serving') {
    await procs.stop(proc);
    throw new Error(`swarm serve ${dir} ${r === 'exited' ? `exited (${proc.exit?.code ?? proc.exit?.signal})` : `did not serve within ${timeoutMs / 1000} s`}\n${tailOf(proc)}`);
  }
  return { port, proc };
}

export interface Timed {
  seconds: number;
  /** peak RSS in MiB (GNU time), null without it */
  maxRssMiB: number | null;
  /** user + system CPU seconds (GNU time), null without it */
  cpuSeconds: number | null;
  code: number | null;
  /** the command's last output lines (its stdout included) */
  tail: string[];
}

/**
 * Run a command to completion and time it; GNU time adds peak RSS and user+sys CPU. The child is
 * one of `procs` (a Ctrl-C stops it by PID); the event loop keeps running meanwhile, so seeders'
 * output keeps being read.
 */
export async function timed(procs: Procs, argv: string[], signal?: AbortSignal): Promise<Timed> {
  const full = HAVE_GNU_TIME ? [GNU_TIME, '-f', '@@TIME %e %M %U %S', ...argv] : argv;
  const t0 = process.hrtime.bigint();
  const p = procs.start(argv.join(' ').slice(0, 80), full);
  // GNU time does not pass SIGTERM on (it would exit and leave the command running): the
  // command, its one child, is stopped first, by PID, then time itself
  const onAbort = () => {
    if (HAVE_GNU_TIME) for (const pid of childPids(p.pid)) sendSignal(pid, 'SIGTERM');
    void procs.stop(p);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const exit = await p.exited;
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  signal?.removeEventListener('abort', onAbort);
  await within(p.closed, 2000, null);
  if (signal?.aborted) throw new Aborted();
  const line = [...p.tail].reverse().find((l) => l.startsWith('@@TIME '));
  const m = line ? /@@TIME [\d.]+ (\d+) ([\d.]+) ([\d.]+)/.exec(line) : null;
  if (exit.code !== 0) process.stderr.write(`command failed (${exit.code ?? exit.signal}): ${argv.join(' ')}\n${tailOf(p, 12)}\n`);
  return {
    // our own clock: GNU time's %e has 10 ms steps, too coarse for small files
    seconds: wall,
    maxRssMiB: m ? Number(m[1]) / 1024 : null,
    cpuSeconds: m ? Number(m[2]) + Number(m[3]) : null,
    code: exit.code,
    tail: p.tail.filter((l) => l !== line),
  };
}

/**
 * Run a short command to completion (inside a namespace, say), bounded by `timeoutMs`; the child
 * is killed by PID when the time is up. Its stdout is returned whole.
 */
export function runBounded(argv: string[], timeoutMs: number): Promise<{ code: number | null; stdout: Buffer }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => chunks.push(d));
    const t = setTimeout(() => sendSignal(child.pid!, 'SIGKILL'), timeoutMs);
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
