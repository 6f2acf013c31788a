/**
 * The TCP server of `swarm serve`: accepts peers (up to maxConnections) and gives each a
 * PeerSession. `close({graceful})` stops accepting, lets running transfers finish (seed 001's
 * QUIT waits for threads), then ends the rest; `close({graceful: false})` ends everything now.
 */
import net from 'node:net';
import { listenOn } from '../net/listen.js';
import type { Library } from '../share/library.js';
import { noLog, type Log } from '../log.js';
import { PeerSession } from './session.js';
import { TokenBucket } from '../scheduling/token-bucket.js';

export interface PeerServerOptions {
  log?: Log;
  maxConnections?: number;
  /** An idle connection (no request for this long) is closed. */
  idleMs?: number;
  /** Upload limit for the whole server, bytes per second (0 or absent: none). */
  maxUploadBytesPerSec?: number;
}

export class PeerServer {
  private readonly server: net.Server;
  private readonly sessions = new Set<PeerSession>();
  private readonly log: Log;

  constructor(private readonly library: Library, opts: PeerServerOptions = {}) {
    this.log = opts.log ?? noLog;
    const upload = opts.maxUploadBytesPerSec ? new TokenBucket(opts.maxUploadBytesPerSec, Date.now()) : null;
    this.server = net.createServer({ noDelay: true }, (socket) => {
      const s = new PeerSession(socket, this.library, this.log, (ended) => {
        this.sessions.delete(ended);
        this.log('peer-disconnected', { peer: ended.remote, sent: ended.bytesSent });
      }, upload);
      this.sessions.add(s);
      this.log('peer-connected', { peer: s.remote });
      socket.setTimeout(opts.idleMs ?? 120_000, () => {
        if (!s.busy) s.destroy();
      });
    });
    this.server.maxConnections = opts.maxConnections ?? 256;
  }

  async listen(port: number, host: string): Promise<{ host: string; port: number }> {
    const a = await listenOn(this.server, port, host, 'peers');
    return { host: a.address, port: a.port };
  }

  get connections(): number {
    return this.sessions.size;
  }

  get busy(): number {
    let n = 0;
    for (const s of this.sessions) if (s.busy) n++;
    return n;
  }

  private forced = false;

  /** End every connection now (also ends the wait of a graceful close). */
  endAll(): void {
    this.forced = true;
    for (const s of [...this.sessions]) s.destroy();
  }

  async close(opts: { graceful: boolean; waitMs?: number } = { graceful: true }): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (opts.graceful) {
      const deadline = Date.now() + (opts.waitMs ?? 10 * 60_000);
      while (this.busy > 0 && !this.forced && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    }
    this.endAll();
    await closed;
  }
}
