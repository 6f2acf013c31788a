/**
 * The overlay of seed 001 (a Gnutella-style network): each peer keeps neighbours (peer-book.ts)
 * and floods SEARCH and DISCOVER to them, hop by hop, within a TTL.
 *
 *   origin ─search{sid,ttl}─► neighbour ─search{sid,ttl-1}─► its neighbours … (each sid once per peer)
 *   origin ◄──────hits{sid}── neighbour ◄────────hits{sid}── holder           (back along the path)
 *
 * **Routing of answers: back along the path** (as Gnutella's query hits), not straight to the
 * origin as seed 001 does. Each peer remembers, for a while, which connection a message id came
 * in on and sends the answers for that id back on it. Why:
 * - no reflection: seed 001 has every peer that matches connect to the address written in the
 *   message, so one forged SEARCH makes a whole network open connections to a victim; here an
 *   answer only ever travels on a connection its receiver itself opened or accepted;
 * - answers reach an origin that cannot be connected to (behind NAT, or `get --no-share`), on the
 *   connections it opened itself, and no connection is opened per answer;
 * - the cost is a few hops of latency per answer and a table of recent ids (bounded, flood.ts).
 *
 * Messages travel on the peer protocol (`search`, `discover` → `hits`, `pong`) over links (links.ts): one
 * outgoing connection per neighbour, opened on first use and closed when idle. A holder's IP in a
 * hit is filled in by the first hop (the address it connected to), so a peer need not know its
 * own address. Bounds: TTL at most MAX_TTL, each id handled once (seen set), messages per
 * connection per second, forwards per second in all, hits per message and per id.
 */
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { Links } from './links.js';
import type { OverlayFrom, OverlayPort, OverlayRequest } from '../peer/overlay-port.js';
import type { Header } from '../protocol/frame.js';
import type { HelloFields, PeerReply } from '../protocol/messages.js';
import { checkFiles } from '../protocol/entries.js';
import { noLog, type Log } from '../log.js';
import type { FileInfo, PeerAddress } from '../types.js';
import { ExpiringMap, MAX_PATTERN_CHARS, MAX_TTL, RateLimiter, SEEN_MAX, SEEN_MS, matcher } from './flood.js';
import { keyOf, type PeerBook } from './peer-book.js';

/** Peers that connected to us kept as neighbours, in all and per address. */
const MAX_INBOUND = 64;
const MAX_INBOUND_PER_IP = 2;
/** Neighbours a message is flooded to. */
export const DEFAULT_MAX_NEIGHBORS = 8;
/**
 * Messages one address may make us handle per second, and in a burst. As many as we forward in
 * all: a neighbour passes on the whole flood it carries (a lower limit between honest peers made
 * a flood at one peer starve searches several hops away); what one sender can take from others is
 * bounded by the round-robin queues instead.
 */
const PER_SENDER_PER_SEC = 200;
const PER_SENDER_BURST = 400;
/** Messages forwarded per second in all (each to up to maxNeighbors links). */
const FORWARDS_PER_SEC = 200;
/** Searches answered from what we share, per second in all (each is a scan). */
const ANSWERS_PER_SEC = 50;
/** Steps one pattern may take over all the names it is matched against (a hostile glob costs name × pattern). */
const MATCH_STEPS = 2_000_000;
/** Messages queued per connection, connections with a queue, and how long a message may wait. */
const QUEUE_PER_SENDER = 32;
const MAX_SENDERS = 1024;
const QUEUED_FOR_MS = 2_000;
/** Longest slice of queued work before yielding to the event loop. */
const SLICE_MS = 10;
/** Files in one `hits` message, and files passed back per message id by one peer. */
const HITS_PER_MESSAGE = 50;
const HITS_PER_ID = 500;
/** Pongs passed back per message id by one peer. */
const PONGS_PER_ID = 500;
/** How long answers to a message are routed back (longer than any search waits). */
const ROUTE_MS = 30_000;

export interface OverlayOptions {
  peerId: string;
  book: PeerBook;
  /** Where this peer serves (null: it does not; it can still search through its links). */
  self: () => PeerAddress | null;
  /** Files here that `match` accepts, at most `limit` (what this peer answers a SEARCH with). */
  local: (match: (name: string) => boolean, limit: number) => FileInfo[];
  /** The hello our links send. */
  hello: () => HelloFields;
  maxNeighbors?: number;
  log?: Log;
}

export interface Hit {
  file: FileInfo;
  holder: PeerAddress;
}

export interface Pong {
  peer: string;
  addr: PeerAddress;
  hops: number;
}

interface Queued {
  m: OverlayRequest;
  from: OverlayFrom;
  at: number;
  ttl: number;
}

type Route =
  | { kind: 'origin'; onHits?: (hits: Hit[]) => void; onPong?: (p: Pong) => void }
  | { kind: 'remote'; from: OverlayFrom; budget: number };

export interface OverlayCounters {
  /** search/discover messages received, and of them: seen before, over a rate limit, malformed. */
  received: number;
  duplicates: number;
  limited: number;
  malformed: number;
  /** Messages sent to a neighbour (forwards and our own), answers sent and passed back. */
  sent: number;
  answered: number;
  routedBack: number;
  /** Answers that came back for no known id, or were bad. */
  strayAnswers: number;
  /** Messages not passed on because this peer's forwards per second were used up. */
  forwardLimited: number;
  /** Searches not answered from our files because this peer's answers per second were used up. */
  unanswered: number;
}

export class Overlay implements OverlayPort {
  readonly counters: OverlayCounters = { received: 0, duplicates: 0, limited: 0, malformed: 0, sent: 0, answered: 0, routedBack: 0, strayAnswers: 0, forwardLimited: 0, unanswered: 0 };
  private readonly seen = new ExpiringMap<true>(SEEN_MAX, SEEN_MS);
  private readonly routes = new ExpiringMap<Route>(SEEN_MAX, ROUTE_MS);
  private readonly perSender = new RateLimiter(PER_SENDER_PER_SEC, PER_SENDER_BURST);
  private readonly forwards = new RateLimiter(FORWARDS_PER_SEC, FORWARDS_PER_SEC);
  private readonly answers = new RateLimiter(ANSWERS_PER_SEC, ANSWERS_PER_SEC);
  /** Messages waiting to be handled, per connection (served in turn). */
  private readonly queues = new Map<string, Queued[]>();
  private drainTimer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  private readonly links: Links;
  private readonly log: Log;
  private readonly maxNeighbors: number;
  private closed = false;

  constructor(private readonly o: OverlayOptions) {
    this.log = o.log ?? noLog;
    this.maxNeighbors = o.maxNeighbors ?? DEFAULT_MAX_NEIGHBORS;
    this.links = new Links({
      hello: () => o.hello(),
      onHello: (a, peer) => o.book.touch(a, peer),
      onAnswer: (host, m) => this.onAnswer(host, m),
      onFailed: (a, reason) => this.linkFailed(a, reason),
    });
  }

  // ── as origin ───────────────────────────────────────────────────────────────────────────────

  /** Flood a SEARCH; hits arrive through `onHits` until `stop()` (or ROUTE_MS). */
  search(pattern: string, ttl: number, onHits: (hits: Hit[]) => void): { sid: string; neighbours: number; sentTo: PeerAddress[]; stop: () => void } {
    const sid = newSid();
    this.seen.set(sid, true);
    this.routes.set(sid, { kind: 'origin', onHits });
    const sentTo: PeerAddress[] = [];
    const n = this.flood({ t: 'search', sid, pattern: pattern.slice(0, MAX_PATTERN_CHARS), ttl: clampTtl(ttl), hops: 0 }, null, sentTo);
    return { sid, neighbours: n, sentTo, stop: () => this.routes.delete(sid) };
  }

  /** Flood a DISCOVER; every peer it reaches answers through `onPong` until `stop()`. */
  discover(ttl: number, onPong: (p: Pong) => void): { sid: string; neighbours: number; sentTo: PeerAddress[]; stop: () => void } {
    const sid = newSid();
    this.seen.set(sid, true);
    this.routes.set(sid, { kind: 'origin', onPong });
    const sentTo: PeerAddress[] = [];
    const n = this.flood({ t: 'discover', sid, ttl: clampTtl(ttl), hops: 0 }, null, sentTo);
    return { sid, neighbours: n, sentTo, stop: () => this.routes.delete(sid) };
  }

  // ── as a hop: requests from a connection to our server ──────────────────────────────────────

  request(m: OverlayRequest, from: OverlayFrom): void {
    if (this.closed) return;
    this.counters.received++;
    // a copy of a message already handled costs one lookup, and is not charged to its sender:
    // in a flood most copies are duplicates, and charging them would cap the whole network's rate
    if (this.seen.has(m.sid)) {
      this.counters.duplicates++;
      return;
    }
    // checked before the id is marked seen: a malformed copy sent ahead of the real message must
    // not make the real one a duplicate (that would let a neighbour censor searches)
    const ttl = clampTtl(m.ttl);
    if (ttl < 1 || m.hops > MAX_TTL || (m.t === 'search' && (m.pattern.length === 0 || m.pattern.length > MAX_PATTERN_CHARS))) {
      this.counters.malformed++;
      return;
    }
    // what one address may make us handle (connections from one address share it)
    if (!this.perSender.take(from.ip)) {
      this.counters.limited++;
      return;
    }
    let q = this.queues.get(from.key);
    if (!q) {
      if (this.queues.size >= MAX_SENDERS) {
        this.counters.limited++;
        return;
      }
      this.queues.set(from.key, (q = []));
    }
    if (q.length >= QUEUE_PER_SENDER) {
      this.counters.limited++;
      return;
    }
    this.seen.set(m.sid, true);
    q.push({ m, from, at: Date.now(), ttl });
    this.schedule(0);
  }

  /**
   * Handle queued messages, taking one from each sender in turn (round robin): whatever a few
   * connections flood, another sender's message waits behind at most one of each of theirs, so
   * honest searches still get through a flooded peer. Local answers (a scan of what we share) and
   * forwards each have a budget per second for the whole peer; a message that cannot be handled
   * within QUEUED_FOR_MS is dropped (its search is over by then). Work is done in slices, yielding
   * to the event loop between them.
   */
  private drain(): void {
    this.drainTimer = null;
    const sliceEnd = performance.now() + SLICE_MS;
    const now = Date.now();
    while (this.queues.size > 0 && performance.now() < sliceEnd) {
      for (const [key, q] of this.queues) {
        const item = q[0];
        if (!item) {
          this.queues.delete(key);
          continue;
        }
        if (now - item.at > QUEUED_FOR_MS) {
          q.shift();
          this.counters.limited++;
          continue;
        }
        // the forward budget is what the network carries on; wait for it rather than drop
        if (item.ttl > 1 && !this.forwards.take('all', now)) {
          this.schedule(1000 / FORWARDS_PER_SEC);
          return;
        }
        q.shift();
        this.handle(item);
      }
    }
    if (this.queues.size > 0) this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.drainTimer || this.closed) return;
    this.drainTimer = ms <= 0 ? setImmediate(() => this.drain()) : setTimeout(() => this.drain(), ms);
  }

  private handle({ m, from, ttl }: Queued): void {
    this.routes.set(m.sid, { kind: 'remote', from, budget: m.t === 'search' ? HITS_PER_ID : PONGS_PER_ID });
    const me = this.o.self();
    if (m.t === 'search') {
      // answering scans what we share: a budget per second for the whole peer, and one of steps per pattern
      if (me && this.answers.take('all')) {
        const files = this.o.local(matcher(m.pattern, MATCH_STEPS), HITS_PER_MESSAGE);
        if (files.length) {
          this.counters.answered++;
          from.reply({ t: 'hits', sid: m.sid, holder: holderOf(me), files });
        }
      } else if (me) this.counters.unanswered++;
    } else if (me) {
      this.counters.answered++;
      from.reply({ t: 'pong', sid: m.sid, peer: this.o.peerId, ...(holderOf(me).ip ? { ip: me.ip } : {}), port: me.port, hops: m.hops + 1 });
    }
    if (from.listen) this.o.book.touch(from.listen, from.peer);
    if (ttl > 1) this.flood({ ...m, ttl: ttl - 1, hops: m.hops + 1 }, from);
  }

  /** A peer that takes part in the overlay connected to us: it is a neighbour too (links are two-way). */
  joined(from: OverlayFrom): void {
    if (this.closed || !from.listen) return;
    // bounded per address and in all, so connections cannot crowd out the neighbours we chose
    const inbound = this.o.book.list().filter((k) => k.sources.includes('inbound'));
    if (inbound.length >= MAX_INBOUND || inbound.filter((k) => k.ip === from.ip).length >= MAX_INBOUND_PER_IP) {
      if (!this.o.book.has(from.listen)) return;
    }
    this.o.book.add(from.listen, 'inbound', from.peer);
  }

  /** Open the link to `a` now (named neighbours at start): it learns of us, and we of it. */
  connect(a: PeerAddress): void {
    if (!this.closed) this.links.open(a);
  }

  /** Whether a link answered: 'up' (its hello came), 'failed' (with why), or 'waiting'. */
  linkState(a: PeerAddress): { state: 'up' | 'failed' | 'waiting'; reason?: string } {
    return this.links.state(a);
  }

  // ── answers coming back on our links ────────────────────────────────────────────────────────

  private onAnswer(host: string, m: PeerReply): void {
    if (m.t !== 'hits' && m.t !== 'pong') return;
    const route = this.routes.get(m.sid);
    if (!route) {
      this.counters.strayAnswers++;
      return;
    }
    if (m.t === 'hits') {
      const h = m.holder as { ip?: unknown; port?: unknown };
      const ip = h.ip === undefined ? host : h.ip;
      if (typeof ip !== 'string' || isIP(ip) === 0 || typeof h.port !== 'number' || !Number.isInteger(h.port) || h.port < 1 || h.port > 65535) {
        this.counters.strayAnswers++;
        return;
      }
      const holder = { ip, port: h.port };
      const files = checkFiles(m.files.slice(0, HITS_PER_MESSAGE)).ok;
      if (files.length === 0) return;
      if (route.kind === 'origin') {
        route.onHits?.(files.map((file) => ({ file, holder })));
        return;
      }
      const n = Math.min(files.length, route.budget);
      if (n <= 0) return;
      route.budget -= n;
      this.counters.routedBack++;
      route.from.reply({ t: 'hits', sid: m.sid, holder, files: files.slice(0, n) });
      return;
    }
    const ip = m.ip ?? host;
    if (isIP(ip) === 0 || m.hops > MAX_TTL + 1) {
      this.counters.strayAnswers++;
      return;
    }
    if (route.kind === 'origin') {
      route.onPong?.({ peer: m.peer, addr: { ip, port: m.port }, hops: m.hops });
      return;
    }
    if (route.budget <= 0) return;
    route.budget--;
    this.counters.routedBack++;
    route.from.reply({ t: 'pong', sid: m.sid, peer: m.peer, ip, port: m.port, hops: m.hops });
  }

  // ── links ───────────────────────────────────────────────────────────────────────────────────

  /** Send `m` to every neighbour but the one it came from; returns how many it went to. */
  private flood(m: Header, from: OverlayFrom | null, sentTo?: PeerAddress[]): number {
    let n = 0;
    for (const k of this.o.book.neighbours(this.maxNeighbors)) {
      // the sender, known by its peer id or by the address it serves on
      if (from && (k.peer === from.peer || (from.listen && k.ip === from.listen.ip && k.port === from.listen.port))) continue;
      if (!this.links.send(k, m, from?.peer)) continue;
      this.counters.sent++;
      sentTo?.push({ ip: k.ip, port: k.port });
      n++;
    }
    return n;
  }

  /**
   * A neighbour that cannot be reached: logged (its reason is kept for warnings by the links); one
   * learnt second-hand (inbound, DISCOVER, tracker) is forgotten, one the user named or the LAN
   * announces is kept.
   */
  private linkFailed(a: PeerAddress, reason: string): void {
    this.log('overlay-link-failed', { peer: keyOf(a), reason });
    for (const s of ['inbound', 'discover', 'tracker'] as const) this.o.book.remove(a, s);
  }

  /** Links open now (for `peers` and tests). */
  get linkCount(): number {
    return this.links.size;
  }

  /** Per link: open yet, and the bytes it has not taken (a neighbour that does not read). */
  linkBacklogs(): { connected: boolean; pending: number }[] {
    return this.links.backlogs();
  }

  close(): void {
    this.closed = true;
    if (this.drainTimer) {
      clearTimeout(this.drainTimer as NodeJS.Timeout);
      clearImmediate(this.drainTimer as NodeJS.Immediate);
    }
    this.queues.clear();
    this.links.close();
  }
}

function clampTtl(ttl: number): number {
  return Math.min(Math.max(0, Math.floor(ttl)), MAX_TTL);
}

function newSid(): string {
  return randomBytes(8).toString('hex');
}

/** How we name ourselves in a hit: the port, and the IP only when we serve on one address. */
function holderOf(me: PeerAddress): { ip?: string; port: number } {
  const wildcard = me.ip === '' || me.ip === '0.0.0.0' || me.ip === '::';
  return wildcard ? { port: me.port } : { ip: me.ip, port: me.port };
}
