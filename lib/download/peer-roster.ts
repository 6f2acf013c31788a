/**
 * The peers of one download and their lives: which holder is dialled (at most maxPeers at once, on
 * which peer host), who is a twin (ourselves, or a second connection to one peer), strikes and
 * drops, and who is dialled again (Redials, peer-state.ts) and taken from peer exchange
 * (PexIntake). The records themselves are `Peer`s (peer-state.ts); what to ask of them is the
 * request planner's (requests.ts). The coordinator hands it peer messages and ticks.
 *
 *   addresses ─► dial ─► host: connect ─► hello (twin? closed quietly) ─► known ─► bitfield: active
 *   misbehaved, timeout, bad hash ─► strike ─► a third ─► drop ─► Redials (back later, or never)
 *   overdue at a tick (silent, stalled, trickling) ─► drop
 *
 * A dropped peer's requests end at once and its chunks go back to missing; the coordinator hears
 * of every drop (the download may be stuck now).
 */
import { ERROR_CODES, type WireError } from '../errors.js';
import type { ChunkTable } from '../scheduling/chunk-table.js';
import { PeerStats } from '../scheduling/peer-stats.js';
import type { Availability } from '../scheduling/availability.js';
import type { RequestBook } from '../scheduling/request-book.js';
import { PexIntake } from '../scheduling/pex-intake.js';
import { addressText, type PeerAddress } from '../types.js';
import type { HelloFields } from '../protocol/messages.js';
import type { Manifest } from '../manifest.js';
import type { PeerHostGroup } from './peer-host.js';
import type { CoordinatorEmitter, PeerView } from './events.js';
import { peerView, REDIAL_AFTER_MS, Redials, struckOut, tickPeer, type Deadlines, type Peer } from './peer-state.js';

export const DEFAULT_MAX_PEERS = 48;
/** Peer records kept at most (live ones always; the oldest dropped ones go first). */
const MAX_DROPPED_RECORDS = 4 * DEFAULT_MAX_PEERS;

export interface RosterState {
  m: Manifest;
  table: ChunkTable;
  book: RequestBook;
  availability: Availability;
  hosts: PeerHostGroup;
  /** Our hello (our peer id tells a connection to ourselves). */
  hello: HelloFields;
  /** Holders connected at once, at most. */
  maxPeers?: number;
  /** A vouched holder set aside comes back this soon while we may lack one (Redials). */
  firstChunkMs: number;
  /** Warnings and drops go out as the coordinator's events. */
  events: CoordinatorEmitter;
  /** False before the download runs and once it settled: no one is dialled then. */
  running(): boolean;
  /** A peer was dropped: the download may be stuck now. */
  dropped(): void;
}

/** The key of a dialled address: the same holder is never dialled twice at once. */
const keyOf = (a: PeerAddress): string => `${a.ip}|${a.port}`;

export class PeerRoster {
  readonly peers = new Map<number, Peer>();
  /** Live peers by dialled address, and holders dropped (when, and whether for bad data). */
  private readonly byKey = new Map<string, Peer>();
  /** The record id last made for each dialled address (a redial replaces it). */
  private readonly lastIdOf = new Map<string, number>();
  /** When a request for a chunk last timed out, or a peer was dropped with requests out. */
  private chunkFailedAt = 0;
  /** Addresses taken from peer exchange: bounded per peer and over time. */
  private readonly pex = new PexIntake(Date.now());
  readonly gone: Redials;
  private nextPeer = 0;
  private nextHost = 0;

  constructor(private readonly s: RosterState) {
    this.gone = new Redials(s.firstChunkMs);
  }

  /** Peers not dropped (connecting, known or active). */
  get live(): number {
    return this.byKey.size;
  }

  /**
   * More holders (named by the user or the tracker: `vouched`; or by a peer's `peers`, or a peer
   * that reached us): each new address is dialled, up to maxPeers at once. A holder dropped for
   * bad data is never dialled again; one dropped for other reasons later (Redials: a vouched one
   * sooner while we may lack a holder).
   */
  dial(addrs: PeerAddress[], vouched = false): void {
    if (!this.s.running()) return;
    const now = Date.now();
    const cap = this.s.maxPeers ?? DEFAULT_MAX_PEERS;
    for (const a of addrs) {
      const key = keyOf(a);
      if (vouched) this.gone.vouch(key);
      if (this.byKey.has(key)) continue;
      if (!this.gone.mayDial(key, now)) continue;
      if (this.byKey.size >= cap) return;
      const hosts = this.s.hosts.hosts;
      const host = hosts[this.nextHost++ % hosts.length]!;
      const id = this.nextPeer++;
      const address = addressText(a);
      const p: Peer = { id, address, key, host, stats: new PeerStats(now), state: 'connecting', tcpAt: 0, everConnected: false, remoteId: null, complete: false, badData: 0, timeouts: 0, usefulBytes: 0, junkBytes: 0, firstRequestAt: 0, busyAt: 0, droppedFor: null, nothingAt: null };
      this.forget(key);
      this.peers.set(id, p);
      this.byKey.set(key, p);
      this.lastIdOf.set(key, id);
      host.send({ type: 'connect', peerId: id, host: a.ip, port: a.port, cid: this.s.m.cid, chunks: this.s.table.count, hello: this.s.hello, bits: this.bitfield() });
    }
  }

  /** A peer's `peers`: only addresses we could dial now count against what this peer may introduce. */
  introduced(p: Peer, addrs: PeerAddress[], now: number): void {
    const fresh = addrs.filter((a) => {
      const key = keyOf(a);
      return !this.byKey.has(key) && this.gone.mayDial(key, now);
    });
    this.dial(this.pex.take(p.id, fresh, now));
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
    const bits = new Uint8Array(Math.ceil(this.s.table.count / 8));
    for (let i = 0; i < this.s.table.count; i++) if (this.s.table.isVerified(i)) bits[i >> 3]! |= 1 << (i & 7);
    return bits;
  }

  /** Its hello: ourselves (a tracker lists us too) or a second connection to one peer are closed quietly. */
  onHello(p: Peer, remoteId: string, now: number): void {
    if (p.state !== 'connecting') return;
    const twin = remoteId === this.s.hello.peer ? 'self' : [...this.peers.values()].some((q) => q !== p && q.state !== 'dropped' && q.remoteId === remoteId) ? 'duplicate' : null;
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

  /** A request ended in an error: a holder that no longer has the content goes, any other earns a strike. */
  onRequestError(p: Peer, e: WireError): void {
    if (e.code === ERROR_CODES.FILE_CHANGED || e.code === ERROR_CODES.NOT_FOUND || e.code === ERROR_CODES.PATH_ESCAPE) {
      this.drop(p, `no longer has this content: ${e.message}`, e.code);
    } else this.strike(p, e);
  }

  strike(p: Peer, e: WireError): void {
    if (p.state === 'dropped') return;
    this.s.events.emit('warning', { peer: p.address, code: e.code, message: e.message });
    if (e.code === ERROR_CODES.PEER_TIMEOUT) p.timeouts++;
    if (p.stats.strike()) {
      p.droppedFor = struckOut(p);
      const what = p.droppedFor === 'slow' ? 'too many requests timed out' : 'too much bad data';
      this.drop(p, `${what} (${p.stats.strikes} strikes; last: ${e.message})`, e.code);
    }
  }

  drop(p: Peer, reason: string, code: string, quiet = false): void {
    if (p.state === 'dropped') return;
    p.state = 'dropped';
    // a peer that sent only bad data and then hung up (or stalled) lied all the same
    if (p.badData > 0 && p.stats.chunksVerified === 0 && (!p.droppedFor || p.droppedFor === 'trickle')) p.droppedFor = 'bad-data';
    if (this.s.book.inflight(p.id) > 0) this.chunkFailedAt = Date.now();
    this.s.book.endPeer(p.id);
    this.s.availability.removePeer(p.id);
    if (this.byKey.get(p.key) === p) this.byKey.delete(p.key);
    this.gone.dropped(p, Date.now(), code === ERROR_CODES.BUSY);
    p.host.send({ type: 'close', peerId: p.id });
    if (!quiet) this.s.events.emit('peer-dropped', { peer: p.address, reason, code });
    this.s.dropped();
  }

  /** A request for a chunk timed out (holders set aside may be needed soon). */
  requestFailed(now: number): void {
    this.chunkFailedAt = now;
  }

  /** Every peer's clocks at a tick; a peer overdue (silent, stalled, trickling) is dropped. */
  tick(now: number, o: Deadlines): void {
    for (const p of this.peers.values()) {
      const late = tickPeer(p, now, this.s.book.inflight(p.id), o, this.s.m.chunkBytes);
      if (late) this.drop(p, late, ERROR_CODES.PEER_TIMEOUT);
    }
  }

  /**
   * A request that failed lately, or (`lacking`: a chunk we lack that no proven peer has, or a
   * request overdue; a peer that proved itself on other chunks may hold this one hostage): holders
   * set aside come back soon.
   */
  redial(now: number, lacking: () => boolean): void {
    this.gone.needed = now - this.chunkFailedAt < REDIAL_AFTER_MS || lacking();
    if (this.gone.needed) this.dial(this.gone.due(now));
  }

  /** Peers that delivered at least one verified chunk. */
  used(): number {
    return [...this.peers.values()].filter((p) => p.stats.chunksVerified > 0).length;
  }

  /** Peers that spoke our protocol and were dropped (twins not counted). */
  droppedCount(): number {
    return [...this.peers.values()].filter((p) => p.state === 'dropped' && p.everConnected && p.droppedFor !== 'self' && p.droppedFor !== 'duplicate').length;
  }

  /** Every peer for progress output (twins left out). */
  views(): PeerView[] {
    return [...this.peers.values()].filter((p) => p.droppedFor !== 'self' && p.droppedFor !== 'duplicate').map((p) => peerView(p, this.s.book.inflight(p.id)));
  }
}
