/**
 * What one connection subscribed to with `interest`: the contents (at most MAX_INTERESTS) whose
 * newly verified chunks it hears as `have`, and whose holders it hears as `peers` (peer exchange:
 * those known when it asks, then new ones in batches every PEX_BATCH_MS). A peer that says where
 * it listens is itself noted as a holder while connected, and forgotten when it leaves, so a
 * download that finished and exited is not handed out for minutes.
 */
import type { Header } from '../protocol/frame.js';
import type { PeerAddress } from '../types.js';
import type { SourceIndex } from './source.js';

/** Contents one connection may subscribe to with `interest`. */
export const MAX_INTERESTS = 64;
/** Holders sent in one `peers` message. */
export const PEX_PEERS = 50;
/** New holders are passed on to interested peers in batches, at most this often. */
export const PEX_BATCH_MS = 500;

const same = (a: PeerAddress, b: PeerAddress | null) => b !== null && a.ip === b.ip && a.port === b.port;

export class Interests {
  private readonly cids = new Set<string>();
  private unsubscribe: (() => void) | null = null;
  private unheld: (() => void) | null = null;
  /** Holders heard of since the last `peers` sent, per content. */
  private readonly newHolders = new Map<string, PeerAddress[]>();
  private timer: NodeJS.Timeout | null = null;
  private listen: PeerAddress | null = null;
  private closed = false;

  constructor(
    private readonly sources: SourceIndex,
    private readonly send: (h: Header) => void,
  ) {}

  /** Subscribe to `cid` (once; beyond MAX_INTERESTS, ignored) and send the holders known now. */
  /** True when `add(cid)` would take it: not yet asked on this connection, and room for it. */
  accepts(cid: string): boolean {
    return !this.closed && this.cids.size < MAX_INTERESTS && !this.cids.has(cid);
  }

  add(cid: string, listen: PeerAddress | null): void {
    if (this.closed || this.cids.size >= MAX_INTERESTS || this.cids.has(cid)) return;
    this.cids.add(cid);
    this.listen = listen;
    this.unsubscribe ??=
      this.sources.onHave?.((c, chunks) => {
        if (this.cids.has(c)) this.send({ t: 'have', cid: c, chunks });
      }) ?? null;
    this.unheld ??= this.sources.onHolder?.((c, a) => this.queueHolder(c, a)) ?? null;
    if (listen) this.sources.noteHolder?.(cid, listen);
    const peers = (this.sources.holdersOf?.(cid) ?? []).filter((a) => !same(a, listen)).slice(0, PEX_PEERS);
    if (peers.length) this.send({ t: 'peers', cid, peers });
  }

  /** A holder of a content this peer is interested in arrived: tell it soon (one batch). */
  private queueHolder(cid: string, a: PeerAddress): void {
    if (this.closed || !this.cids.has(cid) || same(a, this.listen)) return;
    let list = this.newHolders.get(cid);
    if (!list) this.newHolders.set(cid, (list = []));
    if (list.length >= PEX_PEERS) return;
    list.push(a);
    this.timer ??= setTimeout(() => {
      this.timer = null;
      for (const [c, peers] of this.newHolders) if (!this.closed) this.send({ t: 'peers', cid: c, peers });
      this.newHolders.clear();
    }, PEX_BATCH_MS);
    this.timer.unref();
  }

  /** The connection ended: unsubscribe, and stop passing this peer on as a holder. */
  close(listen: PeerAddress | null): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    this.unheld?.();
    if (this.timer) clearTimeout(this.timer);
    if (listen) for (const cid of this.cids) this.sources.forgetHolder?.(cid, listen);
  }
}
