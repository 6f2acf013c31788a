/**
 * The overlay's links: one outgoing peer-protocol connection per neighbour, opened on first use
 * (or at start for named neighbours), closed after a minute without traffic, and dropped when the
 * neighbour stops reading (what we hold for it stays bounded; the next message opens a fresh one).
 * It remembers why a link failed (for warnings) and tells its owner of hellos, answers and
 * failures; what travels on the links is the overlay's business (overlay.ts).
 */
import { PeerClient } from '../peer/client.js';
import type { Header } from '../protocol/frame.js';
import type { HelloFields, PeerReply } from '../protocol/messages.js';
import type { PeerAddress } from '../types.js';
import { keyOf } from './peer-book.js';

/** A link with no traffic for this long is closed (reopened on the next message). */
const LINK_IDLE_MS = 60_000;
const CONNECT_TIMEOUT_MS = 3_000;
/** Unsent bytes on a link beyond which messages to it are dropped, and how long before it is closed. */
const LINK_BACKLOG_BYTES = 256 << 10;
const LINK_STUCK_MS = 10_000;
/** Failures remembered (for warnings). */
const MAX_FAILURES = 4096;

interface Link {
  client: PeerClient;
  idle: NodeJS.Timeout;
  /** The neighbour's peer id, once its hello came. */
  peer: string | null;
  opened: number;
  /** Since when it has held more than LINK_BACKLOG_BYTES unsent (0: it reads). */
  stuckSince: number;
}

export interface LinksOwner {
  /** Our hello on every link. */
  hello(): HelloFields;
  /** The neighbour at `a` said hello as `peer`. */
  onHello(a: PeerAddress, peer: string): void;
  /** A message came back on the link to `host` (answers to what we sent). */
  onAnswer(host: string, m: PeerReply): void;
  /** The link to `a` could not be opened, or closed before its hello. */
  onFailed(a: PeerAddress, reason: string): void;
}

export class Links {
  private readonly links = new Map<string, Link>();
  private readonly failures = new Map<string, { reason: string; at: number }>();

  constructor(private readonly owner: LinksOwner) {}

  /** Open the link to `a` now if it is not open (named neighbours at start). */
  open(a: PeerAddress): void {
    this.link(a);
  }

  /**
   * Send `m` to `a` unless its neighbour is `skipPeer` (the one a message came from) or it does not
   * read; false when not sent.
   */
  send(a: PeerAddress, m: Header, skipPeer?: string): boolean {
    const link = this.link(a);
    if (skipPeer && link.peer === skipPeer) return false;
    if (link.client.pendingBytes > LINK_BACKLOG_BYTES) {
      link.stuckSince ||= Date.now();
      if (Date.now() - link.stuckSince > LINK_STUCK_MS) this.drop(keyOf(a), link);
      return false;
    }
    link.stuckSince = 0;
    link.client.write(m);
    return true;
  }

  /** Whether a link answered: 'up' (its hello came), 'failed' (with why), or 'waiting'. */
  state(a: PeerAddress): { state: 'up' | 'failed' | 'waiting'; reason?: string } {
    const l = this.links.get(keyOf(a));
    if (l?.peer) return { state: 'up' };
    const f = this.failures.get(keyOf(a));
    if (f && (!l || f.at >= l.opened)) return { state: 'failed', reason: f.reason };
    return { state: 'waiting' };
  }

  /** Each link: open yet, and bytes written to it that it has not taken (diagnostics and tests). */
  backlogs(): { connected: boolean; pending: number }[] {
    return [...this.links.values()].map((l) => ({ connected: l.client.connected, pending: l.client.pendingBytes }));
  }

  /** Links open now. */
  get size(): number {
    return this.links.size;
  }

  close(): void {
    for (const [key, link] of this.links) {
      clearTimeout(link.idle);
      link.client.destroy();
      this.links.delete(key);
    }
  }

  private link(a: PeerAddress): Link {
    const key = keyOf(a);
    const old = this.links.get(key);
    if (old && old.client.connected) {
      old.idle.refresh();
      return old;
    }
    const link: Link = {
      client: null as unknown as PeerClient,
      idle: setTimeout(() => this.drop(key, link), LINK_IDLE_MS),
      peer: null,
      opened: Date.now(),
      stuckSince: 0,
    };
    link.idle.unref();
    link.client = new PeerClient(a.ip, a.port, {
      hello: this.owner.hello(),
      timeoutMs: CONNECT_TIMEOUT_MS,
      handler: {
        onHello: (h) => {
          link.peer = h.peer;
          this.failures.delete(key);
          this.owner.onHello(a, h.peer);
        },
        onMessage: (m) => this.owner.onAnswer(a.ip, m),
        onClose: (err) => {
          if (this.links.get(key) === link) this.links.delete(key);
          clearTimeout(link.idle);
          if (!link.peer) this.failed(a, err?.message ?? 'closed before saying hello');
        },
      },
    });
    link.client.connect().catch((err: Error) => this.failed(a, err.message));
    this.links.set(key, link);
    return link;
  }

  private failed(a: PeerAddress, reason: string): void {
    const key = keyOf(a);
    const f = this.failures.get(key);
    if (f?.reason === reason && Date.now() - f.at < 1_000) return;
    this.failures.set(key, { reason, at: Date.now() });
    if (this.failures.size > MAX_FAILURES) this.failures.delete(this.failures.keys().next().value!);
    this.owner.onFailed(a, reason);
  }

  private drop(key: string, link: Link): void {
    if (this.links.get(key) === link) this.links.delete(key);
    link.client.destroy();
  }
}
