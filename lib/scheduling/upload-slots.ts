/**
 * The upload policy of a serving peer: which waiting chunk goes out next when several peers want
 * data at once. Pure; the clock is passed in, sessions are numbers, grants are callbacks.
 *
 * A chunk is "in transit" from the moment its first byte is written until the receiver says it
 * has it (`have`, which swarm peers send to every peer they fetch from), so the policy sees real
 * delivery, not bytes parked in kernel buffers.
 *
 * - A session's first chunk goes before other waiting chunks, and beside the slots once it has
 *   waited FIRST_WAIT_MS: a newcomer is never queued behind requesters that never read (they would
 *   hold the slots an ack timeout each), and has something to share soon. Sent all at once, the
 *   first chunks of a flash crowd's newcomers shared the upload N ways and each arrived late;
 *   through the slots, the first newcomers can share theirs while the others' are still coming.
 * - No contention (nobody waiting): every chunk goes at once; a single fast downloader is never
 *   slowed down.
 * - Contention: at most `slots` chunks in transit. A freed slot goes to the waiting chunk that is
 *   rarest among the peers we serve: the times this peer has uploaded it plus the number of its
 *   requesters that have it (their bitfields and `have`s). A seeder spreads distinct chunks first
 *   instead of sending the same chunk to everyone, so downloaders have different chunks to trade;
 *   a partial holder sends the chunk only it has (the one the seeder just gave it) to the others
 *   before chunks most of them already have: uploaded-fewest alone made it send that chunk once,
 *   then serve common ones first, and the last chunks of a flash crowd spread slowest. Ties go
 *   to the chunk waiting longest (round robin among peers: fairness), and a chunk that has waited
 *   STARVE_MS goes before fresher ones (peers claiming chunks cannot starve a requester). Fewer
 *   chunks at once means each arrives sooner and can be shared sooner (BitTorrent unchokes 4
 *   peers for this reason).
 * - A chunk never acknowledged frees its slot after `ackTimeoutMs` (a peer that does not send
 *   `have`, or is gone), and that peer lags: its next chunks wait behind the others' for LAG_MS,
 *   doubled at each further timeout up to MAX_LAG_MS, whatever it acknowledges meanwhile (anyone
 *   can acknowledge a chunk it asked for), and until it has acknowledged REDEEM_ACKS chunks in a
 *   row since its last timeout (one that acknowledges every other chunk stays a laggard).
 *   Laggards and sessions that have not acknowledged any chunk yet share a single slot, so
 *   neither new connections that never acknowledge nor peers that acknowledge every other chunk
 *   can hold the slots (hostile review 31).
 *
 * SentChunks (below) is one connection's side of it: the chunks it was sent whole and has not
 * acknowledged, kept past the slot's timeout, so that only a `have` for a chunk we sent counts as
 * an acknowledgement and a peer that never acknowledges can be closed.
 */

/** A chunk waiting this long goes before fresher ones whatever their rarity (no starving). */
export const STARVE_MS = 3_000;
/** A session that let a chunk time out lags this long (doubled at each further timeout, up to MAX_LAG_MS). */
export const LAG_MS = 5_000;
export const MAX_LAG_MS = 60_000;
/** A laggard is one no more once its lag is over and it has acknowledged this many chunks in a row since its last timeout. */
export const REDEEM_ACKS = 8;
/** A newcomer's first chunk waits for a slot at most this long, then goes beside the slots. */
export const FIRST_WAIT_MS = 250;
/** Chunks whose upload count is remembered, at most (the least recently sent go first). */
const MAX_UPLOAD_COUNTS = 65_536;

interface Waiter {
  session: number;
  key: string;
  since: number;
  grant: () => void;
  /** the session's first chunk (served before others; beside the slots after firstWaitMs) */
  first: boolean;
}

interface Transit {
  session: number;
  key: string;
  at: number;
}

export class UploadSlots {
  private readonly waiting: Waiter[] = [];
  private readonly transit: Transit[] = [];
  private readonly uploads = new Map<string, number>();
  /**
   * Sessions that let a chunk time out unacknowledged, and until when they lag: the penalty
   * doubles with each timeout (LAG_MS up to MAX_LAG_MS) and an acknowledgement does not end it,
   * since any client can send one for a chunk it asked for.
   */
  private readonly laggards = new Map<number, { until: number; timeouts: number; streak: number }>();
  /** Sessions that have acknowledged a chunk. */
  private readonly proven = new Set<number>();
  /** Sessions that have asked for a chunk (a newcomer's first one goes first: want). */
  private readonly started = new Set<number>();
  readonly counters = { granted: 0, waited: 0, timedOut: 0 };

  /**
   * `holders(key)`: how many of the peers we serve have that chunk already (requester-chunks.ts);
   * none: every chunk counts as held by nobody.
   */
  constructor(
    readonly slots = 4,
    readonly ackTimeoutMs = 5_000,
    private readonly holders: (key: string) => number = () => 0,
    readonly firstWaitMs = FIRST_WAIT_MS,
  ) {}

  static key(cid: string, chunk: number): string {
    return `${cid}:${chunk}`;
  }

  get inTransit(): number {
    return this.transit.length;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Times this peer has sent chunk `key` (acknowledged or not). */
  uploadsOf(key: string): number {
    return this.uploads.get(key) ?? 0;
  }

  /** `session` wants to send chunk `key`: `grant` is called (maybe at once) when it may. */
  want(session: number, key: string, now: number, grant: () => void): void {
    const first = !this.started.has(session);
    if (first) this.started.add(session);
    if (this.waiting.length === 0 && ((this.occupied(now) < this.slots && this.eligible(session, now)) || !this.contended(session))) {
      this.start(session, key, now, grant);
      return;
    }
    this.counters.waited++;
    this.waiting.push({ session, key, since: now, grant, first });
    this.pump(now);
  }

  /** When the next waiting first chunk goes beside the slots (tick then), or null. */
  nextFirstAt(): number | null {
    let at: number | null = null;
    for (const w of this.waiting) if (w.first && (at === null || w.since + this.firstWaitMs < at)) at = w.since + this.firstWaitMs;
    return at;
  }

  /**
   * Slots taken: every chunk in transit to a peer that acknowledges, and one for all restricted
   * sessions together (laggards, and sessions that never acknowledged). Four readers that never
   * acknowledge held all four slots, each for the ack timeout again and again, and an honest
   * downloader got 11 chunks a minute instead of 1,201 (hostile review, simulated).
   */
  private occupied(now: number): number {
    let acking = 0;
    let restricted = false;
    for (const t of this.transit) {
      if (this.restricted(t.session, now)) restricted = true;
      else acking++;
    }
    return acking + (restricted ? 1 : 0);
  }

  /**
   * Sessions that never acknowledged a chunk, and laggards, share one slot: a client opening a
   * connection a second, asking one chunk on each and never acknowledging held every slot for
   * good (each new session counted as one that acknowledges; hostile review 31), and one that
   * acknowledged every other chunk cleared its laggard mark each time.
   */
  private restricted(session: number, now: number): boolean {
    if (!this.proven.has(session)) return true;
    const lag = this.laggards.get(session);
    return !!lag && (lag.until > now || lag.streak < REDEEM_ACKS);
  }

  /** A restricted session may start a chunk only while no restricted chunk is in transit (their one slot). */
  private eligible(session: number, now: number): boolean {
    return !this.restricted(session, now) || !this.transit.some((t) => this.restricted(t.session, now));
  }

  /** True when another session is sending too (a lone downloader is never held back). */
  private contended(session: number): boolean {
    return this.transit.some((t) => t.session !== session);
  }

  private start(session: number, key: string, now: number, grant: () => void): void {
    this.transit.push({ session, key, at: now });
    const n = this.uploadsOf(key) + 1;
    this.uploads.delete(key); // (re-inserted: the newest)
    this.uploads.set(key, n);
    // bounded: a seeder of a big share sends many chunks; the least recently sent are forgotten
    if (this.uploads.size > MAX_UPLOAD_COUNTS) this.uploads.delete(this.uploads.keys().next().value!);
    this.counters.granted++;
    grant();
  }

  /** `session` no longer wants to send chunk `key` (its request was cancelled while it waited). True if it was waiting. */
  withdraw(session: number, key: string): boolean {
    const i = this.waiting.findIndex((w) => w.session === session && w.key === key);
    if (i < 0) return false;
    // a first chunk withdrawn was never sent: the session is still a newcomer. A downloader moves
    // a request that waited MOVE_WAITING_AFTER_MS (300 ms) at a busy peer elsewhere, so a newcomer's
    // first request was often withdrawn, and its next chunks then waited behind the slots (behind
    // non-readers: their ack timeout) instead of FIRST_WAIT_MS (hostile review)
    if (this.waiting[i]!.first) this.started.delete(session);
    this.waiting.splice(i, 1);
    return true;
  }

  /** True when `session` has had no chunk granted yet (its next chunk is a first chunk: want). */
  newcomer(session: number): boolean {
    return !this.started.has(session);
  }

  /** The receiver has chunk `key`: its slot is free. */
  acked(session: number, key: string, now: number): void {
    const i = this.transit.findIndex((t) => t.session === session && t.key === key);
    if (i < 0) return;
    this.transit.splice(i, 1);
    this.proven.add(session);
    const lag = this.laggards.get(session);
    if (lag) lag.streak++;
    this.pump(now);
  }

  /** `session` no longer waits for an acknowledgement of chunk `key` (its request was cancelled after it went out whole): its slot is free. */
  release(session: number, key: string, now: number): void {
    const i = this.transit.findIndex((t) => t.session === session && t.key === key);
    if (i < 0) return;
    this.transit.splice(i, 1);
    this.pump(now);
  }

  /** The session ended (closed, cancelled everything): its waits and slots go. */
  drop(session: number, now: number): void {
    for (let i = this.waiting.length - 1; i >= 0; i--) if (this.waiting[i]!.session === session) this.waiting.splice(i, 1);
    for (let i = this.transit.length - 1; i >= 0; i--) if (this.transit[i]!.session === session) this.transit.splice(i, 1);
    this.laggards.delete(session);
    this.proven.delete(session);
    this.started.delete(session);
    this.pump(now);
  }

  /** Free slots of chunks never acknowledged. Call on a timer. */
  tick(now: number): void {
    for (let i = this.transit.length - 1; i >= 0; i--) {
      const t = this.transit[i]!;
      if (now - t.at > this.ackTimeoutMs) {
        this.transit.splice(i, 1);
        const lag = this.laggards.get(t.session) ?? { until: 0, timeouts: 0, streak: 0 };
        lag.timeouts++;
        lag.streak = 0;
        lag.until = now + Math.min(MAX_LAG_MS, LAG_MS * 2 ** Math.min(lag.timeouts - 1, 16));
        this.laggards.set(t.session, lag);
        this.counters.timedOut++;
      }
    }
    this.pump(now);
  }

  private pump(now: number): void {
    // a newcomer's first chunk that waited firstWaitMs goes beside the slots: requesters that
    // never read held every slot for an ack timeout each, and an honest downloader arriving after
    // 256 of them waited 28.6 s for its first byte (non-readers.hostile); sent at once, all
    // newcomers of a flash crowd shared the upload and each had its first chunk late
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const w = this.waiting[i]!;
      if (w.first && now - w.since >= this.firstWaitMs) {
        this.waiting.splice(i, 1);
        this.start(w.session, w.key, now, w.grant);
      }
    }
    while (this.waiting.length > 0) {
      const lone = this.transit.length > 0 && this.waiting.every((w) => w.session === this.transit[0]!.session) && this.transit.every((t) => t.session === this.transit[0]!.session);
      if (this.occupied(now) >= this.slots && !lone) return;
      let best = -1;
      for (let i = 0; i < this.waiting.length; i++) {
        const w = this.waiting[i]!;
        if (!lone && !this.eligible(w.session, now)) continue;
        if (best < 0 || this.better(w, this.waiting[best]!, now)) best = i;
      }
      if (best < 0) return; // only restricted sessions wait, and their slot is taken
      const w = this.waiting.splice(best, 1)[0]!;
      this.start(w.session, w.key, now, w.grant);
    }
  }

  private better(a: Waiter, b: Waiter, now: number): boolean {
    // no starving: a chunk that has waited STARVE_MS goes before any fresher one, rare or not,
    // a laggard's too (a slow honest requester would otherwise wait without end)
    const sa = now - a.since >= STARVE_MS;
    const sb = now - b.since >= STARVE_MS;
    if (sa !== sb) return sa;
    if (sa) return a.since < b.since;
    if (a.first !== b.first) return a.first;
    const la = this.restricted(a.session, now) ? 1 : 0;
    const lb = this.restricted(b.session, now) ? 1 : 0;
    if (la !== lb) return la < lb;
    const ua = this.uploadsOf(a.key) + this.holders(a.key);
    const ub = this.uploadsOf(b.key) + this.holders(b.key);
    if (ua !== ub) return ua < ub;
    return a.since < b.since;
  }
}

/** Unacknowledged chunks remembered per connection, at most (the oldest are forgotten, not their time). */
export const MAX_UNACKED_CHUNKS = 4096;

/**
 * The chunks one connection was sent whole and has not acknowledged (`have`), oldest first. Pure;
 * the clock is passed in.
 *
 * A `have` for chunk K acknowledges K and every chunk sent before it: TCP delivered those first,
 * and a swarm peer says `have` for each chunk as it verifies it (in any order: several hash
 * threads), so one it never names it already had or threw away. Such strays then never hold the
 * clock of a peer that does acknowledge. A `have` for anything else (a chunk we never sent it,
 * or one acknowledged already) acknowledges nothing: any client can say `have`.
 *
 * The clock (`since`) is how long chunks have waited with no acknowledgement at all: from the
 * oldest one sent, or from the last acknowledgement if that came later. A slow peer behind deep
 * socket buffers acknowledges late but steadily and keeps going; one that never does is found.
 */
export class SentChunks {
  /** Chunk key → when it went out whole, in sending order. */
  private readonly at = new Map<string, number>();
  /** When the oldest chunk forgotten over MAX_UNACKED_CHUNKS went out (0: none forgotten since the last acknowledgement). */
  private forgottenSince = 0;
  private lastAckAt = 0;

  /** Chunk `key` went out whole at `now`. */
  sent(key: string, now: number): void {
    this.at.delete(key); // sent again: it is the newest now
    this.at.set(key, now);
    if (this.at.size > MAX_UNACKED_CHUNKS) {
      const [oldest, t] = this.at.entries().next().value!;
      this.at.delete(oldest);
      this.forgottenSince ||= t;
    }
  }

  /** The peer says, at `now`, it has chunk `key`: true when that acknowledges a chunk we sent it. */
  ack(key: string, now: number): boolean {
    if (!this.at.has(key)) return false;
    for (const k of this.at.keys()) {
      this.at.delete(k);
      if (k === key) break;
    }
    this.forgottenSince = 0;
    this.lastAckAt = now;
    return true;
  }

  /**
   * The peer cancelled the request these chunks went out for: forget the ones `gone(key)` names
   * (it will not acknowledge what it no longer wanted). Returns the keys forgotten.
   */
  forget(gone: (key: string) => boolean): string[] {
    const out: string[] = [];
    for (const k of this.at.keys()) if (gone(k)) out.push(k);
    for (const k of out) this.at.delete(k);
    return out;
  }

  /** Since when chunks sent have waited with no acknowledgement (0: none waits). */
  since(): number {
    const first = this.at.values().next();
    const oldest = this.forgottenSince || (first.done ? 0 : first.value);
    if (!oldest) return 0;
    return Math.max(oldest, this.lastAckAt);
  }

  get size(): number {
    return this.at.size;
  }
}
