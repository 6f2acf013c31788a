/**
 * Every option value the CLI takes is checked here, once: numbers, ports, addresses, listen hosts,
 * content ids, folders and log files. Each parser is given to commander, so a bad value stops the
 * command before it does anything, with exit 2 and commander's message, which names the option
 * ("option '-p, --port <port>' argument '70000' is invalid. expected a port number, 0 to 65535").
 * Checks that involve several options at once (a tracker and --no-tracker, --seed and
 * --no-share, --lan-port without --lan) are in `crossChecks`, run before any command's action.
 *
 * The placeholder in an option's flags says what kind of value it takes (`<port>`, `<host:port>`,
 * `<n>` ...); test/options.test.ts walks the commander program and tries bad values of each kind
 * on every option, so an option added later is checked the same way without touching the test.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { accessSync, constants as fsc, lstatSync, mkdirSync, rmdirSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { SwarmError, ERROR_CODES } from '../lib/errors.js';

const WHOLE = /^\d+$/;

/** A whole number within [min, max], written as digits only (no "1e3", "0x10", " 7"). */
export function boundedInt(min: number, max: number, unit = ''): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!WHOLE.test(v) || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}${unit}`);
    return n;
  };
}

/** A whole number, 0 or more (a count with no natural upper bound; prefer boundedInt). */
export function intOption(v: string): number {
  const n = Number(v);
  if (!WHOLE.test(v) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a whole number (0 or more)');
  return n;
}

/** A number within [min, max] (decimals allowed): a rate, seconds, days. */
export function boundedNumber(min: number, max: number, what = 'a number'): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^\d*\.?\d+$/.test(v) || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected ${what} from ${min} to ${max}`);
    return n;
  };
}

/** Upload cap, MiB/s: from 0.01 (10 KiB/s; less rounds to nothing) to 1,048,576 (1 TiB/s). */
export const uploadRateOption = boundedNumber(0.01, 1_048_576, 'MiB per second');

/** Kept for the commands that still use it: any number above 0. */
export function positiveNumber(v: string): number {
  const n = Number(v);
  if (!/^\d*\.?\d+$/.test(v) || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number above 0');
  return n;
}

/** A TCP port to listen on: 0 (any free one) to 65535. */
export function portOption(v: string): number {
  const n = Number(v);
  if (!WHOLE.test(v) || n > 65535) throw new InvalidArgumentError('expected a port number, 0 to 65535');
  return n;
}

/** Thread counts: 0 (the main thread) to 256. */
export const threadsOption = boundedInt(0, 256, ' threads');

/** Longest a timer can wait (setTimeout's limit, about 24.8 days), in seconds. */
const MAX_TIMER_SEC = Math.floor((2 ** 31 - 1) / 1000);

/** `--seed` alone (until Ctrl-C) or `--seed SECONDS` (a number above 0, at most ~24 days). */
export function seedOption(v: string | undefined): number | true {
  if (v === undefined) return true;
  const n = Number(v);
  if (!/^\d*\.?\d+$/.test(v) || !Number.isFinite(n) || n <= 0 || n > MAX_TIMER_SEC) throw new InvalidArgumentError(`expected a number of seconds above 0, at most ${MAX_TIMER_SEC}`);
  return n;
}

/** A host name (RFC 1123 labels) or an IP address; a dotted all-digit name must be a real IPv4. */
export function hostProblem(host: string): string | null {
  if (host === '') return 'empty';
  if (isIP(host)) return null;
  if (/^[\d.]+$/.test(host)) return 'not an IPv4 address';
  if (host.length > 253 || !/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/.test(host)) return 'not a host name or IP address';
  return null;
}

/** Where to listen: an IP address or a host name (0.0.0.0: every interface). Never empty (that would be every interface too). */
export function listenHostOption(v: string): string {
  const p = hostProblem(v);
  if (p) throw new InvalidArgumentError(`expected an address to listen on, e.g. 127.0.0.1 or 0.0.0.0 (${p})`);
  return v;
}

/** `host:port`, `[v6]:port`, or (when `defaultPort` is allowed) a bare host; port 1 to 65535. */
export function parseAddress(v: string, portRequired: boolean): { host: string; port: number | null } | string {
  const m = /^\[([^\]]+)\](?::(\d*))?$/.exec(v) ?? /^([^:[\]]*)(?::(.*))?$/.exec(v);
  if (!m) return 'expected host:port, e.g. 10.0.0.5:7070';
  const host = m[1]!;
  const hp = v.startsWith('[') ? (isIP(host) === 6 ? null : 'not an IPv6 address') : hostProblem(host);
  if (hp) return `expected host:port, e.g. 10.0.0.5:7070 (host ${hp})`;
  if (m[2] === undefined) return portRequired ? 'expected host:port, e.g. 10.0.0.5:7070 (the port is missing)' : { host, port: null };
  const port = Number(m[2]);
  if (!WHOLE.test(m[2]) || port < 1 || port > 65535) return 'expected host:port with a port from 1 to 65535';
  return { host, port };
}

/** A peer or tracker to connect to: `host:port` (a bare host takes the default port). */
export function addressOption(v: string): string {
  const a = parseAddress(v, false);
  if (typeof a === 'string') throw new InvalidArgumentError(a);
  return v;
}

/** A repeatable `host:port` (port required): `--peer`, `--neighbor`. */
export function addressList(v: string, prev: string[] = []): string[] {
  const a = parseAddress(v, true);
  if (typeof a === 'string') throw new InvalidArgumentError(a);
  return [...prev, v];
}

/** A repeatable `host:port` where a bare host takes the default port (`get --peer`). */
export function peerList(v: string, prev: string[] = []): string[] {
  return [...prev, addressOption(v)];
}

/** An IPv4 address to send LAN announcements to. */
export function broadcastOption(v: string): string {
  if (isIP(v) !== 4) throw new InvalidArgumentError('expected an IPv4 address, e.g. 192.168.1.255 or 255.255.255.255');
  return v;
}

/**
 * A content id from `swarm who`: 64 hex digits, or its first 8 or more; or `legacy:MTIME`, the
 * version stock seed-002 peers hold (they publish no content id).
 */
export function cidOption(v: string): string {
  if (/^legacy:\d{1,12}$/.test(v)) return v;
  if (!/^[0-9a-fA-F]{8,64}$/.test(v)) throw new InvalidArgumentError('expected a content id: 8 to 64 hex digits (from swarm who NAME), or legacy:MTIME for the version stock seed-002 peers hold');
  return v.toLowerCase();
}

/**
 * The nearest part of `dir` that exists (`dir` itself, or the folder its missing levels would be
 * made in), with the levels still to make; or the error when the walk cannot look (EACCES...).
 */
function existingPart(dir: string): { at: string; isDir: boolean; missing: string[] } | { at: string; error: NodeJS.ErrnoException } {
  const missing: string[] = [];
  for (let p = path.resolve(dir); ; p = path.dirname(p)) {
    try {
      return { at: p, isDir: statSync(p).isDirectory(), missing };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // ENOTDIR: a file further up; the walk finds it
      if ((e.code !== 'ENOENT' && e.code !== 'ENOTDIR') || path.dirname(p) === p) return { at: p, error: e };
      missing.unshift(p);
    }
  }
}

/** A folder to write into: not empty, and what is there already (it, or the folder it would be made in) is a folder. */
export function outDirOption(v: string): string {
  if (v === '') throw new InvalidArgumentError('expected a folder');
  const part = existingPart(v);
  if ('error' in part || part.isDir) return v; // created when needed; a folder that cannot be made or written is checkOutputFolder's
  throw new InvalidArgumentError(part.missing.length === 0 ? `${v} exists and is not a folder` : `${part.at} is a file, not a folder: cannot save into ${v}`);
}

/** "ENOENT: no such file or directory" from Node's "ENOENT: no such file or directory, mkdir '/proc/x'". */
function sysReason(err: NodeJS.ErrnoException): string {
  return /^(E[A-Z]+: [^,]+)/.exec(err.message)?.[1] ?? err.code ?? err.message;
}

/**
 * The output folder can be written, or its first missing level made (made and removed again, so
 * a download that then finds nothing leaves no folder behind): checked before any peer is asked,
 * so `-o /proc/x` fails at once with the I/O error (exit 6) instead of after the swarm was asked.
 */
export function checkOutputFolder(dir: string): void {
  const part = existingPart(dir);
  const io = (doing: string, err: NodeJS.ErrnoException) => new SwarmError(ERROR_CODES.IO, `${doing} (${sysReason(err)}): cannot save into ${dir}; nothing was fetched`, err.code ? { errno: err.code } : undefined);
  if ('error' in part) throw io(`cannot look at ${part.at}`, part.error);
  if (!part.isDir) throw new SwarmError(ERROR_CODES.USAGE, `${part.at} is a file, not a folder: cannot save into ${dir}`);
  const first = part.missing[0];
  if (first === undefined) {
    try {
      accessSync(part.at, fsc.W_OK | fsc.X_OK);
    } catch (err) {
      throw io(`cannot write in the folder ${part.at}`, err as NodeJS.ErrnoException);
    }
    return;
  }
  try {
    mkdirSync(first);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw io(`cannot create the folder ${first}`, err as NodeJS.ErrnoException);
    // there after all: a link to nowhere (stat saw nothing, lstat sees the link), or made meanwhile (the download looks again)
    if (lstatSync(first, { throwIfNoEntry: false })?.isSymbolicLink() && !statSync(first, { throwIfNoEntry: false })) {
      throw new SwarmError(ERROR_CODES.USAGE, `${first} is a symbolic link to nothing: cannot save into ${dir}`);
    }
    return;
  }
  // the probe goes again; another process may have put something in it meanwhile (then it stays theirs)
  try {
    rmdirSync(first);
  } catch {
    // ENOTEMPTY, ENOENT: not ours to remove any more
  }
}

/**
 * A log file the user named must be writable now: opening it later and failing silently would log
 * nothing while the user thinks it does. Checked without creating it: an existing file must be
 * writable, else its folder must exist and be writable.
 */
export function logFileOption(v: string): string {
  if (v === '') throw new InvalidArgumentError('expected a file to append to');
  try {
    let st;
    try {
      st = statSync(v);
    } catch {
      st = null;
    }
    if (st?.isDirectory()) throw new Error('it is a folder');
    if (st) accessSync(v, fsc.W_OK);
    else {
      const dir = path.dirname(path.resolve(v));
      if (!statSync(dir).isDirectory()) throw new Error(`${dir} is not a folder`);
      accessSync(dir, fsc.W_OK);
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new InvalidArgumentError(`cannot write the log file ${v}: ${e.code === 'ENOENT' ? 'its folder does not exist' : e.code === 'EACCES' ? 'permission denied' : e.message}`);
  }
  return v;
}

/** A file to read now (a key file): it must exist, be a file and be readable. */
export function existingFileOption(v: string): string {
  if (v === '') throw new InvalidArgumentError('expected a file');
  try {
    if (!statSync(v).isFile()) throw Object.assign(new Error('it is not a file'), { code: 'EISDIR' });
    accessSync(v, fsc.R_OK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new InvalidArgumentError(`cannot read ${v}: ${e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message}`);
  }
  return v;
}

/** Overlay hops: 1 to 7 (a TTL above 7 is taken as 7 by every peer anyway). */
export const MAX_TTL = 7;
export const ttlOption = boundedInt(1, MAX_TTL, ' hops');

/** Seconds to wait for answers, 0.1 to 60. */
export const waitOption = boundedNumber(0.1, 60, 'seconds');

/** `$SWARM_TRACKER`, when set, must be an address too (it stands for --tracker). */
function checkEnvTracker(): void {
  const v = process.env.SWARM_TRACKER;
  if (v === undefined) return;
  const a = parseAddress(v, false);
  if (typeof a === 'string') throw new SwarmError(ERROR_CODES.USAGE, `$SWARM_TRACKER=${JSON.stringify(v)}: ${a}`);
}

/** The flags given on the command line after the command's name (what commander was asked to parse). */
function givenFlags(cmd: Command): string[] {
  const root = cmd.parent ?? cmd;
  const raw = (root as unknown as { rawArgs?: string[] }).rawArgs ?? [];
  const at = raw.indexOf(cmd.name());
  const args = at >= 0 ? raw.slice(at + 1) : raw;
  const end = args.indexOf('--');
  return end >= 0 ? args.slice(0, end) : args;
}

const has = (flags: string[], ...names: string[]) => flags.some((a) => names.some((n) => a === n || a.startsWith(`${n}=`)));

/**
 * Checks across options, before any action runs. Commander keeps whichever of `--tracker X` and
 * `--no-tracker` came last; that is said instead of silently obeying one of them.
 */
export function crossChecks(cmd: Command): void {
  const flags = givenFlags(cmd);
  const o = cmd.opts();
  if (has(flags, '--no-tracker') && has(flags, '--tracker', '-t')) throw new SwarmError(ERROR_CODES.USAGE, '--tracker and --no-tracker contradict each other');
  if (has(flags, '--seed') && has(flags, '--no-share')) throw new SwarmError(ERROR_CODES.USAGE, '--seed and --no-share contradict each other');
  if (has(flags, '--lan-port', '--lan-broadcast') && !o.lan) throw new SwarmError(ERROR_CODES.USAGE, '--lan-port and --lan-broadcast need --lan');
  if (o.tracker !== false) checkEnvTracker();
}
