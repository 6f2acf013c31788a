/**
 * The `get`s of one serving connection (session.ts): each checked against its source when it
 * arrives (a range inside the content, every chunk of it verified here), queued (at most
 * MAX_QUEUED_GETS), then served one at a time, in order, by the data path (sender.ts, through the
 * `serve` hook); a cancel marks a request wherever it is. A source's reader is opened once per
 * connection and kept (at most MAX_OPEN_READERS, the oldest closed first); one whose request failed
 * is closed, and every one is closed when the connection ends, also one still opening then.
 */
import { ERROR_CODES, toWire } from '../errors.js';
import type { Header } from '../protocol/frame.js';
import type { PeerRequest } from '../protocol/messages.js';
import { chunksOf } from '../manifest.js';
import type { RangeRequest } from './sender.js';
import type { ChunkSource, SourceIndex, SourceReader } from './source.js';

export const MAX_QUEUED_GETS = 1024;
const MAX_OPEN_READERS = 16;

export type GetMessage = Extract<PeerRequest, { t: 'get' }>;

/** Why a `get` was not queued: the error its requester is sent. */
export interface GetRefusal {
  code: string;
  message: string;
}

export interface GetQueueHooks {
  /** True once the connection is gone. */
  closed(): boolean;
  /** Request `req` is taken up, before its first chunk. */
  taken(req: RangeRequest): void;
  /** Send request `req`'s chunks, read with `reader` (sender.ts). */
  serve(req: RangeRequest, reader: SourceReader): Promise<void>;
  /** Send `h` to the peer. */
  reply(h: Header): void;
  /** A request of content `cid` failed for a reason worth logging (a path escape, a changed file). */
  refused(cid: string, reason: string): void;
  /** Every request is served or cancelled: the peer asks nothing now. */
  idle(): void;
}

export class GetQueue {
  private readonly queue: RangeRequest[] = [];
  private current: RangeRequest | null = null;
  private sending = false;
  private readonly readers = new Map<string, Promise<SourceReader>>();

  constructor(
    private readonly sources: SourceIndex,
    private readonly hooks: GetQueueHooks,
  ) {}

  /** True while a get is being sent or queued. */
  get busy(): boolean {
    return this.sending || this.queue.length > 0;
  }

  get openReaders(): number {
    return this.readers.size;
  }

  /** Check `get` m against its source and queue it: null, or why it was refused. */
  add(m: GetMessage): GetRefusal | null {
    if (this.queue.length >= MAX_QUEUED_GETS) return { code: ERROR_CODES.LIMIT, message: `more than ${MAX_QUEUED_GETS} requests queued` };
    const src = this.sources.byCid(m.cid);
    if (!src) return { code: ERROR_CODES.NOT_FOUND, message: `no content ${m.cid.slice(0, 16)}… here` };
    const chunks = chunksOf(src.manifest);
    if (m.from >= m.to || m.to > chunks) return { code: ERROR_CODES.BAD_MESSAGE, message: `chunk range [${m.from}, ${m.to}) outside 0..${chunks}` };
    // a complete source has every chunk of the range; a partial one is checked at both ends
    // (a range running past what it has: one look), then up to its first hole (refusals are
    // limited per connection: take-account.ts)
    if (!src.complete) {
      const hole = !src.has(m.from) ? m.from : !src.has(m.to - 1) ? m.to - 1 : firstMissing(src, m.from + 1, m.to - 1);
      if (hole >= 0) return { code: ERROR_CODES.NOT_HAVE, message: `chunk ${hole} is not verified here yet` };
    }
    this.queue.push({ id: m.id, source: src, from: m.from, to: m.to, cancelled: false });
    if (!this.sending) void this.sendLoop();
    return null;
  }

  /** The peer cancelled request `id`: queued or being sent, it goes no further. */
  cancel(id: number): void {
    for (const r of this.queue) if (r.id === id) r.cancelled = true;
    const cur = this.current;
    if (cur && cur.id === id) cur.cancelled = true;
  }

  /** The connection ended: every request is cancelled, every reader closed. */
  close(): void {
    for (const r of this.queue) r.cancelled = true;
    this.queue.length = 0;
    if (this.current) this.current.cancelled = true;
    for (const cid of [...this.readers.keys()]) this.forgetReader(cid);
  }

  private async sendLoop(): Promise<void> {
    this.sending = true;
    try {
      while (!this.hooks.closed() && this.queue.length > 0) {
        const req = this.queue.shift()!;
        if (req.cancelled) continue;
        this.current = req;
        this.hooks.taken(req);
        try {
          await this.hooks.serve(req, await this.reader(req.source));
          if (!req.cancelled) this.hooks.reply({ t: 'done', id: req.id });
        } catch (err) {
          const e = toWire(err);
          if (e.code === ERROR_CODES.PATH_ESCAPE || e.code === ERROR_CODES.FILE_CHANGED) this.hooks.refused(req.source.manifest.cid, e.message);
          this.forgetReader(req.source.manifest.cid);
          this.hooks.reply({ t: 'error', id: req.id, code: e.code, message: e.message });
        }
      }
    } finally {
      this.current = null;
      this.sending = false;
      this.hooks.idle();
    }
  }

  /** The open reader of a source: opened once per connection, closed when the session ends. */
  private reader(src: ChunkSource): Promise<SourceReader> {
    const cid = src.manifest.cid;
    let r = this.readers.get(cid);
    if (!r) {
      if (this.readers.size >= MAX_OPEN_READERS) this.forgetReader(this.readers.keys().next().value!);
      r = src.open().then((reader) => {
        // the session may have ended while the file was opening: never leave the handle behind
        if (this.hooks.closed() || this.readers.get(cid) !== r) void reader.close();
        return reader;
      });
      r.catch(() => this.readers.get(cid) === r && this.readers.delete(cid));
      this.readers.set(cid, r);
    }
    return r;
  }

  private forgetReader(cid: string): void {
    const r = this.readers.get(cid);
    if (!r) return;
    this.readers.delete(cid);
    r.then((reader) => reader.close(), () => {});
  }
}

/** The first chunk of [from, to) that `src` has not verified, or -1 (a partial source skips 8 verified chunks a step). */
function firstMissing(src: ChunkSource, from: number, to: number): number {
  if (src.firstMissing) return src.firstMissing(from, to);
  for (let c = from; c < to; c++) if (!src.has(c)) return c;
  return -1;
}
