/**
 * Child processes for tests: `swarm serve` peers and `swarm get` runs, each stopped at teardown
 * by its PID. Waits on output lines, never on sleeps.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const SWARM_BIN = fileURLToPath(new URL('../../bin/swarm.js', import.meta.url));

export interface Proc {
  child: ChildProcess;
  lines: string[];
  /** Resolves with the first stdout line (JSON) matching `pred`. */
  waitFor(pred: (o: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(sig?: NodeJS.Signals): void;
  /** Everything written to stderr so far. */
  stderr(): string;
}

export function swarm(t: { teardown(fn: () => unknown): void }, args: string[], cwd?: string): Proc {
  const child = spawn(process.execPath, [SWARM_BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: { pred: (o: Record<string, unknown>) => boolean; resolve: (o: Record<string, unknown>) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line);
    } catch {
      return;
    }
    for (const w of [...waiters]) {
      if (w.pred(o)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(o);
      }
    }
  });
  const stderr: string[] = [];
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return exit;
  });
  return {
    child,
    lines,
    exit,
    kill: (sig = 'SIGTERM') => child.kill(sig),
    stderr: () => stderr.join(''),
    waitFor(pred, ms = 20_000) {
      for (const line of lines) {
        try {
          const o = JSON.parse(line);
          if (pred(o)) return Promise.resolve(o);
        } catch {
          // not JSON
        }
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting on swarm ${args.join(' ')}; stderr: ${stderr.join('')}`)), ms);
        waiters.push({
          pred,
          resolve: (o) => {
            clearTimeout(timer);
            resolve(o);
          },
        });
        void exit.then(() => {
          clearTimeout(timer);
          reject(new Error(`swarm ${args.join(' ')} exited; stderr: ${stderr.join('')}`));
        });
      });
    },
  };
}

/** Start `swarm serve DIR --json` and wait until it serves; returns its peer port. */
export async function servePeer(t: { teardown(fn: () => unknown): void }, dir: string, extra: string[] = []): Promise<{ proc: Proc; port: number }> {
  const proc = swarm(t, ['serve', dir, '--port', '0', '--json', '--threads', '1', ...extra]);
  const ev = await proc.waitFor((o) => o.event === 'serving');
  return { proc, port: ev.port as number };
}
