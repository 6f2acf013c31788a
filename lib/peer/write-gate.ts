/**
 * The one way a peer connection's frames reach its socket, so that nothing lands inside a piece
 * the kernel is sending (kernel-send.ts): those bytes go to the socket without Node's stream, and
 * a frame written through the stream meanwhile would be cut into the middle of a packet. While
 * the gate is held, frames wait here in order and count as unsent (the session's reply window
 * includes them, so a peer that asks and does not read stops being read); released, they are
 * written in the order they came.
 */
import type { Socket } from 'node:net';

export class WriteGate {
  private held: Uint8Array[] | null = null;
  /** Bytes of the frames waiting for the gate. */
  heldBytes = 0;
  /**
   * Called after each release: held frames may have paused the session's reading (they count in
   * its reply window), and written here one by one, each below the stream's high-water mark and
   * taken by the socket at once, they never make Node say 'drain' (session.ts resumes here).
   */
  released: (() => void) | null = null;
  /** The session ended its side while a piece was under way: the socket ends after it. */
  private ending = false;

  constructor(private readonly socket: Socket) {}

  get holding(): boolean {
    return this.held !== null;
  }

  /** Write one frame's buffers, or keep them until release. */
  write(bufs: Iterable<Uint8Array>): void {
    if (this.held) {
      for (const b of bufs) {
        this.held.push(b);
        this.heldBytes += b.length;
      }
      return;
    }
    for (const b of bufs) this.socket.write(b);
  }

  /** End the socket's sending side after the frames (and the piece) under way, never inside a piece. */
  end(): void {
    if (this.held) this.ending = true;
    else this.socket.end();
  }

  hold(): void {
    this.held ??= [];
  }

  /** Frames kept meanwhile go out now, in order (none when the socket is gone or ending). */
  release(): void {
    const held = this.held;
    this.held = null;
    this.heldBytes = 0;
    if (!held || this.socket.destroyed || this.socket.writableEnded) return;
    for (const b of held) this.socket.write(b);
    if (this.ending) {
      this.ending = false;
      this.socket.end();
      return;
    }
    this.released?.();
  }
}
