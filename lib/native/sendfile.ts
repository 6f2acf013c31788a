/**
 * The native helper (sendfile.c, built by `npm run build` when a C compiler and Node's headers
 * are there) as seen from TypeScript: `kernelSend()` is its `sendPiece`, or null where it is not
 * (another OS, no compiler at install, SWARM_NO_SENDFILE=1 in the environment). Everything that
 * uses it has a plain path for null: the same bytes, copied through memory.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { nativeAddonUrl } from '../paths.js';

/** `err` is null or an errno name; `done` the wire bytes of the piece sent so far; `next` the byte at `done` when the socket was full, else -1. */
export type SendPieceCallback = (err: string | null, done: number, next: number) => void;

/** See sendfile.c: send a piece's packets (heads from `heads`, payloads from `fileFd`). */
export type SendPiece = (
  socketFd: number,
  fileFd: number,
  heads: Buffer,
  headBytes: number,
  position: number,
  length: number,
  packetBytes: number,
  done: number,
  callback: SendPieceCallback,
) => void;

let loaded: SendPiece | null | undefined;
let forced: boolean | undefined;

/** The helper's sendPiece, or null (see above). Loaded once per thread. */
export function kernelSend(): SendPiece | null {
  if (forced === false) return null;
  if (loaded === undefined) loaded = load();
  return loaded;
}

function load(): SendPiece | null {
  if (process.platform !== 'linux' || process.env.SWARM_NO_SENDFILE === '1') return null;
  const file = fileURLToPath(nativeAddonUrl());
  if (!existsSync(file)) return null;
  try {
    const m = createRequire(import.meta.url)(file) as { sendPiece?: unknown };
    return typeof m.sendPiece === 'function' ? (m.sendPiece as SendPiece) : null;
  } catch {
    return null; // built for another Node, or damaged: the plain path serves the same bytes
  }
}

/** Tests and benches: turn the kernel path off (false) or back to the default (undefined) in this thread. */
export function setKernelSend(on: false | undefined): void {
  forced = on;
}
