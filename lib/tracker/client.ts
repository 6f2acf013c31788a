/**
 * Talking to a tracker.
 *
 * `trackerQuery` opens a short-lived connection for one or more requests (ls, who, get). Every
 * answer is checked entry by entry (protocol/entries.ts): a bad entry is dropped and counted, the
 * rest is used. `TrackerClient` is the long-lived link of a serving peer: register with its files
 * (in pages, so 100,000 files fit), keepalive every period, send update/delete as the share
 * changes, and after the tracker goes away reconnect with backoff (0.25 s doubling to 5 s) and
 * register again.
 */
import { EventEmitter } from 'node:events';
import { DEFAULT_TRACKER_PORT, KEEPALIVE_MS } from '../constants.js';
import { ERROR_CODES, SwarmError } from '../errors.js';
import { FramedClient, parseHostPort } from '../net/framed-client.js';
import { checkAddresses, checkDirectory, checkVersions, type AnnouncedFile, type Dropped } from '../protocol/entries.js';
import type { DirectoryEntry, PeerAddress, Version } from '../types.js';
import { localHello } from '../net/identity.js';

/** Announced files per register/update message, and the JSON bytes one may reach. */
export const ANNOUNCE_PAGE_FILES = 1000;
const ANNOUNCE_PAGE_BYTES = 200 << 10;
/** Most directory pages a listing follows. */
const MAX_DIR_PAGES = 10_000;

type TrackerConn = FramedClient<'trackerReply'>;

function connection(address: string, timeoutMs: number): TrackerConn {
  const { host, port } = parseHostPort(address, DEFAULT_TRACKER_PORT);
  return new FramedClient(host, port, { side: 'trackerReply', timeoutMs });
}

/** Run `fn` on a fresh connection to the tracker; transport failures become TRACKER_UNREACHABLE. */
export async function withTracker<T>(address: string, fn: (c: TrackerConn) => Promise<T>, timeoutMs = 5_000): Promise<T> {
  const c = connection(address, timeoutMs);
  try {
    await c.connect();
    return await fn(c);
  } catch (err) {
    const e = err as SwarmError;
    if (e.code === ERROR_CODES.PEER_CLOSED || e.code === ERROR_CODES.PEER_TIMEOUT || e.code === ERROR_CODES.BUSY) {
      throw new SwarmError(ERROR_CODES.TRACKER_UNREACHABLE, `tracker ${address} unreachable: ${e.message}`);
    }
    throw err;
  } finally {
    c.destroy();
  }
}

/** The whole directory, following pages. */
export async function trackerDirectory(address: string): Promise<{ entries: [string, DirectoryEntry][]; dropped: Dropped[] }> {
  return withTracker(address, async (c) => {
    const entries: [string, DirectoryEntry][] = [];
    const dropped: Dropped[] = [];
    let after: string | undefined;
    for (let page = 0; page < MAX_DIR_PAGES; page++) {
      const { message } = await c.request({ t: 'dir', ...(after !== undefined ? { after } : {}) }, 'directory');
      const checked = checkDirectory(message.files);
      entries.push(...checked.ok);
      dropped.push(...checked.dropped);
      if (message.next === undefined || (after !== undefined && message.next <= after)) return { entries, dropped };
      after = message.next;
    }
    throw new SwarmError(ERROR_CODES.LIMIT, `tracker ${address} lists more than ${MAX_DIR_PAGES} pages`);
  });
}

/** Every version of `name` the tracker knows, newest first (empty when nobody has it). */
export async function trackerVersions(address: string, name: string): Promise<{ versions: Version[]; dropped: Dropped[] }> {
  return withTracker(address, async (c) => {
    const { message } = await c.request({ t: 'who-has', name }, 'holders');
    const checked = checkVersions(message.versions);
    return { versions: checked.ok, dropped: checked.dropped };
  });
}

/** Holders (complete and partial) of one content id. */
export async function trackerPeersOf(address: string, cid: string): Promise<PeerAddress[]> {
  return withTracker(address, async (c) => {
    const { message } = await c.request({ t: 'peers-of', cid }, 'peers');
    return checkAddresses(message.peers).ok;
  });
}

/** Pages of announced files (or names), by count and by JSON size. */
export function announcePages<T extends AnnouncedFile | string>(files: T[]): T[][] {
  const pages: T[][] = [];
  let page: T[] = [];
  let bytes = 0;
  for (const f of files) {
    const n = (typeof f === 'string' ? f.length : f.name.length) * 2 + 120;
    if (page.length >= ANNOUNCE_PAGE_FILES || (page.length > 0 && bytes + n > ANNOUNCE_PAGE_BYTES)) {
      pages.push(page);
      page = [];
      bytes = 0;
    }
    page.push(f);
    bytes += n;
  }
  if (page.length) pages.push(page);
  return pages;
}

function wire(f: AnnouncedFile): Record<string, unknown> {
  return { name: f.name, mtime: f.mtime, size: f.size, cid: f.cid, ...(f.partial ? { partial: true } : {}) };
}

export interface TrackerClientEvents {
  state: [s: { connected: boolean; message?: string; dropped?: Dropped[] }];
}

export class TrackerClient extends EventEmitter<TrackerClientEvents> {
  private conn: TrackerConn | null = null;
  private keepalive: NodeJS.Timeout | null = null;
  private retry: NodeJS.Timeout | null = null;
  private backoffMs = 250;
  private closed = false;
  connected = false;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly servingPort: number,
    private readonly files: () => AnnouncedFile[],
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
    const c: TrackerConn = new FramedClient(this.host, this.port, { side: 'trackerReply', timeoutMs: 5_000, hello: localHello(this.servingPort), handler: { onClose: () => this.lost(c) } });
    this.conn = c;
    try {
      await c.connect();
      const [first = [], ...rest] = announcePages(this.files());
      const dropped: Dropped[] = [];
      const r = await c.request({ t: 'register', port: this.servingPort, files: first.map(wire) }, 'ok');
      dropped.push(...((r.message.dropped ?? []) as Dropped[]));
      for (const page of rest) {
        const u = await c.request({ t: 'update', files: page.map(wire) }, 'ok', 30_000);
        dropped.push(...((u.message.dropped ?? []) as Dropped[]));
      }
      this.connected = true;
      this.backoffMs = 250;
      this.emit('state', { connected: true, ...(dropped.length ? { dropped } : {}) });
      this.keepalive = setInterval(() => {
        c.request({ t: 'keepalive', port: this.servingPort }, 'ok').catch(() => c.destroy());
      }, this.keepaliveMs);
    } catch (err) {
      c.destroy();
      // a swarm peer's port given as the tracker's answers hello and then refuses `register`
      const notTracker = (err as SwarmError).code === ERROR_CODES.UNKNOWN_MESSAGE && c.remoteHello !== null;
      const message = notTracker ? `not a swarm tracker: it answered as a swarm peer and does not know "register" (is that a peer's port?)` : (err as Error).message;
      this.emit('state', { connected: false, message });
      this.scheduleRetry();
    }
  }

  private lost(c: TrackerConn): void {
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
  update(files: AnnouncedFile[]): void {
    if (!this.connected) return;
    for (const page of announcePages(files)) this.conn?.request({ t: 'update', files: page.map(wire) }, 'ok').catch(() => {});
  }

  remove(names: string[]): void {
    if (!this.connected || names.length === 0) return;
    for (const page of announcePages(names)) this.conn?.request({ t: 'delete', names: page }, 'ok').catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.keepalive) clearInterval(this.keepalive);
    const c = this.conn;
    if (c && this.connected) await c.request({ t: 'unregister' }, 'ok', 1_000).catch(() => {});
    c?.destroy();
    this.connected = false;
  }
}
