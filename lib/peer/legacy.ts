/**
 * seed 002's peer-to-peer File Request: the client sends the plain file name (no frame, no
 * terminator) and reads the raw content until the server closes. We take the name as the bytes
 * up to a newline or NUL, or whatever arrived once the client pauses for NAME_WAIT_MS (at most
 * MAX_NAME_BYTES, and at most NAME_DEADLINE_MS in all). The file is read through the same checked
 * reader as framed requests (peer/source.ts), in 1 MiB pieces that wait for the socket to drain.
 */
import type { Socket } from 'node:net';
import { MAX_NAME_BYTES } from '../protocol/names.js';
import { nameProblem } from '../protocol/names.js';
import type { Log } from '../log.js';
import { toWire } from '../errors.js';
import type { SourceIndex } from './source.js';

const NAME_WAIT_MS = 150;
const NAME_DEADLINE_MS = 5_000;
const PIECE_BYTES = 1 << 20;

function readName(socket: Socket, first: Buffer): Promise<string> {
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
      const bytes = Buffer.concat(parts).subarray(0, MAX_NAME_BYTES);
      const cut = bytes.findIndex((b) => b === 0x0a || b === 0x00);
      resolve(bytes.subarray(0, cut >= 0 ? cut : bytes.length).toString('utf8').trim());
    };
    const more = (d: Buffer) => {
      parts.push(d);
      length += d.length;
      if (d.includes(0x0a) || d.includes(0x00) || length >= MAX_NAME_BYTES) return finish();
      clearTimeout(timer);
      timer = setTimeout(finish, NAME_WAIT_MS);
    };
    socket.on('data', more);
    socket.on('end', finish);
    if (first.includes(0x0a) || first.includes(0x00)) return finish();
    timer = setTimeout(finish, NAME_WAIT_MS);
  });
}

export async function serveLegacyRequest(socket: Socket, first: Buffer, sources: SourceIndex, log: Log, onBlocked: (blocked: boolean) => void): Promise<void> {
  const name = await readName(socket, first);
  const peer = `${socket.remoteAddress}:${socket.remotePort}`;
  try {
    if (nameProblem(name)) throw Object.assign(new Error(`refused name: ${nameProblem(name)}`), { code: 'EACCES' });
    const opened = await sources.openByName(name);
    if (!opened) throw Object.assign(new Error(`no such file: ${name}`), { code: 'ENOENT' });
    log('legacy-file-request', { peer, name });
    const { reader, size } = opened;
    try {
      const buf = Buffer.allocUnsafe(Math.min(PIECE_BYTES, Math.max(1, size)));
      for (let at = 0; at < size && !socket.destroyed; ) {
        const n = await reader.read(buf, 0, Math.min(buf.length, size - at), at);
        if (n === 0) break;
        reader.checkUnchanged();
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
    socket.destroy();
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
