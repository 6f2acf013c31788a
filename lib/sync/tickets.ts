/**
 * The ticket queue of `swarm sync` (seed 000): one ticket per name to fetch, replace or delete,
 * worked on oldest first (by the remote version's mtime); a ticket that fails waits its turn
 * again after 1 s, doubling up to 60 s, and never holds up the others. Pure bookkeeping: the
 * syncer decides what runs (syncer.ts `pump`).
 */
import { asSwarmError } from '../errors.js';
import type { PeerAddress } from '../types.js';
import type { SyncEntry } from './plan.js';

export interface Ticket {
  name: string;
  remote: SyncEntry;
  holders: PeerAddress[];
  conflict: boolean;
  /**
   * The version here the plan decided against: its content id, '' when there was none (absent or
   * deleted). A big file replaces the version here only while it is still this one (ticket-run.ts).
   */
  here: string;
  attempts: number;
  notBefore: number;
  /** Being worked on (fetched, landed, deleted). */
  started: boolean;
  /** The version here it replaced went to the trash (landing.ts): said with the fetch. */
  replaced?: boolean;
}

const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 60_000;
/** Tries a one-shot sync (`--once`, syncOnce) gives a file before it reports it as not fetched. */
export const ONCE_ATTEMPTS = 3;

/** The bytes a ticket fetches: a live file's size (a stock peer's unknown size, and a deletion: 0). */
function weight(e: SyncEntry): number {
  return e.deleted === undefined && e.size > 0 ? e.size : 0;
}

export class TicketQueue {
  private readonly tickets = new Map<string, Ticket>();
  /** Tickets in the order they are worked on (oldest first); null: to be sorted again. */
  private order: Ticket[] | null = null;
  /** Where `order` starts to matter: every ticket before it is finished (skipped for good). */
  private head = 0;
  /** The bytes the tickets fetch, kept as they come and go (toGo). */
  private bytes = 0;

  get size(): number {
    return this.tickets.size;
  }

  values(): IterableIterator<Ticket> {
    return this.tickets.values();
  }

  /** The ticket still current for its name (not replaced, not done). */
  current(t: Ticket): boolean {
    return this.tickets.get(t.name) === t;
  }

  done(t: Ticket): void {
    if (!this.current(t)) return;
    this.tickets.delete(t.name);
    this.bytes -= weight(t.remote);
  }

  /**
   * Queue (or update) what to do about `name`, decided against the version `here` (its content
   * id, '' for none); a ticket being worked on finishes first.
   */
  add(name: string, remote: SyncEntry, holders: PeerAddress[], conflict: boolean, here = ''): void {
    const old = this.tickets.get(name);
    if (old && old.remote.cid === remote.cid && old.remote.deleted === remote.deleted) {
      old.holders = holders;
      // the version here changed meanwhile (an edit: now a conflict it loses, or no longer one)
      if (!old.started) {
        old.conflict = conflict;
        old.here = here;
      }
      return;
    }
    if (old?.started) return; // the running one finishes first; the next plan sees what it left
    if (old) this.bytes -= weight(old.remote);
    this.tickets.set(name, { name, remote, holders, conflict, here, attempts: 0, notBefore: 0, started: false });
    this.bytes += weight(remote);
    this.order = null;
  }

  /**
   * The plan no longer calls for a ticket for `name` (ours won, agreed, or was deleted meanwhile):
   * one waiting (a failed try waiting for its retry) goes; one being worked on finishes first.
   */
  withdraw(name: string): void {
    const old = this.tickets.get(name);
    if (old && !old.started) this.done(old);
  }

  /**
   * The tickets, oldest first (finished ones may still be in it: check `current`). Tickets finish
   * roughly in this order, so the finished ones at its front are skipped for good: a pump looks at
   * what is left, not at every ticket since the start (10,000 files would cost 10,000² looks).
   */
  *ordered(): IterableIterator<Ticket> {
    if (!this.order) {
      this.order = [...this.tickets.values()].sort((a, b) => a.remote.mtime - b.remote.mtime);
      this.head = 0;
    }
    const order = this.order;
    while (this.head < order.length && !this.current(order[this.head]!)) this.head++;
    for (let i = this.head; i < order.length; i++) yield order[i]!;
  }

  /** Drop finished tickets from the order once they are the most of what is left of it. */
  compact(stale: number): void {
    if (this.order && stale > 64 && stale * 2 > this.order.length - this.head) {
      this.order = this.order.filter((t) => this.current(t));
      this.head = 0;
    }
  }

  /** A try failed: the ticket waits (backoff); the message and code for the warning. */
  failed(t: Ticket, err: unknown, now = Date.now()): { message: string; code: string } {
    const e = asSwarmError(err);
    t.attempts++;
    t.notBefore = now + Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (t.attempts - 1));
    return { message: `${t.name}: ${e.message} (trying again in ${Math.round((t.notBefore - now) / 1000)} s)`, code: e.code };
  }

  /** What is left to do: tickets, and the bytes of the files they fetch (deletions weigh nothing). */
  toGo(): { files: number; bytes: number } {
    return { files: this.tickets.size, bytes: this.bytes };
  }

  /** Tickets that a one-shot sync still waits for. */
  open(): number {
    let n = 0;
    for (const t of this.tickets.values()) if (t.attempts < ONCE_ATTEMPTS) n++;
    return n;
  }
}
