/**
 * seed 002's peer-to-peer File Request: the client sends the plain file name (no frame, no
 * terminator) and reads the raw content until the server closes. We take the name as the bytes
 * up to a newline or NUL; or, at once, the bytes so far when they name a shared file exactly (a
 * stock client sends the bare name and waits: it is not made to wait NAME_WAIT_MS); or whatever
 * arrived once the client pauses for NAME_WAIT_MS (at most MAX_NAME_BYTES, and at most
 * NAME_DEADLINE_MS in all). The file is read through the same checked reader as framed requests
 * (peer/source.ts: the descriptor must be the file that was hashed, with its size and mtime, and
 * every read is followed by checkUnchanged, so a file changed since it was hashed is refused or
 * cut off with a reset, never sent whole with other bytes), in pieces that wait for the socket to
 * drain and, with `--max-upload`, for the server's token bucket (the same one framed requests
 * take from). A file that ends early while being read is a change too: the connection is reset
 * rather than ended, so the client cannot take a short file for the whole one.
 */
import type { Socket } from 'node:net';
import { MAX_NAME_BYTES } from '../protocol/names.js';
import { nameProblem } from '../protocol/names.js';
import type { Log } from '../log.js';
import { ERROR_CODES, SwarmError, toWire } from '../errors.js';
import type { TokenBucket } from '../scheduling/token-bucket.js';
import type { SourceIndex } from './source.js';

const NAME_WAIT_MS = 150;
const NAME_DEADLINE_MS = 5_000;
const PIECE_BYTES = 1 << 20;
/** Pieces are smaller under an upload limit, so the pacing is smooth (a tenth of a second's worth). */
const MIN_PACED_PIECE_BYTES = 16 << 10;

/** The bytes so far as a name: up to a newline or NUL, trimmed. */
function nameOf(bytes: Buffer): string {
  const cut = bytes.findIndex((b) => b === 0x0a || b === 0x00);
  return bytes.subarray(0, cut >= 0 ? cut : bytes.length).toString('utf8').trim();
}

function readName(socket: Socket, first: Buffer, isShared: (name: string) => boolean): Promise<string> {
  return new Promise((resolve) => {
    const parts = [first];
    let length = first.length;
    let timer: NodeJS.Timeout;
    const deadline = setTimeout(() => finish(), NAME_DEADLINE_MS);
    const finish = () => {
      clearTimeout(timer);
      clearTimeout(deadline);
      socket.off('data', more);
      socket.off('end', finish);
      resolve(nameOf(Buffer.concat(parts).subarray(0, MAX_NAME_BYTES)));
    };
    // a name that matches a shared file exactly is answered at once
    const exact = () => length < MAX_NAME_BYTES && isShared(nameOf(Buffer.concat(parts)));
    const more = (d: Buffer) => {
      parts.push(d);
      length += d.length;
      if (d.includes(0x0a) || d.includes(0x00) || length >= MAX_NAME_BYTES || exact()) return finish();
      clearTimeout(timer);
      timer = setTimeout(finish, NAME_WAIT_MS);
    };
    socket.on('data', more);
    socket.on('end', finish);
    if (first.includes(0x0a) || first.includes(0x00) || exact()) return finish();
    timer = setTimeout(finish, NAME_WAIT_MS);
  });
}

/**
 * Serve one File Request on `socket` (its first bytes are `first`). `upload` is the server's
 * upload limit (`--max-upload`), shared with framed requests; absent or null: none.
 */
export async function serveLegacyRequest(socket: Socket, first: Buffer, sources: SourceIndex, log: Log, onBlocked: (blocked: boolean) => void, upload?: TokenBucket | null): Promise<void> {
  const name = await readName(socket, first, (n) => n.length > 0 && nameProblem(n) === null && sources.stat(n) !== undefined);
  const peer = `${socket.remoteAddress}:${socket.remotePort}`;
  try {
    if (nameProblem(name)) throw Object.assign(new Error(`refused name: ${nameProblem(name)}`), { code: 'EACCES' });
    const opened = await sources.openByName(name);
    if (!opened) throw Object.assign(new Error(`no such file: ${name}`), { code: 'ENOENT' });
    log('legacy-file-request', { peer, name });
    const { reader, size } = opened;
    try {
      const piece = upload ? Math.max(MIN_PACED_PIECE_BYTES, Math.min(PIECE_BYTES, Math.floor(upload.bytesPerSec / 10))) : PIECE_BYTES;
      const buf = Buffer.allocUnsafe(Math.min(piece, Math.max(1, size)));
      for (let at = 0; at < size && !socket.destroyed; ) {
        const n = await reader.read(buf, 0, Math.min(buf.length, size - at), at);
        await reader.checkUnchanged();
        if (n === 0) throw new SwarmError(ERROR_CODES.FILE_CHANGED, `${name} ended at ${at} of its ${size} bytes while being sent`);
        if (upload) {
          const wait = upload.delayFor(n, Date.now());
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          if (socket.destroyed) break;
        }
        at += n;
        if (!socket.write(Buffer.from(buf.subarray(0, n)))) {
          onBlocked(true);
          await drainedOrClosed(socket);
          onBlocked(false);
        }
      }
      // the client may leave the rest unread: that is a stall too (the guard closes it)
      if (socket.writableLength > 0) onBlocked(true);
      await endedOrClosed(socket);
    } finally {
      await reader.close();
    }
  } catch (err) {
    log('legacy-file-request-failed', { peer, name, code: toWire(err).code });
    // a reset, not an end: a seed-002 client takes an ended stream for the whole file
    if (!socket.destroyed) {
      try {
        socket.resetAndDestroy();
      } catch {
        socket.destroy();
      }
    }
  }
}

// Both resolve at once for a socket already destroyed: a destroyed socket emits neither 'drain'
// nor 'close' again, and never calls end()'s callback, so waiting on those would hold the file
// handle forever (a client that asks and drops).
function drainedOrClosed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

function endedOrClosed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    const done = () => {
      socket.off('close', done);
      resolve();
    };
    socket.on('close', done);
    socket.end(done);
  });
}
