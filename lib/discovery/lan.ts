/**
 * LAN peer discovery (seed 004): one UDP socket that broadcasts `start` (I serve on TCP port N)
 * every interval and `stop` when leaving, and listens for everyone else's. It owns the socket, its
 * timers and the table of peers heard; the datagram format is lan-codec.ts. It hands the node a
 * list of addresses to try and never connects to anyone itself.
 *
 *   datagram ─► decode (lan-codec) ─► refused: counters.dropped, a warning at most once a minute
 *              │ our own peer id: ignored (we hear our own broadcasts)
 *              ├ start, new id ─► table full (in total, or for that source IP): counters.full
 *              │                  else add ─► 'up'
 *              ├ start, known id, same IP ─► refresh lastSeen; a new port or v ─► 'up' again
 *              ├ start, known id, other IP ─► ignored (counters.dropped) until it stops or expires
 *              └ stop, known id, same IP and port ─► verifyStop? (≤ 8 at once, 1 per peer)
 *                     alive ─► spoofed (counters.spoofedStops); not alive / no verifier ─► 'down'
 *   every sweep ─► peers silent for expireMs ─► 'down' (expired)
 *
 * Every datagram comes from an adversary (DESIGN.md). What one can do here, and the bound on it:
 * - fill the table with invented peer ids: at most maxPeers in total and maxPeersPerIp per source
 *   address, so one sender cannot lock real peers out (spoofed sources can; the total still holds);
 * - point us at an address: only its own source address (the IP is never a datagram field), and
 *   whatever it claims is checked again by the TCP hello and by content hashes;
 * - claim a known peer's id from elsewhere: ignored while the first holder of the id keeps
 *   announcing (the first heard wins until it stops or expires; the id is not a credential);
 * - forge a `stop`: needs the peer's source IP (spoofable on a LAN), and then `verifyStop` asks the
 *   peer itself; a flood of stops starts at most MAX_STOP_CHECKS checks, each bounded by
 *   STOP_CHECK_TIMEOUT_MS, and stops that find no free check are dropped (the peer then leaves by
 *   expiry if it really left);
 * - flood garbage: each datagram costs a size check and at most one 512-byte JSON.parse; nothing
 *   is logged per datagram (a flood must not grow a log file), only rate-limited warnings.

 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { ERROR_CODES, SwarmError } from '../errors.js';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import { WarnLimit } from './warn-limit.js';
import { decodeAnnouncement, encodeAnnouncement, type LanAnnouncement, type LanOp } from './lan-codec.js';

export { DEFAULT_LAN_PORT } from '../constants.js';
export * from './lan-options.js';
import { ALIVE_TRUST_MS, ANSWER_EVERY_MS, checkOptions, checkStop, LAN_WARNING_EVERY_MS, MAX_STOP_CHECKS, type LanDownReason, type LanEvents, type LanOptions, type LanPeer, type Settings } from './lan-options.js';

/** close() waits this long at most for its `stop` datagram to be handed to the kernel. */
const STOP_SEND_WAIT_MS = 1_000;

/** A peer in the table: what is handed out, plus a monotonic time for expiry (wall clocks jump). */
interface Entry {
  p: LanPeer;
  seenMono: number;
}

const copy = (p: LanPeer): LanPeer => ({ ...p });
const monoNow = (): number => performance.now();

export class LanDiscovery extends EventEmitter<LanEvents> {
  /** received: every datagram read but our own; dropped: refused or not acted on; spoofedStops: stops found false; full: new peers turned away by a bound. */
  readonly counters = { received: 0, dropped: 0, spoofedStops: 0, full: 0 };
  private readonly s: Settings;
  private readonly socket: dgram.Socket;
  /** By peer id, in the order last heard (oldest first): the sweep stops at the first fresh one. */
  private readonly table = new Map<string, Entry>();
  private readonly perIp = new Map<string, number>();
  /** Peer ids with a verifyStop in flight. */
  private readonly checking = new Set<string>();
  private readonly warnings = new WarnLimit(LAN_WARNING_EVERY_MS, (kind, text) => {
    this.s.log?.('lan-warning', { kind, message: text });
    this.emit('warning', text);
  });
  private transferPort: number;
  /** Peers a stop check found alive, until when further stops for them are ignored (monotonic ms). */
  private readonly aliveUntil = new Map<string, number>();
  /** When we last answered a newcomer (monotonic ms), and the answer waiting for its window. */
  private lastAnswer = -Infinity;
  private answerTimer: NodeJS.Timeout | null = null;
  /** A `start` went out since the last `stop`: close() owes the network a `stop`. */
  private announced = false;
  private closed = false;
  private closing: Promise<void> | null = null;
  private bindReject: ((err: Error) => void) | null = null;
  private announceTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;

  /** Binds, sends `start` at once (if transferPort), then every intervalMs. Rejects with SWARM_ERR_USAGE or SWARM_ERR_LISTEN. */
  static async start(o: LanOptions): Promise<LanDiscovery> {
    const d = new LanDiscovery(checkOptions(o));
    try {
      await d.bindSocket();
    } catch (err) {
      await d.close();
      throw err;
    }
    d.begin();
    return d;
  }

  private constructor(s: Settings) {
    super();
    this.s = s;
    this.transferPort = s.transferPort;
    this.socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    this.socket.on('message', (msg, rinfo) => this.guarded(() => this.onDatagram(msg, rinfo.address)));
    this.socket.on('error', (err) => this.guarded(() => this.onSocketError(err)));
  }

  /** The UDP port announcements go to and are heard on. */
  get port(): number {
    return this.s.port;
  }

  /** Current peers, newest first (copies: changing them changes nothing here). */
  peers(): LanPeer[] {
    return [...this.table.values()].reverse().map((e) => copy(e.p));
  }

  /**
   * Send `start` now, e.g. after the transfer port changes. With a port: announce that one from now
   * on (0 = stop serving: a `stop` goes out and announcing ends; a later non-zero port resumes).
   * Without one, or once closed, it only re-sends (or does nothing if we do not serve).
   */
  announceNow(transferPort?: number): void {
    if (this.closed) return;
    if (transferPort !== undefined) {
      if (!Number.isInteger(transferPort) || transferPort < 0 || transferPort > 65535) {
        throw new SwarmError(ERROR_CODES.USAGE, `LAN discovery: transferPort must be 0..65535, not ${String(transferPort)}`);
      }
      if (transferPort === 0) {
        this.stopAnnouncing();
        if (this.announced) void this.send('stop', this.transferPort);
        this.announced = false;
        this.transferPort = 0;
        return;
      }
      this.transferPort = transferPort;
    }
    if (this.transferPort === 0) return;
    this.sendStart();
    if (!this.announceTimer) {
      this.announceTimer = setInterval(() => this.guarded(() => this.sendStart()), this.s.intervalMs);
      this.announceTimer.unref();
    }
  }

  /** Sends `stop` (if it announced), closes the socket, clears timers. Idempotent; safe before start() resolves. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    this.stopAnnouncing();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    if (this.bindReject) {
      this.bindReject(new SwarmError(ERROR_CODES.LISTEN, 'LAN discovery closed while its socket was binding'));
    } else if (this.announced) {
      // Await the hand-over to the kernel: closing the socket first could lose the datagram.
      await this.send('stop', this.transferPort);
    }
    this.announced = false;
    await new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve(); // already closed (a bind that failed closes nothing, but be safe)
      }
    });
    this.table.clear();
    this.perIp.clear();
    this.checking.clear();
    this.s.log?.('lan-close', { received: this.counters.received, dropped: this.counters.dropped, spoofedStops: this.counters.spoofedStops, full: this.counters.full });
  }

  private bindSocket(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.bindReject = (err) => {
        this.bindReject = null;
        reject(err);
      };
      this.socket.bind(this.s.port, this.s.bind, () => {
        if (!this.bindReject) return; // closed meanwhile: already rejected
        this.bindReject = null;
        resolve();
      });
    });
  }

  /** While binding, an error fails start(); afterwards (a send refused, a receive failing) it is news, not a crash. */
  private onSocketError(err: Error): void {
    if (this.bindReject) {
      this.bindReject(new SwarmError(ERROR_CODES.LISTEN, `LAN discovery cannot bind UDP ${this.s.bind}:${this.s.port}: ${err.message}`, { bind: this.s.bind, port: this.s.port }, { cause: err }));
      return;
    }
    this.warnings.warn('socket', () => `LAN discovery socket: ${err.message}`);
  }

  private begin(): void {
    try {
      this.socket.setBroadcast(true); // only possible once bound; without it sends to a broadcast address fail (EACCES)
    } catch (err) {
      this.warnings.warn('socket', () => `LAN discovery cannot broadcast: ${(err as Error).message}`);
    }
    const sweepMs = Math.max(10, Math.min(this.s.intervalMs, Math.ceil(this.s.expireMs / 4)));
    this.sweepTimer = setInterval(() => this.guarded(() => this.sweep()), sweepMs);
    this.sweepTimer.unref();
    this.s.log?.('lan-start', { port: this.s.port, bind: this.s.bind, broadcast: this.s.broadcast, transferPort: this.transferPort });
    this.announceNow();
    // one that only listens asks the others to announce now, rather than waiting for their period
    if (this.transferPort === 0) void this.send('query', 0);
  }

  /**
   * A newcomer (a `query`, or a `start` from a peer not heard before) hears of us now rather than
   * at our next period; at most once per ANSWER_EVERY_MS, so a flood of queries or fresh ids
   * costs at most one broadcast per second.
   */
  private answer(): void {
    if (this.transferPort === 0 || this.closed || this.answerTimer) return;
    const wait = this.lastAnswer + ANSWER_EVERY_MS - monoNow();
    const send = () => {
      this.answerTimer = null;
      this.lastAnswer = monoNow();
      this.sendStart();
    };
    if (wait <= 0) return send();
    // answered a moment ago: once more when the window ends, for everyone who asked meanwhile
    this.answerTimer = setTimeout(() => this.guarded(send), wait);
    this.answerTimer.unref();
  }

  private stopAnnouncing(): void {
    if (this.announceTimer) clearInterval(this.announceTimer);
    this.announceTimer = null;
    if (this.answerTimer) clearTimeout(this.answerTimer);
    this.answerTimer = null;
  }

  private sendStart(): void {
    if (this.closed || this.transferPort === 0) return;
    this.announced = true;
    void this.send('start', this.transferPort);
  }

  /** Resolves once the datagram is handed over (or failed: a warning), or after STOP_SEND_WAIT_MS at most. */
  private send(op: LanOp, port: number): Promise<void> {
    const a: LanAnnouncement = { op, peer: this.s.peerId, port, v: PROTOCOL_VERSION };
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, STOP_SEND_WAIT_MS);
      timer.unref();
      const done = (err?: Error | null) => {
        clearTimeout(timer);
        if (err) this.warnings.warn('send', () => `LAN discovery cannot send to ${this.s.broadcast}:${this.s.port}: ${err.message}`);
        resolve();
      };
      try {
        this.socket.send(encodeAnnouncement(a), this.s.port, this.s.broadcast, done);
      } catch (err) {
        done(err as Error); // socket already closed
      }
    });
  }

  private onDatagram(msg: Buffer, ip: string): void {
    if (this.closed) return;
    const d = decodeAnnouncement(msg);
    // our own broadcast coming back (or someone using our id: nothing to learn either way)
    if (d.ok && d.announcement.peer === this.s.peerId) return;
    this.counters.received++;
    if (!d.ok) {
      this.counters.dropped++;
      this.warnings.warn('dropped', () => `LAN discovery drops datagrams that are not swarm announcements (${this.counters.dropped} so far; the last from ${ip}: ${d.reason})`);
      return;
    }
    const a = d.announcement;
    if (a.op === 'query') this.answer();
    else if (a.op === 'start') this.onStart(a, ip);
    else this.onStop(a, ip);
  }

  private onStart(a: LanAnnouncement, ip: string): void {
    const e = this.table.get(a.peer);
    if (e) {
      if (e.p.ip !== ip) {
        // Either the peer moved (it reappears once this entry expires) or someone is claiming its id.
        this.counters.dropped++;
        this.warnings.warn('conflict', () => `LAN discovery ignores peer ${a.peer} announced from ${ip}: it is known at ${e.p.ip}`);
        return;
      }
      e.p.lastSeen = Date.now();
      e.seenMono = monoNow();
      this.table.delete(a.peer); // keep the table in order of last heard
      this.table.set(a.peer, e);
      if (e.p.port !== a.port || e.p.v !== a.v) {
        e.p.port = a.port;
        e.p.v = a.v;
        this.s.log?.('lan-up', { peer: a.peer, ip, port: a.port, v: a.v, changed: true });
        this.emit('up', copy(e.p));
      } else this.emit('seen', copy(e.p));
      return;
    }
    const fromIp = this.perIp.get(ip) ?? 0;
    if (this.table.size >= this.s.maxPeers || fromIp >= this.s.maxPeersPerIp) {
      this.counters.full++;
      const which = this.table.size >= this.s.maxPeers ? `${this.s.maxPeers} peers in all` : `${this.s.maxPeersPerIp} peers from ${ip}`;
      this.warnings.warn('full', () => `LAN discovery ignores new peers: it already tracks ${which} (${this.counters.full} turned away so far)`);
      return;
    }
    const p: LanPeer = { peer: a.peer, ip, port: a.port, v: a.v, lastSeen: Date.now() };
    this.table.set(a.peer, { p, seenMono: monoNow() });
    this.perIp.set(ip, fromIp + 1);
    this.s.log?.('lan-up', { peer: a.peer, ip, port: a.port, v: a.v });
    this.emit('up', copy(p));
    this.answer();
  }

  private onStop(a: LanAnnouncement, ip: string): void {
    const e = this.table.get(a.peer);
    if (!e) return; // unknown: nothing to remove, and nothing worth counting
    if (e.p.ip !== ip || e.p.port !== a.port) {
      // Another address cannot speak for this peer; a stale port is an older announcement.
      this.counters.spoofedStops++;
      return;
    }
    const verify = this.s.verifyStop;
    if (!verify) {
      this.remove(a.peer, 'stop');
      return;
    }
    if (this.checking.has(a.peer)) return; // the same stop again: the check in flight answers it
    // found alive a moment ago: more stops for it are the same forgery (no probe each time)
    if ((this.aliveUntil.get(a.peer) ?? 0) > monoNow()) {
      this.counters.spoofedStops++;
      return;
    }
    if (this.checking.size >= MAX_STOP_CHECKS) {
      this.counters.dropped++;
      this.warnings.warn('stop-checks', () => `LAN discovery ignores a stop for ${a.peer}: ${MAX_STOP_CHECKS} stops are being checked already`);
      return;
    }
    this.checking.add(a.peer);
    void checkStop(verify, copy(e.p), this.s.log).then((alive) =>
      this.guarded(() => {
        this.checking.delete(a.peer);
        if (this.closed) return;
        if (alive) {
          this.aliveUntil.set(a.peer, monoNow() + ALIVE_TRUST_MS);
          if (this.aliveUntil.size > 4096) this.aliveUntil.delete(this.aliveUntil.keys().next().value!);
          this.counters.spoofedStops++;
          this.s.log?.('lan-spoofed-stop', { peer: a.peer, ip });
          return;
        }
        if (this.table.get(a.peer) === e) this.remove(a.peer, 'stop'); // not if it left and came back meanwhile
      }),
    );
  }

  private sweep(): void {
    if (this.closed) return;
    const now = monoNow();
    const expired: string[] = [];
    for (const [id, e] of this.table) {
      if (now - e.seenMono < this.s.expireMs) break; // the rest were heard later
      expired.push(id);
    }
    for (const id of expired) this.remove(id, 'expired');
  }

  private remove(id: string, reason: LanDownReason): void {
    const e = this.table.get(id);
    if (!e) return;
    this.table.delete(id);
    const n = (this.perIp.get(e.p.ip) ?? 1) - 1;
    if (n > 0) this.perIp.set(e.p.ip, n);
    else this.perIp.delete(e.p.ip);
    this.s.log?.('lan-down', { peer: id, ip: e.p.ip, port: e.p.port, reason });
    this.emit('down', copy(e.p), reason);
  }

  /** Socket handlers and timers never throw: a datagram (or a listener's bug) must not crash the process. */
  private guarded(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      try {
        this.warnings.warn('internal', () => `LAN discovery: ${err instanceof Error ? err.message : String(err)}`);
      } catch {
        // a 'warning' listener that throws as well: nothing more to do
      }
    }
  }
}
