/**
 * What the commands share: the peer options of serve, sync and shell, signal handling, peer
 * addresses typed on the command line looked up to IPs, and (for the commands that import them
 * from here) the option parsers, which live in bin/options.ts.
 */
import type { Command } from 'commander';
import { closeSync, openSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { SwarmError, ERROR_CODES } from '../../lib/errors.js';
import { addressText } from '../../lib/types.js';
import { DEFAULT_PEER_PORT, DEFAULT_TRACKER_PORT } from '../../lib/constants.js';
import { addressOption, listenHostOption, logFileOption, parseAddress, portOption, threadsOption, uploadRateOption } from '../options.js';

export { boundedInt, intOption, positiveNumber, portOption, seedOption } from '../options.js';
export { addressText } from '../../lib/types.js';

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

/** `--tracker X` with `--no-tracker`: commander keeps whichever came last; say it instead (bin/options.ts crossChecks does it for every command; kept for callers). */
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
    .option('--host <host>', 'address to listen on (0.0.0.0: every interface)', listenHostOption, '127.0.0.1')
    .option('-t, --tracker <host:port>', o.tracker, addressOption)
    .option('--tracker-port <port>', 'port of the embedded tracker', portOption, DEFAULT_TRACKER_PORT)
    .option('--no-tracker', 'no tracker at all (find peers with --neighbor / --lan)')
    .option('--threads <n>', 'hashing threads, 0 to 256 (0: hash on the main thread)', threadsOption)
    .option('--max-upload <MiB/s>', 'upload limit for all peers together, MiB per second (0.01 to 1048576)', uploadRateOption)
    .option('--log <file>', 'append one line per event to this file', logFileOption);
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


/** How long a name typed on the command line may take to look up. */
const LOOKUP_MS = 10_000;

/**
 * Peers typed on the command line (`--peer`, `--neighbor`) with host names looked up once, at
 * start, to every address they have (`localhost` may be ::1 and 127.0.0.1; the one that does not
 * answer is dropped like any dead holder): a peer is then IPs and ports everywhere, in `--json`'s
 * `ip` fields too (never a name), and `--peer localhost:7070 --peer 127.0.0.1:7070` is not two
 * peers. A name that does not exist is a usage error naming the option (exit 2), before anything
 * runs; a lookup that fails for now (EAI_AGAIN) or takes over LOOKUP_MS is exit 4 (no peers).
 */
export async function resolvePeerAddresses(list: string[], option: string): Promise<{ ip: string; port: number }[]> {
  const out = new Map<string, { ip: string; port: number }>();
  for (const v of list) {
    const a = parseAddress(v, false);
    if (typeof a === 'string') throw new SwarmError(ERROR_CODES.USAGE, `${option} ${v}: ${a}`);
    const port = a.port ?? DEFAULT_PEER_PORT;
    for (const ip of isIP(a.host) ? [a.host] : await lookupAll(a.host, `${option} ${v}`)) {
      const r = { ip, port };
      out.set(addressText(r), r);
    }
  }
  return [...out.values()];
}

async function lookupAll(host: string, what: string): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${LOOKUP_MS / 1000} s`), { code: 'ETIMEOUT' })), LOOKUP_MS);
  });
  try {
    return [...new Set((await Promise.race([lookup(host, { all: true }), late])).map((r) => r.address))];
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = `cannot resolve ${host} (${code ?? (err as Error).message})`;
    // only a name that does not exist is the user's mistake; a resolver that fails now is the network's
    throw new SwarmError(code === 'ENOTFOUND' ? ERROR_CODES.USAGE : ERROR_CODES.NO_PEERS, `${what}: ${why}`);
  } finally {
    clearTimeout(timer);
  }
}
