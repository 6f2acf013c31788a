/**
 * When a download stops trying, and with which error: every peer is gone and none is coming back
 * (SWARM_ERR_NO_PEERS, exit 4; SWARM_ERR_HASH_MISMATCH, exit 5, when every holder that connected
 * was dropped for bad data), or no chunk was verified for giveUpMs whatever the peers say
 * (SWARM_ERR_STALLED). While a tracker may still name holders, it is asked at once and given
 * stuckGraceMs. It only decides: the coordinator checks that the download runs and fails it.
 */
import { ERROR_CODES, SwarmError } from '../errors.js';
import type { ChunkTable } from '../scheduling/chunk-table.js';
import type { RequestBook } from '../scheduling/request-book.js';
import type { CoordinatorEmitter } from './events.js';
import type { Peer, Redials } from './peer-state.js';

/** The coordinator's options these checks read (CoordinatorOptions: the same names). */
export interface GiveUpOptions {
  rediscover?: () => boolean;
  stuckGraceMs?: number;
  giveUpMs?: number;
  /** A peer that said `busy` within this long counts as saying busy. */
  requestTimeoutMs: number;
}

export interface GiveUpState {
  table: ChunkTable;
  book: RequestBook;
  peers: ReadonlyMap<number, Peer>;
  /** Holders dropped that may be dialled again (a download waiting for one is not stuck yet). */
  gone: Redials;
  o: GiveUpOptions;
  /** Warnings go out as the coordinator's events. */
  events: CoordinatorEmitter;
}

export class GiveUp {
  /** When the last peer went (and new holders may still come); 0 while some peer is left. */
  private stuckSince = 0;
  /** When the run started or a chunk was last verified (giveUpMs counts from it). */
  private progressAt = 0;

  constructor(private readonly s: GiveUpState) {}

  /** The last peer went, and we wait for new holders (the coordinator checks again at each tick). */
  get waiting(): boolean {
    return this.stuckSince !== 0;
  }

  /** The run started, or a chunk was verified. */
  progressed(now: number): void {
    this.progressAt = now;
  }

  /**
   * Every peer is gone (the caller checks no write can still complete the file): the error to fail
   * with, or null while some peer is left or may come. When every peer that connected was dropped
   * for bad data, that is an integrity failure (exit 5), not a lack of peers.
   */
  ifStuck(): SwarmError | null {
    if ([...this.s.peers.values()].some((x) => x.state !== 'dropped')) {
      this.stuckSince = 0;
      return null;
    }
    // a holder that was only busy, or a vouched one set aside, is dialled again shortly (tick): not stuck yet
    if (this.s.gone.busyRetryPending() || this.s.gone.soonRedialPending()) return null;
    const resume = this.resumeHint();
    const connected = [...this.s.peers.values()].filter((x) => x.everConnected && x.droppedFor !== 'self' && x.droppedFor !== 'duplicate');
    const allLied = connected.length > 0 && connected.every((x) => x.droppedFor === 'bad-data');
    // holders may still be found (a tracker): ask it now, give up after the grace
    if (!allLied && this.s.o.rediscover && this.s.o.stuckGraceMs) {
      const now = Date.now();
      if (this.stuckSince === 0) {
        if (!this.s.o.rediscover()) return new SwarmError(ERROR_CODES.NO_PEERS, `no peer left to fetch from (${resume})`);
        this.stuckSince = now;
        this.s.events.emit('warning', { code: ERROR_CODES.NO_PEERS, message: `every peer is gone; looking for other holders for ${(this.s.o.stuckGraceMs / 1000).toFixed(0)} s` });
        return null;
      }
      if (now - this.stuckSince < this.s.o.stuckGraceMs) return null;
    }
    if (allLied) return new SwarmError(ERROR_CODES.HASH_MISMATCH, `every holder was dropped for sending bad data (${resume})`);
    return new SwarmError(ERROR_CODES.NO_PEERS, `no peer left to fetch from (${resume})`);
  }

  /** No chunk verified for giveUpMs (and no write pending): the error, saying what the peers were doing. */
  ifStalled(now: number, writing: boolean): SwarmError | null {
    const limit = this.s.o.giveUpMs ?? 0;
    if (limit <= 0 || writing || now - this.progressAt < limit) return null;
    const live = [...this.s.peers.values()].filter((p) => p.state !== 'dropped');
    const busy = live.filter((p) => now - p.busyAt < this.s.o.requestTimeoutMs).length;
    const asked = live.filter((p) => this.s.book.inflight(p.id) > 0).length;
    const peers = live.length === 0 ? 'no peer connected' : `${live.length} peer(s) connected, ${asked} asked for chunks, ${busy} of them saying busy`;
    return new SwarmError(ERROR_CODES.STALLED, `no chunk verified for ${Math.round((now - this.progressAt) / 1000)} s (${peers}; ${this.resumeHint()})`);
  }

  private resumeHint(): string {
    const missing = this.s.table.count - this.s.table.verified;
    return `${missing} of ${this.s.table.count} chunks missing; the ticket is kept: run the same command again to resume`;
  }
}
