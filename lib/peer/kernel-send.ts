/**
 * A piece of a complete shared file sent by the kernel (the native helper's sendfile(2), see
 * lib/native/sendfile.c) instead of being read into our memory and written from there: the
 * bytes cross from the page cache to the socket without the two copies through user space.
 *
 *   heads of the piece's packets written here (their payload sums were taken when the file was
 *   hashed: nothing reads the payload) ─► frames of the session held (write-gate.ts) ─► any
 *   write still in Node's stream waits to be flushed ─► the helper sends heads and payloads on
 *   the thread pool until the piece is out or the socket is full ─► full: the piece's next byte
 *   goes through Node's stream, whose callback says the socket takes bytes again ─► again
 *
 * Node has no "socket writable" event without a write, so that one byte is the wait: a few
 * hundred to a few thousand per GiB on loopback (more when the receiver is the slower side). The
 * helper works on duplicates of both descriptors, so a socket or file closed meanwhile can never
 * make it send to or from anything else; the helper takes at most 4096 bytes of heads (a 1 MiB
 * piece has 16 of 36).
 *
 * The file's change check (file-source.ts) runs before each piece and after it. A change made
 * while the kernel was sending can no longer be kept off the wire, but those bytes fail the
 * packet sums (taken from the hashed content) or the chunk's hash at the receiver; the request
 * then ends with FILE_CHANGED as on the other path.
 */
import type { Socket } from 'node:net';
import { ERROR_CODES, SwarmError, asSwarmError } from '../errors.js';
import { PACKET_PAYLOAD_BYTES } from '../constants.js';
import { PACKET_HEAD_BYTES, writePieceHeads } from '../protocol/packet.js';
import type { SendPiece } from '../native/sendfile.js';
import type { LentFile } from './source.js';
import type { WriteGate } from './write-gate.js';

/** Requests of fewer bytes are served on the other path (a small file's read is one call either way). */
export const KERNEL_MIN_BYTES = 256 << 10;

export interface KernelPiece {
  requestId: number;
  chunk: number;
  /** File offset of the piece's first byte. */
  offset: number;
  length: number;
  /** The piece ends its chunk (its last packet is flagged so). */
  last: boolean;
  /** Payload sums of the piece's packets, in order. */
  sums: Uint16Array;
}

export interface KernelLink {
  socket: Socket;
  socketFd: number;
  sendPiece: SendPiece;
  gate: WriteGate;
  /** The socket holds our bytes unread since `at`, or took them again (0). */
  blocked(at: number): void;
  closed(): boolean;
}

/** Pieces this thread sent by the kernel, and the waits for a full socket among them (tests, --profile). */
export const kernelStats = { pieces: 0, waits: 0 };

/** The descriptor Node's socket reads and writes, or -1 where it does not say. */
export function socketFd(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

/** Wire bytes of a piece: a head before every packet's payload. */
function wireBytes(length: number): number {
  return Math.ceil(length / PACKET_PAYLOAD_BYTES) * PACKET_HEAD_BYTES + length;
}

/** Send piece `p` from descriptor `fd`; resolves once the socket took all of it. */
export function sendKernelPiece(link: KernelLink, heads: Buffer, file: LentFile, p: KernelPiece): Promise<void> {
  const fd = file.fd;
  writePieceHeads(heads, PACKET_HEAD_BYTES, p, (k) => p.sums[k]!);
  const total = wireBytes(p.length);
  const { socket, gate } = link;
  gate.hold();
  return new Promise<void>((resolve, reject) => {
    let done = 0;
    let ended = false;
    const finish = (err?: unknown) => {
      if (ended) return;
      ended = true;
      // part of the piece is on the wire: a frame written after it would be read as the rest of
      // a packet (and every reply after it); the stream cannot go on, the connection ends
      if (err && done > 0 && done < total) socket.destroy();
      gate.release();
      if (err) reject(err);
      else resolve();
    };
    const closedError = () => new SwarmError(ERROR_CODES.PEER_CLOSED, 'connection closed');
    // Node closes the socket's descriptor when it destroys the socket, and says 'close' (which
    // the session's closed() hears) only later in the loop: a number taken meanwhile by another
    // connection or file must never be handed to the helper, so the socket itself is asked
    const gone = () => link.closed() || socket.destroyed || socket.writableEnded || socketFd(socket) !== link.socketFd;
    const step = () => {
      if (gone()) return finish(closedError());
      try {
        link.sendPiece(link.socketFd, fd, heads, PACKET_HEAD_BYTES, p.offset, p.length, PACKET_PAYLOAD_BYTES, done, sent);
      } catch (err) {
        finish(asSwarmError(err));
      }
    };
    const sent = (err: string | null, now: number, next: number) => {
      if (err) {
        if (err === 'ENODATA') return finish(new SwarmError(ERROR_CODES.FILE_CHANGED, 'the file shrank while being served'));
        return finish(gone() ? closedError() : new SwarmError(ERROR_CODES.PEER_CLOSED, `sending failed: ${err}`));
      }
      done = now;
      if (done >= total) {
        kernelStats.pieces++;
        return finish();
      }
      // the socket is full: its next byte (the helper read it) through Node's stream, whose
      // callback is our "writable"
      if (next < 0 || next > 255) return finish(new SwarmError(ERROR_CODES.INTERNAL, 'the sendfile helper stopped without the next byte'));
      kernelStats.waits++;
      link.blocked(Date.now());
      done++;
      if (gone()) return finish(closedError());
      socket.write(Buffer.of(next), (werr) => {
        if (werr || gone()) return finish(closedError());
        link.blocked(0);
        if (done >= total) finish();
        else step();
      });
    };
    // anything Node's stream still holds (a reply, the previous request's done) goes first
    if (socket.writableLength === 0) step();
    else socket.write(Buffer.alloc(0), (werr) => (werr ? finish(closedError()) : step()));
  });
}
