/**
 * seed 002's peer-to-peer File Request: the client sends the plain file name (no frame, no
 * terminator) and reads the raw content until the server closes. We take the name as the bytes
 * up to a newline or NUL, or whatever arrived once the client pauses for NAME_WAIT_MS.
 */
import type { Socket } from 'node:net';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { MAX_NAME_BYTES, resolveInShare } from '../share/names.js';
import type { Library } from '../share/library.js';
import type { Log } from '../log.js';
import { toWire } from '../errors.js';

const NAME_WAIT_MS = 150;

function readName(socket: Socket, first: Buffer): Promise<string> {
  return new Promise((resolve) => {
    let bytes = first;
    let timer: NodeJS.Timeout;
    const finish = () => {
      clearTimeout(timer);
      socket.off('data', more);
      socket.off('end', finish);
      const cut = bytes.findIndex((b) => b === 0x0a || b === 0x00);
      resolve(bytes.subarray(0, cut >= 0 ? cut : bytes.length).toString('utf8').trim());
    };
    const more = (d: Buffer) => {
      bytes = Buffer.concat([bytes, d]);
      if (bytes.includes(0x0a) || bytes.includes(0x00) || bytes.length >= MAX_NAME_BYTES) return finish();
      clearTimeout(timer);
      timer = setTimeout(finish, NAME_WAIT_MS);
    };
    socket.on('data', more);
    socket.on('end', finish);
    if (first.includes(0x0a) || first.includes(0x00)) return finish();
    timer = setTimeout(finish, NAME_WAIT_MS);
  });
}

export async function serveLegacyRequest(socket: Socket, first: Buffer, library: Library, log: Log): Promise<void> {
  const name = await readName(socket, first);
  const peer = `${socket.remoteAddress}:${socket.remotePort}`;
  try {
    if (!library.manifest(name)) throw Object.assign(new Error(`no such file: ${name}`), { code: 'ENOENT' });
    const file = await resolveInShare(library.realRoot, name);
    log('legacy-file-request', { peer, name });
    await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), socket);
  } catch (err) {
    log('legacy-file-request-failed', { peer, name, code: toWire(err).code });
    socket.destroy();
  }
}
