/**
 * One connection's side of the server's upload policy (scheduling/upload-slots.ts): before each
 * chunk it waits for a slot, telling its requester `busy` meanwhile (again every BUSY_REPEAT_MS,
 * so the wait reads as a queue, not a stall); a cancel withdraws that wait; and a cancel that
 * crosses chunks already sent whole (slow links, a sync's pipelined requests) frees them from the
 * acknowledgement clock (take-account.ts) and from their slots: the peer dropped them and will
 * not acknowledge them, and a long-lived connection was closed sendStallMs after such a race.
 */
import { UploadSlots } from '../scheduling/upload-slots.js';
import type { TakeAccount } from './take-account.js';

/** While a request waits for an upload slot, `busy` is said again this often. */
export const BUSY_REPEAT_MS = 2_000;
/** Requests remembered for a cancel that crosses a chunk already sent whole. */
const RECENT_REQUESTS = 64;

export interface SlotWaitHooks {
  /** Tell the requester that request `id` waits for one of our slots. */
  busy(id: number): void;
  closed(): boolean;
}

export class SlotWaits {
  /** The slot the current request waits for (a cancel withdraws it). */
  private waiting: { id: number; key: string; go: () => void } | null = null;
  /** The last RECENT_REQUESTS requests taken up, by id. */
  private readonly recent = new Map<number, { cid: string; from: number; to: number }>();

  constructor(
    private readonly slots: UploadSlots | null,
    private readonly session: number,
    private readonly account: TakeAccount,
    private readonly hooks: SlotWaitHooks,
  ) {}

  /** A request of this connection waits for a slot now. */
  get waitingNow(): boolean {
    return this.waiting !== null;
  }

  /** Request `id` (chunks [from, to) of `cid`) is being served. */
  taken(id: number, cid: string, from: number, to: number): void {
    this.recent.set(id, { cid, from, to });
    if (this.recent.size > RECENT_REQUESTS) this.recent.delete(this.recent.keys().next().value!);
  }

  /** Resolves when chunk `chunk` of `cid`, for request `id`, may go. */
  wait(id: number, cid: string, chunk: number): Promise<void> {
    const slots = this.slots;
    // closed (a send that went on after its drain wait ended with the socket): no wait is
    // registered after UploadSlots.drop forgot this connection, and the send stops at once
    if (!slots || this.hooks.closed()) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      let wake: NodeJS.Timeout | null = null;
      let granted = false;
      const key = UploadSlots.key(cid, chunk);
      const since = Date.now();
      const first = slots.newcomer(this.session);
      const go = () => {
        granted = true;
        if (timer) clearInterval(timer);
        if (wake) clearTimeout(wake);
        if (this.waiting?.key === key) {
          this.waiting = null;
          this.account.waitedOnUs(Date.now() - since);
        }
        resolve();
      };
      slots.want(this.session, key, since, go);
      if (granted) return;
      // a newcomer's first chunk goes beside the slots once it waited firstWaitMs: the policy is
      // woken then, not at the server's next tick (up to SLOT_TICK_MS later: 250-350 ms, and a
      // downloader moves a request that waited 300 ms elsewhere)
      if (first) {
        wake = setTimeout(() => !granted && !this.hooks.closed() && slots.tick(Date.now()), slots.firstWaitMs + 1);
        wake.unref();
      }
      this.waiting = { id, key, go };
      this.hooks.busy(id);
      timer = setInterval(() => (this.hooks.closed() ? clearInterval(timer!) : this.hooks.busy(id)), BUSY_REPEAT_MS);
      timer.unref();
    });
  }

  /**
   * The connection ended: the wait under way ends too (UploadSlots.drop forgets it without a
   * grant), so its request goes on, sees the connection closed and gives back its read buffers;
   * a wait left pending held them forever (the shared pool, send-buffers.ts, lost one per
   * get-and-drop client under contention and made new wasm memories instead: hostile review).
   */
  close(): void {
    const w = this.waiting;
    this.waiting = null;
    w?.go();
  }

  /** The peer cancelled request `id`. */
  cancelled(id: number): void {
    // a cancel while waiting withdraws the wait (the requester moved it to another holder):
    // the connection's next request does not wait for a slot this one no longer needs
    const w = this.waiting;
    if (w && w.id === id && this.slots?.withdraw(this.session, w.key)) w.go();
    // chunks of it that went out whole before the cancel crossed them will not be acknowledged
    const r = this.recent.get(id);
    if (!r) return;
    this.recent.delete(id);
    const now = Date.now();
    for (const key of this.account.forget((k) => inRange(k, r.cid, r.from, r.to))) this.slots?.release(this.session, key, now);
  }
}

/** Whether upload key `key` (UploadSlots.key) is chunk `from` .. `to` - 1 of `cid`. */
export function inRange(key: string, cid: string, from: number, to: number): boolean {
  if (key.length <= cid.length || !key.startsWith(cid) || key.charCodeAt(cid.length) !== 58 /* : */) return false;
  const chunk = Number(key.slice(cid.length + 1));
  return chunk >= from && chunk < to;
}
