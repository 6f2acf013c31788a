/** Option parsers and signal handling shared by the commands. */
import { InvalidArgumentError, type Command } from 'commander';
import { closeSync, openSync } from 'node:fs';
import { SwarmError, ERROR_CODES } from '../../lib/errors.js';
import { DEFAULT_TRACKER_PORT } from '../../lib/constants.js';

export function intOption(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
}

/** A whole number within [min, max] (what the option can sensibly take). */
export function boundedInt(min: number, max: number, unit = ''): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}${unit}`);
    return n;
  };
}

/** A number above 0 (a rate, a size). */
export function positiveNumber(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number above 0');
  return n;
}

/**
 * A log file the user named must be writable now: opening it later and failing silently would
 * log nothing while the user thinks it does.
 */
export function checkLogFile(file: string): void {
  try {
    closeSync(openSync(file, 'a'));
  } catch (err) {
    throw new SwarmError(ERROR_CODES.USAGE, `cannot write the log file ${file}: ${(err as Error).message}`);
  }
}

/** A TCP port: 0 (any free one) to 65535. */
export function portOption(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number, 0 to 65535');
  return n;
}

/** `--seed` alone (until Ctrl-C) or `--seed SECONDS` (a positive number). */
export function seedOption(v: string | undefined): number | true {
  if (v === undefined) return true;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number of seconds above 0');
  return n;
}

export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/**
 * Wait for Ctrl-C (SIGINT) or SIGTERM, run `graceful`; a second signal during it runs `force`
 * and rejects with INTERRUPTED. Resolves when `graceful` finishes.
 */
export function onInterrupt(graceful: () => Promise<void>, force: () => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const handler = () => {
      if (!stopping) {
        stopping = true;
        graceful().then(() => {
          process.off('SIGINT', handler);
          process.off('SIGTERM', handler);
          resolve();
        }, reject);
        return;
      }
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      force().finally(() => reject(new SwarmError(ERROR_CODES.INTERRUPTED, 'stopped at once (second interrupt)')));
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}

/** `--tracker X` with `--no-tracker`: commander keeps whichever came last; say it instead. */
export function refuseTrackerConflict(argv: string[] = process.argv): void {
  if (argv.includes('--no-tracker') && argv.some((a) => a === '--tracker' || a === '-t' || a.startsWith('--tracker='))) {
    throw new SwarmError(ERROR_CODES.USAGE, '--tracker and --no-tracker contradict each other');
  }
}

/** What `serve`, `sync` and `shell` share: where to listen, the tracker, threads, upload cap, log. */
export interface PeerCliOptions {
  port?: number;
  host: string;
  tracker?: string | boolean;
  trackerPort: number;
  threads?: number;
  maxUpload?: number;
  log?: string;
}

export function addPeerOptions(cmd: Command, o: { port: string; defaultPort?: number; tracker: string }): Command {
  const port = o.defaultPort !== undefined ? cmd.option('-p, --port <port>', o.port, portOption, o.defaultPort) : cmd.option('-p, --port <port>', o.port, portOption);
  return port
    .option('--host <host>', 'address to listen on (0.0.0.0: every interface)', '127.0.0.1')
    .option('-t, --tracker <host:port>', o.tracker)
    .option('--tracker-port <port>', 'port of the embedded tracker', portOption, DEFAULT_TRACKER_PORT)
    .option('--no-tracker', 'no tracker at all (find peers with --neighbor / --lan)')
    .option('--threads <n>', 'hashing threads (0: hash on the main thread)', intOption)
    .option('--max-upload <MiB/s>', 'upload limit for all peers together, MiB per second', positiveNumber)
    .option('--log <file>', 'append one line per event to this file');
}

/** The node options those flags give (the log file is opened by the command). */
export function peerNodeOptions(o: PeerCliOptions): { port?: number; host: string; tracker?: string; noTracker: boolean; trackerPort: number; threads?: number; maxUploadBytesPerSec?: number } {
  return {
    ...(o.port !== undefined ? { port: o.port } : {}),
    host: o.host,
    ...(typeof o.tracker === 'string' ? { tracker: o.tracker } : {}),
    noTracker: o.tracker === false,
    trackerPort: o.trackerPort,
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
    ...(o.maxUpload && o.maxUpload > 0 ? { maxUploadBytesPerSec: Math.round(o.maxUpload * 2 ** 20) } : {}),
  };
}
