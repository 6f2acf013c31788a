/**
 * Errors with stable string codes.
 *
 * Every failure swarm reports carries a `code` from ERROR_CODES. Codes are the contract: they
 * cross thread and process boundaries as plain `{code, message}` objects (see `toWire` /
 * `fromWire`), appear in `--json` output, and map to CLI exit codes in exactly one place
 * (`exitCodeFor`). Messages are for people and may change; codes do not.
 */

export const ERROR_CODES = {
  // wire format
  FRAME_TOO_LARGE: 'SWARM_ERR_FRAME_TOO_LARGE',
  BAD_FRAME: 'SWARM_ERR_BAD_FRAME',
  BAD_JSON: 'SWARM_ERR_BAD_JSON',
  UNKNOWN_MESSAGE: 'SWARM_ERR_UNKNOWN_MESSAGE',
  BAD_MESSAGE: 'SWARM_ERR_BAD_MESSAGE',
  BAD_PACKET: 'SWARM_ERR_BAD_PACKET',
  BAD_CHECKSUM: 'SWARM_ERR_BAD_CHECKSUM',
  TRUNCATED: 'SWARM_ERR_TRUNCATED',
  /** The other side speaks another protocol version (or skipped `hello`). */
  VERSION: 'SWARM_ERR_VERSION',
  /** A peer was asked for a chunk it has not verified (partial holders refuse, never send). */
  NOT_HAVE: 'SWARM_ERR_NOT_HAVE',
  /** A connection or registration refused because a limit was reached. */
  BUSY: 'SWARM_ERR_BUSY',
  // share / serving
  PATH_ESCAPE: 'SWARM_ERR_PATH_ESCAPE',
  NOT_FOUND: 'SWARM_ERR_NOT_FOUND',
  FILE_CHANGED: 'SWARM_ERR_FILE_CHANGED',
  LIMIT: 'SWARM_ERR_LIMIT',
  // download
  NO_PEERS: 'SWARM_ERR_NO_PEERS',
  HASH_MISMATCH: 'SWARM_ERR_HASH_MISMATCH',
  MANIFEST_MISMATCH: 'SWARM_ERR_MANIFEST_MISMATCH',
  PEER_TIMEOUT: 'SWARM_ERR_PEER_TIMEOUT',
  /** A download verified no chunk for its give-up time (peers connected but busy, silent or slow). */
  STALLED: 'SWARM_ERR_STALLED',
  PEER_CLOSED: 'SWARM_ERR_PEER_CLOSED',
  TRACKER_UNREACHABLE: 'SWARM_ERR_TRACKER_UNREACHABLE',
  INTERRUPTED: 'SWARM_ERR_INTERRUPTED',
  IO: 'SWARM_ERR_IO',
  DISK_FULL: 'SWARM_ERR_DISK_FULL',
  /** Another process is downloading the same target (its lock file is held). */
  LOCKED: 'SWARM_ERR_LOCKED',
  /** A different file (or a folder) is already at the target path. */
  EXISTS: 'SWARM_ERR_EXISTS',
  /** A file of the share is not shared (a symlink leading out, a name peers could not ask for...): a warning. */
  SKIPPED: 'SWARM_ERR_SKIPPED',
  // sync
  /** A sync peer that did not prove it holds the folder key (or asked one that could not). */
  SYNC_DENIED: 'SWARM_ERR_SYNC_DENIED',
  // usage and everything else
  USAGE: 'SWARM_ERR_USAGE',
  LISTEN: 'SWARM_ERR_LISTEN',
  INTERNAL: 'SWARM_ERR_INTERNAL',
} as const;

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ERROR_CODES));

export class SwarmError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SwarmError';
    this.code = code;
    this.details = details;
  }
}

/** Plain form of an error, safe for postMessage, JSON frames and NDJSON output. */
export interface WireError {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export function toWire(err: unknown): WireError {
  if (err instanceof SwarmError) {
    return err.details ? { code: err.code, message: err.message, details: err.details } : { code: err.code, message: err.message };
  }
  return { code: codeOfSystemError(err), message: err instanceof Error ? err.message : String(err) };
}

export function fromWire(w: { code?: unknown; message?: unknown; details?: unknown }): SwarmError {
  const code = typeof w.code === 'string' && KNOWN_CODES.has(w.code) ? (w.code as ErrorCode) : ERROR_CODES.INTERNAL;
  const details = w.details && typeof w.details === 'object' ? (w.details as Record<string, unknown>) : undefined;
  return new SwarmError(code, typeof w.message === 'string' ? w.message : 'unknown error', details);
}

/** Wrap anything thrown into a SwarmError, keeping a SwarmError as it is. */
export function asSwarmError(err: unknown): SwarmError {
  if (err instanceof SwarmError) return err;
  const wrapped = new SwarmError(codeOfSystemError(err), err instanceof Error ? err.message : String(err), undefined, { cause: err });
  return wrapped;
}

function codeOfSystemError(err: unknown): ErrorCode {
  const sys = (err as NodeJS.ErrnoException | undefined)?.code;
  if (sys === 'ENOSPC' || sys === 'EDQUOT') return ERROR_CODES.DISK_FULL;
  if (sys === 'ENOENT') return ERROR_CODES.NOT_FOUND;
  if (typeof sys === 'string' && sys.startsWith('E')) return ERROR_CODES.IO;
  return ERROR_CODES.INTERNAL;
}

/**
 * Exit codes of the CLI. Documented in README.md ("Exit codes"); keep the two in step.
 * 0 success, 1 internal, 2 usage (commander's own), then one per failure family.
 */
export const EXIT_CODES = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  NO_PEERS: 4,
  INTEGRITY: 5,
  IO: 6,
  PROTOCOL: 7,
  CONFLICT: 8,
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];

/** Every error code's exit code: a Record over ErrorCode, so a new code without one does not compile. */
export const EXIT_CODE_OF: Readonly<Record<ErrorCode, ExitCode>> = {
  [ERROR_CODES.USAGE]: EXIT_CODES.USAGE,
  [ERROR_CODES.PATH_ESCAPE]: EXIT_CODES.USAGE,
  [ERROR_CODES.LISTEN]: EXIT_CODES.USAGE,
  [ERROR_CODES.NOT_FOUND]: EXIT_CODES.NOT_FOUND,
  [ERROR_CODES.NO_PEERS]: EXIT_CODES.NO_PEERS,
  [ERROR_CODES.TRACKER_UNREACHABLE]: EXIT_CODES.NO_PEERS,
  [ERROR_CODES.PEER_TIMEOUT]: EXIT_CODES.NO_PEERS,
  [ERROR_CODES.STALLED]: EXIT_CODES.NO_PEERS,
  [ERROR_CODES.PEER_CLOSED]: EXIT_CODES.NO_PEERS,
  [ERROR_CODES.BUSY]: EXIT_CODES.NO_PEERS,
  [ERROR_CODES.HASH_MISMATCH]: EXIT_CODES.INTEGRITY,
  [ERROR_CODES.MANIFEST_MISMATCH]: EXIT_CODES.INTEGRITY,
  [ERROR_CODES.BAD_CHECKSUM]: EXIT_CODES.INTEGRITY,
  [ERROR_CODES.FILE_CHANGED]: EXIT_CODES.INTEGRITY,
  [ERROR_CODES.NOT_HAVE]: EXIT_CODES.INTEGRITY,
  [ERROR_CODES.IO]: EXIT_CODES.IO,
  [ERROR_CODES.SKIPPED]: EXIT_CODES.IO,
  [ERROR_CODES.DISK_FULL]: EXIT_CODES.IO,
  [ERROR_CODES.FRAME_TOO_LARGE]: EXIT_CODES.PROTOCOL,
  [ERROR_CODES.BAD_FRAME]: EXIT_CODES.PROTOCOL,
  [ERROR_CODES.BAD_JSON]: EXIT_CODES.PROTOCOL,
  [ERROR_CODES.UNKNOWN_MESSAGE]: EXIT_CODES.PROTOCOL,
  [ERROR_CODES.BAD_MESSAGE]: EXIT_CODES.PROTOCOL,
  [ERROR_CODES.BAD_PACKET]: EXIT_CODES.PROTOCOL,
  [ERROR_CODES.TRUNCATED]: EXIT_CODES.PROTOCOL,
  [ERROR_CODES.LIMIT]: EXIT_CODES.PROTOCOL,
  [ERROR_CODES.VERSION]: EXIT_CODES.PROTOCOL,
  [ERROR_CODES.SYNC_DENIED]: EXIT_CODES.PROTOCOL,
  [ERROR_CODES.LOCKED]: EXIT_CODES.CONFLICT,
  [ERROR_CODES.EXISTS]: EXIT_CODES.CONFLICT,
  [ERROR_CODES.INTERRUPTED]: EXIT_CODES.INTERRUPTED,
  [ERROR_CODES.INTERNAL]: EXIT_CODES.INTERNAL,
};

export function exitCodeFor(code: ErrorCode | string): ExitCode {
  return KNOWN_CODES.has(code) ? EXIT_CODE_OF[code as ErrorCode] : EXIT_CODES.INTERNAL;
}

/** True for errors that mean "this peer sent data that failed a check" (exit 5 when nothing else is left). */
export function isIntegrityCode(code: string): boolean {
  return KNOWN_CODES.has(code) && EXIT_CODE_OF[code as ErrorCode] === EXIT_CODES.INTEGRITY;
}
