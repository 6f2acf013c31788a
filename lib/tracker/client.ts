/**
 * Talking to a tracker.
 *
 * `queryTracker` is one request on a short-lived connection (ls, who, get). `TrackerClient` is
 * the long-lived link of a serving peer: register with its files, keepalive every period, send
 * update/delete as the share changes, and after the tracker goes away reconnect with backoff
 * (0.25 s doubling to 5 s) and register again.
 */
import { EventEmitter } from 'node:events';
import { KEEPALIVE_MS } from '../constants.js';
import { ERROR_CODES, SwarmError } from '../errors.js';
import { FramedClient } from '../net/framed-client.js';
import type { Header } from '../protocol/frame.js';
import type { DirectoryEntry, FileInfo } from '../types.js';

export async function queryTracker(host: string, port: number, h: Header, timeoutMs = 5_000): Promise<Header> {
  const c = new FramedClient(host, port, {}, timeoutMs, 'trackerReply');
  try {
    await c.connect();
    const { header } = await c.request(h, timeoutMs);
    return header;
  } catch (err) {
    const e = err as SwarmError;
    if (e.code === ERROR_CODES.PEER_CLOSED || e.code === ERROR_CODES.PEER_TIMEOUT) {
      throw new SwarmError(ERROR_CODES.TRACKER_UNREACHABLE, `tracker ${host}:${port} unreachable: ${e.message}`);
    }
    throw err;
  } finally {
    c.destroy();
  }
}

export async function trackerDirectory(host: string, port: number): Promise<Record<string, DirectoryEntry>> {
  const h = await queryTracker(host, port, { t: 'dir' });
  return h.files as Record<string, DirectoryEntry>;
}

export async function trackerWhoHas(host: string, port: number, name: string): Promise<DirectoryEntry | null> {
  const h = await queryTracker(host, port, { t: 'who-has', name });
  return (h.entry as DirectoryEntry | null) ?? null;
}

function announce(files: FileInfo[]): { name: string; mtime: number; size: number; cid: string }[] {
  return files.filter((f) => f.cid).map((f) => ({ name: f.name, mtime: f.mtime, size: f.size, cid: f.cid! }));
}

export interface TrackerClientEvents {
  state: [s: { connected: boolean; message?: string }];
}

export class TrackerClient extends EventEmitter<TrackerClientEvents> {
  private conn: FramedClient | null = null;
  private keepalive: NodeJS.Timeout | null = null;
  private retry: NodeJS.Timeout | null = null;
  private backoffMs = 250;
  private closed = false;
  connected = false;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly servingPort: number,
    private readonly files: () => FileInfo[],
    private readonly keepaliveMs = KEEPALIVE_MS,
  ) {
    super();
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** Connect and register; resolves after the first attempt, whether or not it succeeded. */
  async start(): Promise<void> {
    await this.connectOnce();
  }

  private async connectOnce(): Promise<void> {
    if (this.closed) return;
    const c = new FramedClient(this.host, this.port, { onClose: () => this.lost(c) }, 5_000, 'trackerReply');
    this.conn = c;
    try {
      await c.connect();
      await c.request({ t: 'register', port: this.servingPort, files: announce(this.files()) });
      this.connected = true;
      this.backoffMs = 250;
      this.emit('state', { connected: true });
      this.keepalive = setInterval(() => {
        c.request({ t: 'keepalive', port: this.servingPort }).catch(() => c.destroy());
      }, this.keepaliveMs);
    } catch (err) {
      c.destroy();
      this.emit('state', { connected: false, message: (err as Error).message });
      this.scheduleRetry();
    }
  }

  private lost(c: FramedClient): void {
    if (this.conn !== c || this.closed) return;
    if (this.keepalive) clearInterval(this.keepalive);
    this.keepalive = null;
    if (this.connected) {
      this.connected = false;
      this.emit('state', { connected: false, message: 'lost the tracker; reconnecting' });
    }
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closed || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      void this.connectOnce();
    }, this.backoffMs);
    this.backoffMs = Math.min(5_000, this.backoffMs * 2);
  }

  /** Tell the tracker about files added or changed. Lost messages are covered by re-register. */
  update(files: FileInfo[]): void {
    const list = announce(files);
    if (this.connected && list.length) this.conn?.request({ t: 'update', files: list }).catch(() => {});
  }

  remove(names: string[]): void {
    if (this.connected && names.length) this.conn?.request({ t: 'delete', names }).catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.keepalive) clearInterval(this.keepalive);
    const c = this.conn;
    if (c && this.connected) await c.request({ t: 'unregister' }, 1_000).catch(() => {});
    c?.destroy();
    this.connected = false;
  }
}
