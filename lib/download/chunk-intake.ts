/**
 * A received chunk's way to disk, and the word to every peer that we have it. The chunk's buffer
 * came from a peer host (transferred) and goes back to it, used or not, for reuse.
 *
 *   'chunk' ─► for a request given up on: buffer back
 *           ─► verified already (an endgame duplicate), or the download settled: budget back, buffer back
 *           ─► pool.verifyAndWrite (hash and write on the pool's threads)
 *                ok: table.verify ─► ticket.mark ─► `have` batch ─► every host, and 'verified'
 *                bad hash: strike, chunk back to missing
 *           ─► buffer back; the coordinator settles (file complete) or pumps
 *
 * `have`s go out at once after a quiet spell, then in batches at most HAVE_FLUSH_MS apart.
 */
import { ERROR_CODES, asSwarmError, type SwarmError, type WireError } from '../errors.js';
import type { ChunkTable } from '../scheduling/chunk-table.js';
import type { ByteBudget } from '../scheduling/budget.js';
import type { RequestBook } from '../scheduling/request-book.js';
import type { ChunkPool } from '../pool.js';
import type { PartFile } from '../storage/part-file.js';
import type { Ticket } from '../storage/ticket.js';
import { expectedHash, type Manifest } from '../manifest.js';
import type { PeerHostGroup } from './peer-host.js';
import type { CoordinatorEmitter } from './events.js';
import type { Peer } from './peer-state.js';
import type { RequestPlanner } from './requests.js';

/**
 * Newly verified chunks are told to peers at once, then in batches at most this often: a chunk
 * verified after a quiet spell goes out without waiting (a flash crowd relays a chunk only once
 * its holders are told, and the seeder's upload slot is held until then), and a fast download
 * still sends a few `have` batches a second, not one per chunk.
 */
const HAVE_FLUSH_MS = 25;

export interface IntakeState {
  m: Manifest;
  table: ChunkTable;
  budget: ByteBudget;
  book: RequestBook;
  pool: ChunkPool;
  part: PartFile;
  ticket: Ticket;
  hosts: PeerHostGroup;
  /** Requests made redundant by a verified chunk are cancelled (endgame). */
  requests: RequestPlanner;
  counters: { badChunks: number; fetchedChunks: number; duplicateChunks: number };
  /** Pool time spent hashing and writing, milliseconds. */
  poolTimes: { hashMs: number; writeMs: number };
  /** 'verified' goes out as the coordinator's event. */
  events: CoordinatorEmitter;
  /** True once the download settled: a chunk arriving then is not written. */
  finished(): boolean;
  strike(p: Peer, e: WireError): void;
  fail(e: SwarmError): void;
  /** A chunk was verified (the give-up clock starts again). */
  progressed(): void;
  /** A write ended, good or bad, and its buffer went back: the file may be complete, or there is room to ask for more. */
  written(): void;
}

export class ChunkIntake {
  private readonly writes = new Set<Promise<void>>();
  private haveTimer: NodeJS.Timeout | null = null;
  /** When `have`s were last sent (HAVE_FLUSH_MS). */
  private haveAt = 0;
  private haves: number[] = [];

  constructor(private readonly s: IntakeState) {}

  /** Some chunk is still being hashed or written (it may yet complete the file). */
  get writing(): boolean {
    return this.writes.size > 0;
  }

  /** Wait for chunk writes already handed to the pool (their chunks are then in the ticket), and tell them. */
  async drain(): Promise<void> {
    while (this.writes.size > 0) await Promise.allSettled([...this.writes]);
    this.flushHaves();
  }

  private giveBack(p: Peer, bytes: Uint8Array): void {
    p.host.send({ type: 'buffer', bytes }, [bytes.buffer as ArrayBuffer]);
  }

  receive(p: Peer, reqId: number, chunk: number, bytes: Uint8Array, length: number, now: number): void {
    const s = this.s;
    if (!s.book.delivered(reqId, chunk, now)) return this.giveBack(p, bytes); // a request given up on
    if (s.table.isVerified(chunk) || s.finished()) {
      s.counters.duplicateChunks++;
      s.table.release(chunk);
      s.budget.give(s.m.chunkBytes);
      return this.giveBack(p, bytes);
    }
    s.table.received(chunk);
    const w: Promise<void> = s.pool
      .verifyAndWrite({ fd: s.part.fd, position: chunk * s.m.chunkBytes, bytes, length, expected: expectedHash(s.m, chunk) })
      .then(
        (res) => {
          this.writes.delete(w);
          s.poolTimes.hashMs += res.hashMs;
          s.poolTimes.writeMs += res.writeMs;
          s.budget.give(s.m.chunkBytes);
          if (res.ok) this.onVerified(p, chunk, length);
          else {
            s.counters.badChunks++;
            p.badData++;
            s.table.release(chunk);
            s.strike(p, { code: ERROR_CODES.HASH_MISMATCH, message: `chunk ${chunk} does not match its hash` });
          }
          this.giveBack(p, res.bytes);
          s.written();
        },
        (err: unknown) => {
          this.writes.delete(w);
          s.fail(asSwarmError(err));
        },
      );
    this.writes.add(w);
  }

  private onVerified(p: Peer, chunk: number, length: number): void {
    const s = this.s;
    if (!s.table.verify(chunk)) return;
    s.progressed();
    s.part.wrote(length);
    s.ticket.mark(chunk);
    p.stats.onVerified(length, Date.now());
    s.counters.fetchedChunks++;
    this.haves.push(chunk);
    const wait = this.haveAt + HAVE_FLUSH_MS - Date.now();
    if (wait <= 0 && !this.haveTimer) this.flushHaves();
    else this.haveTimer ??= setTimeout(() => this.flushHaves(), Math.max(0, wait));
    if (s.table.ownersOf(chunk) > 0) s.requests.cancelRedundant();
  }

  /** Tell every peer (and whoever serves our partial copy) the chunks verified since last time. */
  flushHaves(): void {
    if (this.haveTimer) clearTimeout(this.haveTimer);
    this.haveTimer = null;
    if (this.haves.length === 0) return;
    this.haveAt = Date.now();
    const chunks = this.haves;
    this.haves = [];
    for (const h of this.s.hosts.hosts) h.send({ type: 'have', cid: this.s.m.cid, chunks });
    this.s.events.emit('verified', chunks);
  }
}
