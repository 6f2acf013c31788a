/**
 * The serving side of sync: what this peer answers other syncing peers from its index
 * (`sync-index`, `sync-watch`), one IndexConnection per peer connection, behind the proof of the
 * folder key (membership.ts).
 *
 *   session ─► open(link) ─► IndexConnection.handle(m)
 *                 sync-auth / sync-proof ─► ServerProof (a wrong proof: refused, connection ended)
 *                 sync-index ─► keyed and not proved: SWARM_ERR_SYNC_DENIED; else a page (tagged)
 *                 sync-watch ─► keyed and not proved: refused; else `sync-news` per burst of changes
 *
 * An open folder (no key: `swarm sync --open`) answers every peer as before, and refuses
 * `sync-auth` (it has nothing to prove with). A keyed folder never answers the index through the
 * port's plain `page` (sessions that do not route through `open`). What the key does not do:
 * encrypt. A non-member that relays a whole handshake between two members (membership.ts) passes
 * their proofs along and can read the pages it relays, though not change them; the files
 * themselves are served by content id to anyone, as `serve` does.
 */
import { ERROR_CODES, SwarmError, asSwarmError } from '../errors.js';
import type { SyncConnection, SyncLink, SyncPort, SyncRequest } from '../peer/sync-port.js';
import type { PeerAddress } from '../types.js';
import type { FolderKey } from './folder-key.js';
import type { SyncIndex } from './index-store.js';
import { ServerProof, pageMac } from './membership.js';

/** A watched index that changes is told of at most this often. */
const SYNC_NEWS_MS = 200;

export interface IndexPortHooks {
  /** A peer that serves on `addr` and proved the key (or any, open) watches us: read it back. */
  watchedBy(addr: PeerAddress): void;
  /** A peer was refused (told once per peer by the caller). */
  refused(link: SyncLink, reason: string): void;
}

// read on both ends (sent on the wire, and in our own warning): says which side is which
const NEEDS_KEY = 'the keyed side reads only peers that prove its folder key first (sync-auth); an open folder or an older swarm cannot';

export class IndexPort implements SyncPort {
  constructor(
    private readonly index: SyncIndex,
    private readonly key: FolderKey | null,
    private readonly ownPeer: string,
    private readonly hooks: IndexPortHooks,
  ) {}

  open(link: SyncLink): SyncConnection {
    return new IndexConnection(this.index, this.key, new ServerProof(this.key, this.ownPeer, link.peer), link, this.hooks);
  }

  page(after: string | undefined, since?: number): { entries: unknown[]; next?: string; version?: number } {
    if (this.key) throw new SwarmError(ERROR_CODES.SYNC_DENIED, NEEDS_KEY);
    return this.index.page(after, since);
  }

  get version(): number {
    return this.index.version;
  }

  onChange(fn: () => void): () => void {
    if (this.key) return () => {}; // (a session without `open`: nobody unproved hears of changes)
    return this.index.onChange(fn);
  }

  watchedBy(addr: PeerAddress): void {
    if (!this.key) this.hooks.watchedBy(addr);
  }
}

class IndexConnection implements SyncConnection {
  private unwatch: (() => void) | null = null;
  private newsTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly index: SyncIndex,
    private readonly key: FolderKey | null,
    private readonly proof: ServerProof,
    private readonly link: SyncLink,
    private readonly hooks: IndexPortHooks,
  ) {}

  private get member(): boolean {
    return this.key === null || this.proof.session !== null;
  }

  private refuse(id: number | undefined, err: unknown, end: boolean): void {
    const e = asSwarmError(err);
    this.link.send({ t: 'error', ...(id !== undefined ? { id } : {}), code: e.code, message: e.message });
    this.hooks.refused(this.link, e.message);
    if (end) this.link.end(e.message);
  }

  handle(m: SyncRequest): void {
    if (this.closed) return;
    switch (m.t) {
      case 'sync-auth':
        try {
          this.link.send(this.proof.challenge(m));
        } catch (err) {
          this.refuse(m.id, err, true);
        }
        return;
      case 'sync-proof':
        try {
          this.proof.check(m.proof);
        } catch (err) {
          this.refuse(m.id, err, true);
          return;
        }
        this.link.send({ t: 'sync-ok', id: m.id });
        return;
      case 'sync-index': {
        if (!this.member) return this.refuse(m.id, new SwarmError(ERROR_CODES.SYNC_DENIED, NEEDS_KEY), false);
        const page = this.index.page(m.after, m.since);
        const session = this.proof.session;
        const mac = session ? { mac: pageMac(session, m, page) } : {};
        this.link.send({ t: 'sync-entries', id: m.id, entries: page.entries, ...(page.next !== undefined ? { next: page.next } : {}), version: page.version, ...mac });
        return;
      }
      case 'sync-watch': {
        if (!this.member) return this.refuse(undefined, new SwarmError(ERROR_CODES.SYNC_DENIED, NEEDS_KEY), false);
        if (this.unwatch) return;
        // changes come in bursts (a folder copied in): one `sync-news` per burst, at most every 200 ms
        this.unwatch = this.index.onChange(() => {
          this.newsTimer ??= setTimeout(() => {
            this.newsTimer = null;
            if (!this.closed) this.link.send({ t: 'sync-news', version: this.index.version });
          }, SYNC_NEWS_MS);
          this.newsTimer.unref();
        });
        this.link.send({ t: 'sync-news', version: this.index.version });
        if (this.link.listen) this.hooks.watchedBy(this.link.listen);
        return;
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unwatch?.();
    if (this.newsTimer) clearTimeout(this.newsTimer);
  }
}
