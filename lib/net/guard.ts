/**
 * Connection limits shared by the peer server and the tracker: how many connections in total and
 * per remote address, and how long a connection may sit in each state before it is closed.
 *
 *   accept ─► admit(ip): over the per-address cap → refused
 *                        server full → evict the least useful connection (silent, idle, stuck),
 *                                      or refuse when every slot is doing real work
 *   every SWEEP_MS ─► each connection's `overdue(now)`: no hello in time, a frame that started
 *                     and did not finish in time, idle too long, a reader that stopped reading
 *
 * So a slow or silent connection never holds a slot that a real peer needs: it is either closed
 * by its deadline or evicted when someone else needs the room. Pure policy over the connections'
 * own clocks; the servers own the sockets.
 */

export interface ServerLimits {
  /** Connections at once, in total. */
  maxConnections: number;
  /** Connections at once from one remote address. */
  maxPerIp: number;
  /** From accept to the first complete message (hello). */
  handshakeMs: number;
  /** From the first byte of a frame to its last (a dribbled frame is closed). */
  frameMs: number;
  /** With nothing asked and nothing being sent. */
  idleMs: number;
  /** Replies waiting for a reader that does not read. */
  sendStallMs: number;
}

export const SERVE_LIMITS: ServerLimits = {
  maxConnections: 256,
  maxPerIp: 64,
  handshakeMs: 5_000,
  frameMs: 10_000,
  idleMs: 120_000,
  sendStallMs: 30_000,
};

export interface GuardedConnection {
  readonly ip: string;
  /** Why this connection must be closed now, or null. */
  overdue(now: number, limits: ServerLimits): string | null;
  /** When the server is full: > 0 may be evicted, higher first; 0 is doing real work. */
  evictRank(now: number): number;
  destroy(reason: string): void;
}

const SWEEP_MS = 1_000;

export class ConnectionGuard<C extends GuardedConnection> {
  private readonly all = new Set<C>();
  private readonly perIp = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  /** Counters for logs and tests. */
  readonly counters = { refusedPerIp: 0, refusedFull: 0, evicted: 0, timedOut: 0 };

  constructor(
    readonly limits: ServerLimits,
    private readonly onClose: (c: C, reason: string) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.sweep(), SWEEP_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  get size(): number {
    return this.all.size;
  }

  countOf(ip: string): number {
    return this.perIp.get(ip) ?? 0;
  }

  /** May a connection from `ip` come in? Evicts one if the server is full and one can go. */
  admit(ip: string): { ok: true } | { ok: false; reason: string } {
    if (this.countOf(ip) >= this.limits.maxPerIp) {
      this.counters.refusedPerIp++;
      return { ok: false, reason: `too many connections from ${ip} (limit ${this.limits.maxPerIp})` };
    }
    if (this.all.size >= this.limits.maxConnections) {
      const now = this.now();
      let worst: C | null = null;
      let rank = 0;
      for (const c of this.all) {
        const r = c.evictRank(now);
        if (r > rank) {
          rank = r;
          worst = c;
        }
      }
      if (!worst) {
        this.counters.refusedFull++;
        return { ok: false, reason: `server full (${this.limits.maxConnections} connections, all busy)` };
      }
      this.counters.evicted++;
      this.close(worst, 'evicted: the server is full and this connection was idle or stuck');
    }
    return { ok: true };
  }

  add(c: C): void {
    this.all.add(c);
    this.perIp.set(c.ip, this.countOf(c.ip) + 1);
  }

  /** Forget a connection that ended (idempotent). */
  remove(c: C): void {
    if (!this.all.delete(c)) return;
    const n = this.countOf(c.ip) - 1;
    if (n <= 0) this.perIp.delete(c.ip);
    else this.perIp.set(c.ip, n);
  }

  sweep(): void {
    const now = this.now();
    for (const c of [...this.all]) {
      const why = c.overdue(now, this.limits);
      if (why) {
        this.counters.timedOut++;
        this.close(c, why);
      }
    }
  }

  private close(c: C, reason: string): void {
    this.remove(c);
    this.onClose(c, reason);
    c.destroy(reason);
  }

  connections(): IterableIterator<C> {
    return this.all.values();
  }
}
