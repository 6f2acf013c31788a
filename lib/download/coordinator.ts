/**
 * The coordinator of one download (main thread): glue between the pure scheduling units, the peer
 * hosts (threads owning connections) and the chunk pool (hash + write).
 *
 *   holders (tracker, --peer, peer exchange) ─► addHolders ─► PeerRoster (peer-roster.ts):
 *          dial ─► host: connect, hello, interest; strikes, drops, redials
 *   bitfield / have ─► Availability ─► pump() (requests.ts: per active peer, pickRarest among the
 *          chunks it has, up to its pipeline, capped by its rate share of the ByteBudget)
 *          ─► RequestBook ─► host: get {cid, from, to}
 *   'chunk' (buffer transferred) ─► ChunkIntake (chunk-intake.ts): pool.verifyAndWrite
 *          ─► ticket.mark ─► `have` to every peer and 'verified' (we serve it at once)
 *          bad hash: strike, chunk back to missing
 *   table.complete: run() resolves; get.ts finishes the part file (fsync, mtime, final name)
 *   every peer gone for good, or no chunk verified for giveUpMs: run() fails (give-up.ts)
 *
 * Rarest first, with the first chunks at random, so peers of a flash crowd fetch different chunks
 * and have something to trade at once. Endgame: once every chunk left is in flight, an idle
 * peer duplicates the chunk its holder would deliver last, and requests made redundant are
 * cancelled; an idle peer that delivers takes back a duplicate sat on by one that does not.
 *
 * Trust: requests go only to a peer that said hello and sent its bitfield, only for chunks it
 * says it has. A connection to ourselves or a second one to the same peer is closed. A peer that
 * delivers nothing useful in time, floods junk, answers with empty `done`s or lies in its
 * bitfield earns strikes; three drop it. When every peer was dropped for bad data, exit 5. One
 * silent, stalled or trickling is set aside, and dialled again soon while it may be needed.
 */
import { EventEmitter } from 'node:events';
import { ERROR_CODES, SwarmError, asSwarmError, fromWire, isIntegrityCode } from '../errors.js';
import { chunkLength } from '../chunking.js';
import { ChunkTable } from '../scheduling/chunk-table.js';
import { ByteBudget } from '../scheduling/budget.js';
import { Availability } from '../scheduling/availability.js';
import { RequestBook } from '../scheduling/request-book.js';
import type { ChunkPool } from '../pool.js';
import type { PartFile } from '../storage/part-file.js';
import type { Ticket } from '../storage/ticket.js';
import type { PeerAddress } from '../types.js';
import type { HelloFields } from '../protocol/messages.js';
import { localHello } from '../net/identity.js';
import { chunksOf, type Manifest } from '../manifest.js';
import type { FromPeerHost } from './thread-messages.js';
import type { PeerHostGroup } from './peer-host.js';
import type { Peer } from './peer-state.js';
import { RequestPlanner } from './requests.js';
import { ChunkIntake } from './chunk-intake.js';
import { PeerRoster } from './peer-roster.js';
import { GiveUp } from './give-up.js';
export { defaultPeerThreads } from './peer-state.js';
export { DEFAULT_MAX_PEERS } from './peer-roster.js';
import type { CoordinatorEvents, PeerView } from './events.js';

const TICK_MS = 250;
/** A request a peer keeps waiting (`busy`) times out after this many request timeouts (60 s by default). */
const BUSY_WAIT_TIMEOUTS = 3;
/** Junk (bytes of packets for no live request) that earns a strike, if it also exceeds the useful bytes. */
const JUNK_STRIKE_BYTES = 8 << 20;

export interface CoordinatorOptions {
  pool: ChunkPool;
  part: PartFile;
  ticket: Ticket;
  budgetBytes: number;
  /** The threads (or inline host) that own the peer connections. */
  hosts: PeerHostGroup;
  /** A peer with requests out and no byte for this long is dropped. */
  stallMs: number;
  /** A request with no chunk delivered for this long is cancelled and its chunks requeued. */
  requestTimeoutMs: number;
  /** A peer that sends no useful byte within this long of its first request (or no hello, or no bitfield) is set aside. */
  firstChunkMs: number;
  /** Our hello: peer id (to recognise ourselves) and listening port (for others to find us). Default: this process, not listening. */
  hello?: HelloFields;
  /** Holders connected at once, at most. */
  maxPeers?: number;
  /** Aborts the run (Ctrl-C): settles with the signal's reason. */
  signal?: AbortSignal;
  /** Uniform in [0, 1) (tests pass a seeded one). */
  random?: () => number;
  /** Ask for holders at once (the tracker), when the last peer is gone; false: there is no one to ask. */
  rediscover?: () => boolean;
  /** With rediscover: how long to wait for a new holder before giving up. */
  stuckGraceMs?: number;
  /**
   * The download fails (SWARM_ERR_STALLED) when no chunk has been verified for this long, whatever
   * the peers say (0 or absent: never). Per-peer deadlines cannot bound it alone: a peer that
   * answers `busy` forever waits its turn legitimately, and a tracker entry that keeps coming back
   * is a new holder each time.
   */
  giveUpMs?: number;
}

export class Coordinator extends EventEmitter<CoordinatorEvents> {
  private readonly table: ChunkTable;
  private readonly budget: ByteBudget;
  private readonly book: RequestBook;
  private readonly availability: Availability;
  private readonly roster: PeerRoster;
  /** The roster's records (the request planner and the give-up checks read the same map). */
  private readonly peers: ReadonlyMap<number, Peer>;
  private readonly requests: RequestPlanner;
  private readonly intake: ChunkIntake;
  private readonly giveUp: GiveUp;
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private settle: { resolve: () => void; reject: (e: SwarmError) => void } | null = null;
  private finished = false;
  private readonly random: () => number;
  readonly counters = { badPackets: 0, badChunks: 0, fetchedChunks: 0, bytesFetched: 0, duplicateChunks: 0, movedRequests: 0 };
  /** Pool time spent hashing and writing, milliseconds (for the breakdown). */
  readonly poolTimes = { hashMs: 0, writeMs: 0 };
  readonly resumedChunks: number;

  constructor(private readonly m: Manifest, private readonly initial: PeerAddress[], private readonly o: CoordinatorOptions) {
    super();
    const chunks = chunksOf(m);
    this.table = new ChunkTable(chunks, (i) => o.ticket.has(i));
    this.resumedChunks = this.table.verified;
    this.budget = new ByteBudget(o.budgetBytes);
    this.book = new RequestBook(this.table, this.budget, m.chunkBytes);
    this.availability = new Availability(chunks);
    this.random = o.random ?? Math.random;
    this.roster = new PeerRoster({
      m,
      table: this.table,
      book: this.book,
      availability: this.availability,
      hosts: o.hosts,
      hello: o.hello ?? localHello(),
      maxPeers: o.maxPeers,
      firstChunkMs: o.firstChunkMs,
      running: () => this.running && !this.finished,
      events: this,
      dropped: () => this.failIfStuck(),
    });
    this.peers = this.roster.peers;
    this.requests = new RequestPlanner({ m, table: this.table, budget: this.budget, book: this.book, availability: this.availability, peers: this.peers, random: this.random, resumedChunks: this.resumedChunks, stuckMs: o.firstChunkMs });
    this.intake = new ChunkIntake({
      m,
      table: this.table,
      book: this.book,
      budget: this.budget,
      pool: o.pool,
      part: o.part,
      ticket: o.ticket,
      hosts: o.hosts,
      requests: this.requests,
      counters: this.counters,
      poolTimes: this.poolTimes,
      events: this,
      finished: () => this.finished,
      strike: (p, e) => this.roster.strike(p, e),
      fail: (e) => this.fail(e),
      progressed: () => this.giveUp.progressed(Date.now()),
      written: () => this.written(),
    });
    this.giveUp = new GiveUp({ table: this.table, book: this.book, peers: this.peers, gone: this.roster.gone, o, events: this });
  }

  get verifiedBytes(): number {
    let n = 0;
    for (let i = 0; i < this.table.count; i++) if (this.table.isVerified(i)) n += chunkLength(this.m.size, this.m.chunkBytes, i);
    return n;
  }

  /** Fetch every missing chunk. Resolves when all are verified on disk. */
  run(): Promise<void> {
    if (this.table.complete) return Promise.resolve();
    const signal = this.o.signal;
    if (signal?.aborted) return Promise.reject(asSwarmError(signal.reason));
    signal?.addEventListener('abort', () => this.fail(asSwarmError(signal.reason)), { once: true });
    this.o.ticket.failWith((e) => this.fail(e));
    this.o.hosts.bind(
      (msg) => this.onHostMessage(msg),
      (err) => this.fail(err),
    );
    this.running = true;
    this.giveUp.progressed(Date.now());
    this.addHolders(this.initial, true);
    this.timer = setInterval(() => this.tick(), TICK_MS);
    const done = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.failIfStuck();
    return done;
  }

  /** More holders (the user, the tracker: `vouched`; peer exchange, a peer that reached us): PeerRoster.dial. */
  addHolders(addrs: PeerAddress[], vouched = false): void {
    this.roster.dial(addrs, vouched);
  }

  /** Stop now (Ctrl-C): running writes finish and are recorded; nothing else is fetched. */
  abort(reason: SwarmError): void {
    this.fail(reason);
  }

  private fail(err: SwarmError): void {
    if (this.finished) return;
    this.finished = true;
    this.stop();
    this.settle?.reject(err);
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.intake.flushHaves();
  }

  /** A chunk's write ended: the last one completes the download, any other frees room for requests. */
  private written(): void {
    if (this.table.complete && !this.finished) {
      this.finished = true;
      this.stop();
      this.settle?.resolve();
    } else {
      this.schedulePump();
      this.failIfStuck();
    }
  }

  /** Wait for chunk writes already handed to the pool (their chunks are then in the ticket). */
  async drainWrites(): Promise<void> {
    await this.intake.drain();
  }

  /** Timings of the peer threads (before closing them). */
  async hostStats(): Promise<{ threads: number; busyMs: number; copyMs: number; checksumMs: number; inline: boolean }> {
    const all = await Promise.all(this.o.hosts.hosts.map((h) => h.stats()));
    const out = { threads: 0, busyMs: 0, copyMs: 0, checksumMs: 0, inline: this.o.hosts.inline };
    for (const s of all) {
      if (!s) continue;
      if (!out.inline) out.threads++;
      out.busyMs += s.busyMs;
      out.copyMs += s.copyMs;
      out.checksumMs += s.checksumMs;
    }
    return out;
  }

  async closeHosts(): Promise<void> {
    await this.o.hosts.close();
  }

  peersUsed(): number {
    return this.roster.used();
  }

  peersDropped(): number {
    return this.roster.droppedCount();
  }

  private onHostMessage(msg: FromPeerHost): void {
    if (this.finished && msg.type !== 'chunk') return;
    const p = this.peers.get(msg.peerId);
    if (!p) return;
    const now = Date.now();
    switch (msg.type) {
      case 'connected':
        p.tcpAt = now; // TCP only: requests wait for hello and bitfield
        break;
      case 'hello':
        this.roster.onHello(p, msg.peer, now);
        break;
      case 'bitfield':
        if (p.state !== 'known' && p.state !== 'active') break;
        this.availability.setPeer(p.id, msg.bits);
        p.complete = this.availability.isComplete(p.id);
        p.state = 'active';
        break;
      case 'have':
        for (const c of msg.chunks) this.availability.have(p.id, c);
        p.complete = this.availability.isComplete(p.id);
        break;
      case 'peers':
        this.roster.introduced(p, msg.peers, now);
        break;
      case 'busy':
        p.busyAt = now;
        p.stats.onBusy(now);
        this.book.waiting(msg.reqId, now);
        break;
      case 'started':
        this.book.started(msg.reqId);
        break;
      case 'misbehaved':
        this.roster.strike(p, msg.error);
        break;
      case 'bytes': {
        const useful = msg.n - msg.junk;
        if (useful > 0) p.stats.onBytes(useful, now);
        p.usefulBytes += useful;
        p.junkBytes += msg.junk;
        this.counters.bytesFetched += msg.n;
        if (p.junkBytes > JUNK_STRIKE_BYTES && p.junkBytes > p.usefulBytes) {
          p.junkBytes = 0;
          this.roster.strike(p, { code: ERROR_CODES.BAD_PACKET, message: `sent ${JUNK_STRIKE_BYTES >> 20} MiB of data nobody asked for` });
        }
        break;
      }
      case 'chunk':
        this.intake.receive(p, msg.reqId, msg.chunk, msg.bytes, msg.length, now);
        break;
      case 'strike':
        this.counters.badPackets++;
        if (isIntegrityCode(msg.error.code)) p.badData++;
        if (msg.chunk >= 0) this.book.failed(msg.reqId, msg.chunk);
        this.roster.strike(p, msg.error);
        break;
      case 'done': {
        const undelivered = this.book.end(msg.reqId);
        if (msg.error) this.roster.onRequestError(p, msg.error);
        else if (undelivered > 0) this.roster.strike(p, { code: ERROR_CODES.BAD_MESSAGE, message: `said a request was done with ${undelivered} chunk(s) not sent` });
        break;
      }
      case 'closed':
        if (p.state !== 'dropped') {
          const why = msg.error ? fromWire(msg.error).message : 'connection closed';
          this.roster.drop(p, p.everConnected ? why : `could not connect: ${why}`, msg.error?.code ?? ERROR_CODES.PEER_CLOSED);
        }
        break;
    }
    // a byte count changes no availability nor any free slot: the next event or tick pumps
    if (msg.type !== 'bytes') this.schedulePump();
  }

  private pumpQueued = false;
  /** One pump per event-loop turn, however many host messages arrived in it. */
  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    setImmediate(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  /**
   * Every peer is gone and no write can still complete the file: give up, keeping the ticket
   * (GiveUp.ifStuck: unless a holder may still come back or be found).
   */
  private failIfStuck(): void {
    if (!this.running || this.finished || this.table.complete || this.intake.writing) return;
    const err = this.giveUp.ifStuck();
    if (err) this.fail(err);
  }

  private pump(): void {
    if (this.finished || !this.running) return;
    this.requests.pump();
  }

  private tick(): void {
    const now = Date.now();
    // everyone is gone: dial the first holders again where allowed (busy ones come back soon)
    if (this.roster.live === 0) this.addHolders(this.initial, true);
    this.roster.tick(now, this.o);
    this.roster.redial(now, () => this.book.overdue(now, this.o.firstChunkMs) || this.requests.needsHolders());
    for (const r of this.book.timedOut(now, this.o.requestTimeoutMs)) {
      const p = this.peers.get(r.peer)!;
      // waiting its turn at a busy peer is no timeout, for BUSY_WAIT_TIMEOUTS request timeouts at
      // most: a peer saying `busy` between rare chunks escaped every deadline (hostile review)
      const queued = r.waitingSince > 0 ? now - r.waitingSince : 0;
      if (now - p.busyAt < this.o.requestTimeoutMs && queued < BUSY_WAIT_TIMEOUTS * this.o.requestTimeoutMs) continue;
      this.roster.requestFailed(now);
      this.requests.cancel(r);
      const what = queued > 0 ? `request waited in its queue for ${Math.round(queued / 1000)} s` : `request timed out after ${this.o.requestTimeoutMs} ms`;
      this.roster.strike(p, { code: ERROR_CODES.PEER_TIMEOUT, message: what });
    }
    this.counters.movedRequests += this.requests.moveWaiting(now);
    const stalled = this.giveUp.ifStalled(now, this.intake.writing);
    if (stalled) return this.fail(stalled);
    this.pump();
    if (this.giveUp.waiting) this.failIfStuck();
    this.emit('snapshot', this.snapshot());
  }

  snapshot(): { verifiedBytes: number; verifiedChunks: number; peers: PeerView[] } {
    return { verifiedBytes: this.verifiedBytes, verifiedChunks: this.table.verified, peers: this.roster.views() };
  }
}
