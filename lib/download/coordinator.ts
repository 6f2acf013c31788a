/**
 * The coordinator of one download (main thread): glue between the pure scheduling units, the peer
 * hosts (threads owning connections) and the chunk pool (hash + write).
 *
 *   holders (tracker, --peer, peer exchange) ─► addHolders ─► host: connect, hello, interest
 *   bitfield / have ─► Availability ─► pump() (requests.ts: per active peer, pickRarest among the
 *          chunks it has, up to its pipeline, capped by its rate share of the ByteBudget)
 *          ─► RequestBook ─► host: get {cid, from, to}
 *   'chunk' (buffer transferred) ─► pool.verifyAndWrite ─► ticket.mark ─► `have` to every peer
 *          bad hash: strike, chunk back to missing        and 'verified' (we serve it at once)
 *   table.complete: run() resolves; get.ts finishes the part file (fsync, mtime, final name)
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
import { ERROR_CODES, SwarmError, asSwarmError, fromWire, isIntegrityCode, type WireError } from '../errors.js';
import { chunkLength } from '../chunking.js';
import { ChunkTable } from '../scheduling/chunk-table.js';
import { PeerStats } from '../scheduling/peer-stats.js';
import { ByteBudget } from '../scheduling/budget.js';
import { Availability } from '../scheduling/availability.js';
import { RequestBook } from '../scheduling/request-book.js';
import type { ChunkPool } from '../pool.js';
import type { PartFile } from '../storage/part-file.js';
import type { Ticket } from '../storage/ticket.js';
import { addressText, type PeerAddress } from '../types.js';
import type { HelloFields } from '../protocol/messages.js';
import { localHello } from '../net/identity.js';
import { chunksOf, expectedHash, type Manifest } from '../manifest.js';
import type { FromPeerHost } from './thread-messages.js';
import type { PeerHostGroup } from './peer-host.js';
import { peerView, REDIAL_AFTER_MS, Redials, struckOut, tickPeer, type Peer } from './peer-state.js';
import { RequestPlanner } from './requests.js';
import { PexIntake } from '../scheduling/pex-intake.js';
export { defaultPeerThreads } from './peer-state.js';
import type { CoordinatorEvents, PeerView } from './events.js';

const TICK_MS = 250;
/** A request a peer keeps waiting (`busy`) times out after this many request timeouts (60 s by default). */
const BUSY_WAIT_TIMEOUTS = 3;
/** Junk (bytes of packets for no live request) that earns a strike, if it also exceeds the useful bytes. */
const JUNK_STRIKE_BYTES = 8 << 20;
/**
 * Newly verified chunks are told to peers at once, then in batches at most this often: a chunk
 * verified after a quiet spell goes out without waiting (a flash crowd relays a chunk only once
 * its holders are told, and the seeder's upload slot is held until then), and a fast download
 * still sends a few `have` batches a second, not one per chunk.
 */
const HAVE_FLUSH_MS = 25;
export const DEFAULT_MAX_PEERS = 48;
/** Peer records kept at most (live ones always; the oldest dropped ones go first). */
const MAX_DROPPED_RECORDS = 4 * DEFAULT_MAX_PEERS;

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
  private readonly peers = new Map<number, Peer>();
  /** Live peers by dialled address, and holders dropped (when, and whether for bad data). */
  private readonly byKey = new Map<string, Peer>();
  /** The record id last made for each dialled address (a redial replaces it). */
  private readonly lastIdOf = new Map<string, number>();
  /** When a request for a chunk last timed out, or a peer was dropped with requests out. */
  private chunkFailedAt = 0;
  /** Addresses taken from peer exchange: bounded per peer and over time. */
  private readonly pex = new PexIntake(Date.now());
  private readonly gone: Redials;
  private readonly writes = new Set<Promise<void>>();
  private nextPeer = 0;
  private nextHost = 0;
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private haveTimer: NodeJS.Timeout | null = null;
  /** When `have`s were last sent (HAVE_FLUSH_MS). */
  private haveAt = 0;
  private haves: number[] = [];
  private settle: { resolve: () => void; reject: (e: SwarmError) => void } | null = null;
  private finished = false;
  /** When the last peer went (and new holders may still come); 0 while some peer is left. */
  private stuckSince = 0;
  /** When the run started or a chunk was last verified (giveUpMs counts from it). */
  private progressAt = 0;
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
    this.gone = new Redials(o.firstChunkMs);
    this.hello = o.hello ?? localHello();
    this.requests = new RequestPlanner({ m, table: this.table, budget: this.budget, book: this.book, availability: this.availability, peers: this.peers, random: this.random, resumedChunks: this.resumedChunks, stuckMs: o.firstChunkMs });
  }

  private readonly requests: RequestPlanner;

  private readonly hello: HelloFields;

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
    this.progressAt = Date.now();
    this.addHolders(this.initial, true);
    this.timer = setInterval(() => this.tick(), TICK_MS);
    const done = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.failIfStuck();
    return done;
  }

  /**
   * More holders (named by the user or the tracker: `vouched`; or by a peer's `peers`, or a peer
   * that reached us): each new address is dialled, up to maxPeers at once. A holder dropped for
   * bad data is never dialled again; one dropped for other reasons later (Redials: a vouched one
   * sooner while we may lack a holder).
   */
  addHolders(addrs: PeerAddress[], vouched = false): void {
    if (!this.running || this.finished) return;
    const now = Date.now();
    const cap = this.o.maxPeers ?? DEFAULT_MAX_PEERS;
    for (const a of addrs) {
      const key = `${a.ip}|${a.port}`;
      if (vouched) this.gone.vouch(key);
      if (this.byKey.has(key)) continue;
      if (!this.gone.mayDial(key, now)) continue;
      if (this.byKey.size >= cap) return;
      const hosts = this.o.hosts.hosts;
      const host = hosts[this.nextHost++ % hosts.length]!;
      const id = this.nextPeer++;
      const address = addressText(a);
      const p: Peer = { id, address, key, host, stats: new PeerStats(now), state: 'connecting', tcpAt: 0, everConnected: false, remoteId: null, complete: false, badData: 0, timeouts: 0, usefulBytes: 0, junkBytes: 0, firstRequestAt: 0, busyAt: 0, droppedFor: null, nothingAt: null };
      this.forget(key);
      this.peers.set(id, p);
      this.byKey.set(key, p);
      this.lastIdOf.set(key, id);
      host.send({ type: 'connect', peerId: id, host: a.ip, port: a.port, cid: this.m.cid, chunks: this.table.count, hello: this.hello, bits: this.bitfield() });
    }
  }

  /**
   * A holder dialled again replaces its dropped record (a record per dial grew without end while
   * holders came and went), and at most MAX_DROPPED_RECORDS dropped ones are kept (the oldest go).
   */
  private forget(key: string): void {
    const old = this.lastIdOf.get(key);
    if (old !== undefined && this.peers.get(old)?.state === 'dropped') this.remove(this.peers.get(old)!);
    if (this.peers.size < MAX_DROPPED_RECORDS) return;
    let over = this.peers.size - MAX_DROPPED_RECORDS + 1;
    for (const q of this.peers.values()) {
      if (over <= 0) break;
      if (q.state !== 'dropped') continue;
      this.remove(q);
      over--;
    }
  }

  private remove(q: Peer): void {
    this.peers.delete(q.id);
    if (this.lastIdOf.get(q.key) === q.id) this.lastIdOf.delete(q.key);
    this.pex.forget(q.id);
  }

  /** The chunks verified here, as a bitfield (a copy: it crosses to a peer thread). */
  private bitfield(): Uint8Array {
    const bits = new Uint8Array(Math.ceil(this.table.count / 8));
    for (let i = 0; i < this.table.count; i++) if (this.table.isVerified(i)) bits[i >> 3]! |= 1 << (i & 7);
    return bits;
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
    this.flushHaves();
  }

  /** Wait for chunk writes already handed to the pool (their chunks are then in the ticket). */
  async drainWrites(): Promise<void> {
    while (this.writes.size > 0) await Promise.allSettled([...this.writes]);
    this.flushHaves();
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
    return [...this.peers.values()].filter((p) => p.stats.chunksVerified > 0).length;
  }

  peersDropped(): number {
    return [...this.peers.values()].filter((p) => p.state === 'dropped' && p.everConnected && p.droppedFor !== 'self' && p.droppedFor !== 'duplicate').length;
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
        this.onHello(p, msg.peer, now);
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
      case 'peers': {
        // only addresses we could dial now count against what this peer may introduce
        const fresh = msg.peers.filter((a) => {
          const key = `${a.ip}|${a.port}`;
          return !this.byKey.has(key) && this.gone.mayDial(key, now);
        });
        this.addHolders(this.pex.take(p.id, fresh, now));
        break;
      }
      case 'busy':
        p.busyAt = now;
        p.stats.onBusy(now);
        this.book.waiting(msg.reqId, now);
        break;
      case 'started':
        this.book.started(msg.reqId);
        break;
      case 'misbehaved':
        this.strike(p, msg.error);
        break;
      case 'bytes': {
        const useful = msg.n - msg.junk;
        if (useful > 0) p.stats.onBytes(useful, now);
        p.usefulBytes += useful;
        p.junkBytes += msg.junk;
        this.counters.bytesFetched += msg.n;
        if (p.junkBytes > JUNK_STRIKE_BYTES && p.junkBytes > p.usefulBytes) {
          p.junkBytes = 0;
          this.strike(p, { code: ERROR_CODES.BAD_PACKET, message: `sent ${JUNK_STRIKE_BYTES >> 20} MiB of data nobody asked for` });
        }
        break;
      }
      case 'chunk':
        this.onChunk(p, msg.reqId, msg.chunk, msg.bytes, msg.length, now);
        break;
      case 'strike':
        this.counters.badPackets++;
        if (isIntegrityCode(msg.error.code)) p.badData++;
        if (msg.chunk >= 0) this.book.failed(msg.reqId, msg.chunk);
        this.strike(p, msg.error);
        break;
      case 'done': {
        const undelivered = this.book.end(msg.reqId);
        if (msg.error) this.onRequestError(p, msg.error);
        else if (undelivered > 0) this.strike(p, { code: ERROR_CODES.BAD_MESSAGE, message: `said a request was done with ${undelivered} chunk(s) not sent` });
        break;
      }
      case 'closed':
        if (p.state !== 'dropped') {
          const why = msg.error ? fromWire(msg.error).message : 'connection closed';
          this.drop(p, p.everConnected ? why : `could not connect: ${why}`, msg.error?.code ?? ERROR_CODES.PEER_CLOSED);
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

  /** Its hello: ourselves (a tracker lists us too) or a second connection to one peer are closed quietly. */
  private onHello(p: Peer, remoteId: string, now: number): void {
    if (p.state !== 'connecting') return;
    const twin = remoteId === this.hello.peer ? 'self' : [...this.peers.values()].some((q) => q !== p && q.state !== 'dropped' && q.remoteId === remoteId) ? 'duplicate' : null;
    p.remoteId = remoteId;
    if (twin) {
      p.droppedFor = twin;
      this.drop(p, twin === 'self' ? 'this is ourselves' : 'a second connection to the same peer', ERROR_CODES.PEER_CLOSED, true);
      return;
    }
    p.state = 'known';
    p.everConnected = true;
    p.stats = new PeerStats(now);
  }

  private giveBack(p: Peer, bytes: Uint8Array): void {
    p.host.send({ type: 'buffer', bytes }, [bytes.buffer as ArrayBuffer]);
  }

  private onChunk(p: Peer, reqId: number, chunk: number, bytes: Uint8Array, length: number, now: number): void {
    if (!this.book.delivered(reqId, chunk, now)) return this.giveBack(p, bytes); // a request given up on
    if (this.table.isVerified(chunk) || this.finished) {
      this.counters.duplicateChunks++;
      this.table.release(chunk);
      this.budget.give(this.m.chunkBytes);
      return this.giveBack(p, bytes);
    }
    this.table.received(chunk);
    const w: Promise<void> = this.o.pool
      .verifyAndWrite({ fd: this.o.part.fd, position: chunk * this.m.chunkBytes, bytes, length, expected: expectedHash(this.m, chunk) })
      .then(
        (res) => {
          this.writes.delete(w);
          this.poolTimes.hashMs += res.hashMs;
          this.poolTimes.writeMs += res.writeMs;
          this.budget.give(this.m.chunkBytes);
          if (res.ok) this.onVerified(p, chunk, length);
          else {
            this.counters.badChunks++;
            p.badData++;
            this.table.release(chunk);
            this.strike(p, { code: ERROR_CODES.HASH_MISMATCH, message: `chunk ${chunk} does not match its hash` });
          }
          this.giveBack(p, res.bytes);
          if (this.table.complete && !this.finished) {
            this.finished = true;
            this.stop();
            this.settle?.resolve();
          } else {
            this.schedulePump();
            this.failIfStuck();
          }
        },
        (err: unknown) => {
          this.writes.delete(w);
          this.fail(asSwarmError(err));
        },
      );
    this.writes.add(w);
  }

  private onVerified(p: Peer, chunk: number, length: number): void {
    if (!this.table.verify(chunk)) return;
    this.progressAt = Date.now();
    this.o.part.wrote(length);
    this.o.ticket.mark(chunk);
    p.stats.onVerified(length, Date.now());
    this.counters.fetchedChunks++;
    this.haves.push(chunk);
    const wait = this.haveAt + HAVE_FLUSH_MS - Date.now();
    if (wait <= 0 && !this.haveTimer) this.flushHaves();
    else this.haveTimer ??= setTimeout(() => this.flushHaves(), Math.max(0, wait));
    if (this.table.ownersOf(chunk) > 0) this.requests.cancelRedundant();
  }

  /** Tell every peer (and whoever serves our partial copy) the chunks verified since last time. */
  private flushHaves(): void {
    if (this.haveTimer) clearTimeout(this.haveTimer);
    this.haveTimer = null;
    if (this.haves.length === 0) return;
    this.haveAt = Date.now();
    const chunks = this.haves;
    this.haves = [];
    for (const h of this.o.hosts.hosts) h.send({ type: 'have', cid: this.m.cid, chunks });
    this.emit('verified', chunks);
  }

  private onRequestError(p: Peer, e: WireError): void {
    if (e.code === ERROR_CODES.FILE_CHANGED || e.code === ERROR_CODES.NOT_FOUND || e.code === ERROR_CODES.PATH_ESCAPE) {
      this.drop(p, `no longer has this content: ${e.message}`, e.code);
    } else this.strike(p, e);
  }

  private strike(p: Peer, e: WireError): void {
    if (p.state === 'dropped') return;
    this.emit('warning', { peer: p.address, code: e.code, message: e.message });
    if (e.code === ERROR_CODES.PEER_TIMEOUT) p.timeouts++;
    if (p.stats.strike()) {
      p.droppedFor = struckOut(p);
      const what = p.droppedFor === 'slow' ? 'too many requests timed out' : 'too much bad data';
      this.drop(p, `${what} (${p.stats.strikes} strikes; last: ${e.message})`, e.code);
    }
  }

  private drop(p: Peer, reason: string, code: string, quiet = false): void {
    if (p.state === 'dropped') return;
    p.state = 'dropped';
    // a peer that sent only bad data and then hung up (or stalled) lied all the same
    if (p.badData > 0 && p.stats.chunksVerified === 0 && (!p.droppedFor || p.droppedFor === 'trickle')) p.droppedFor = 'bad-data';
    if (this.book.inflight(p.id) > 0) this.chunkFailedAt = Date.now();
    this.book.endPeer(p.id);
    this.availability.removePeer(p.id);
    if (this.byKey.get(p.key) === p) this.byKey.delete(p.key);
    this.gone.dropped(p, Date.now(), code === ERROR_CODES.BUSY);
    p.host.send({ type: 'close', peerId: p.id });
    if (!quiet) this.emit('peer-dropped', { peer: p.address, reason, code });
    this.failIfStuck();
  }

  /**
   * Every peer is gone and no write can still complete the file: give up, keeping the ticket. When
   * every peer that connected was dropped for bad data, that is an integrity failure (exit 5), not
   * a lack of peers.
   */
  private failIfStuck(): void {
    if (!this.running || this.finished || this.table.complete || this.writes.size > 0) return;
    if ([...this.peers.values()].some((x) => x.state !== 'dropped')) {
      this.stuckSince = 0;
      return;
    }
    // a holder that was only busy, or a vouched one set aside, is dialled again shortly (tick): not stuck yet
    if (this.gone.busyRetryPending() || this.gone.soonRedialPending()) return;
    const resume = this.resumeHint();
    const connected = [...this.peers.values()].filter((x) => x.everConnected && x.droppedFor !== 'self' && x.droppedFor !== 'duplicate');
    const allLied = connected.length > 0 && connected.every((x) => x.droppedFor === 'bad-data');
    // holders may still be found (a tracker): ask it now, give up after the grace
    if (!allLied && this.o.rediscover && this.o.stuckGraceMs) {
      const now = Date.now();
      if (this.stuckSince === 0) {
        if (!this.o.rediscover()) return this.fail(new SwarmError(ERROR_CODES.NO_PEERS, `no peer left to fetch from (${resume})`));
        this.stuckSince = now;
        this.emit('warning', { code: ERROR_CODES.NO_PEERS, message: `every peer is gone; looking for other holders for ${(this.o.stuckGraceMs / 1000).toFixed(0)} s` });
        return;
      }
      if (now - this.stuckSince < this.o.stuckGraceMs) return;
    }
    if (allLied) {
      this.fail(new SwarmError(ERROR_CODES.HASH_MISMATCH, `every holder was dropped for sending bad data (${resume})`));
      return;
    }
    this.fail(new SwarmError(ERROR_CODES.NO_PEERS, `no peer left to fetch from (${resume})`));
  }

  private resumeHint(): string {
    const missing = this.table.count - this.table.verified;
    return `${missing} of ${this.table.count} chunks missing; the ticket is kept: run the same command again to resume`;
  }

  /** No chunk verified for giveUpMs: fail, saying what the peers were doing. */
  private giveUpIfStalled(now: number): boolean {
    const limit = this.o.giveUpMs ?? 0;
    if (limit <= 0 || this.writes.size > 0 || now - this.progressAt < limit) return false;
    const live = [...this.peers.values()].filter((p) => p.state !== 'dropped');
    const busy = live.filter((p) => now - p.busyAt < this.o.requestTimeoutMs).length;
    const asked = live.filter((p) => this.book.inflight(p.id) > 0).length;
    const peers = live.length === 0 ? 'no peer connected' : `${live.length} peer(s) connected, ${asked} asked for chunks, ${busy} of them saying busy`;
    this.fail(new SwarmError(ERROR_CODES.STALLED, `no chunk verified for ${Math.round((now - this.progressAt) / 1000)} s (${peers}; ${this.resumeHint()})`));
    return true;
  }

  private pump(): void {
    if (this.finished || !this.running) return;
    this.requests.pump();
  }

  private tick(): void {
    const now = Date.now();
    // everyone is gone: dial the first holders again where allowed (busy ones come back soon)
    if (this.byKey.size === 0) this.addHolders(this.initial, true);
    for (const p of this.peers.values()) {
      const late = tickPeer(p, now, this.book.inflight(p.id), this.o, this.m.chunkBytes);
      if (late) this.drop(p, late, ERROR_CODES.PEER_TIMEOUT);
    }
    // a chunk we lack that no proven peer has, or a request that failed lately or is overdue (a
    // peer that proved itself on other chunks may hold this one hostage): holders set aside come back soon
    this.gone.needed = now - this.chunkFailedAt < REDIAL_AFTER_MS || this.book.overdue(now, this.o.firstChunkMs) || this.requests.needsHolders();
    if (this.gone.needed) this.addHolders(this.gone.due(now));
    for (const r of this.book.timedOut(now, this.o.requestTimeoutMs)) {
      const p = this.peers.get(r.peer)!;
      // waiting its turn at a busy peer is no timeout, for BUSY_WAIT_TIMEOUTS request timeouts at
      // most: a peer saying `busy` between rare chunks escaped every deadline (hostile review)
      const queued = r.waitingSince > 0 ? now - r.waitingSince : 0;
      if (now - p.busyAt < this.o.requestTimeoutMs && queued < BUSY_WAIT_TIMEOUTS * this.o.requestTimeoutMs) continue;
      this.chunkFailedAt = now;
      this.requests.cancel(r);
      const what = queued > 0 ? `request waited in its queue for ${Math.round(queued / 1000)} s` : `request timed out after ${this.o.requestTimeoutMs} ms`;
      this.strike(p, { code: ERROR_CODES.PEER_TIMEOUT, message: what });
    }
    this.counters.movedRequests += this.requests.moveWaiting(now);
    if (this.giveUpIfStalled(now)) return;
    this.pump();
    if (this.stuckSince) this.failIfStuck();
    this.emit('snapshot', this.snapshot());
  }

  snapshot(): { verifiedBytes: number; verifiedChunks: number; peers: PeerView[] } {
    return {
      verifiedBytes: this.verifiedBytes,
      verifiedChunks: this.table.verified,
      peers: [...this.peers.values()].filter((p) => p.droppedFor !== 'self' && p.droppedFor !== 'duplicate').map((p) => peerView(p, this.book.inflight(p.id))),
    };
  }
}
