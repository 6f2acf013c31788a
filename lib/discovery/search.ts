/**
 * Searching by name across every source a peer has (the overlay's SEARCH, a tracker's
 * directory), with answers merged into one result per file and content id, and the overlay as a
 * holder finder for `get` (resolve.ts's VersionFinder) when no tracker answers.
 */
import type { VersionFinder } from '../download/resolve.js';
import { ERROR_CODES, SwarmError } from '../errors.js';
import { addressText, type FileInfo, type FileKind, type PeerAddress, type Version } from '../types.js';
import type { Hit, Overlay } from './overlay.js';

export interface SearchResult {
  name: string;
  kind: FileKind;
  size: number;
  mtime: number;
  cid: string;
  holders: PeerAddress[];
  /** Where it was found: "overlay", "tracker". */
  sources: string[];
}

export const DEFAULT_SEARCH_TTL = 5;
/** How long a search waits for hits at most, and how long after the last hit it stops. */
export const DEFAULT_SEARCH_WAIT_MS = 2_000;
export const SEARCH_QUIET_MS = 500;
/** Files one overlay answer carries at most (overlay.ts): an answer this long may have been cut. */
const HITS_PER_ANSWER = 50;
/** Holders a download takes from overlay hits per version, and per IP address. */
const MAX_HIT_HOLDERS = 8;
const MAX_HIT_HOLDERS_PER_IP = 2;
/** Holders kept per result, results kept per search. */
const MAX_HOLDERS = 64;
const MAX_RESULTS = 10_000;

export interface OverlaySearchResult {
  hits: Hit[];
  /** Neighbours the search went to, and those of them whose link never answered (with why). */
  asked: number;
  unreachable: { addr: PeerAddress; reason: string }[];
  /** Some peer answered with as many files as one answer may carry: there may be more. */
  capped: boolean;
}

export interface OverlaySearchOptions {
  ttl?: number;
  waitMs?: number;
  quietMs?: number;
  signal?: AbortSignal;
  onHits?: (h: Hit[]) => void;
}

/** Flood SEARCH `pattern`; resolves with the hits, `quietMs` after the last one or at `waitMs`. */
export async function overlaySearch(overlay: Overlay, pattern: string, o: OverlaySearchOptions = {}): Promise<Hit[]> {
  return (await searchOverlay(overlay, pattern, o)).hits;
}

/** overlaySearch, with which neighbours never answered and whether answers were cut. */
export function searchOverlay(overlay: Overlay, pattern: string, o: OverlaySearchOptions = {}): Promise<OverlaySearchResult> {
  return new Promise((resolve) => {
    const hits: Hit[] = [];
    let capped = false;
    let quiet: NodeJS.Timeout | null = null;
    const s = overlay.search(pattern, o.ttl ?? DEFAULT_SEARCH_TTL, (h) => {
      if (h.length >= HITS_PER_ANSWER) capped = true;
      if (hits.length >= MAX_RESULTS * 4) return;
      hits.push(...h);
      o.onHits?.(h);
      if (quiet) quiet.refresh();
      else quiet = setTimeout(finish, o.quietMs ?? SEARCH_QUIET_MS);
    });
    const all = setTimeout(finish, s.neighbours === 0 ? 0 : (o.waitMs ?? DEFAULT_SEARCH_WAIT_MS));
    o.signal?.addEventListener('abort', finish, { once: true });
    function finish() {
      s.stop();
      clearTimeout(all);
      if (quiet) clearTimeout(quiet);
      o.signal?.removeEventListener('abort', finish);
      const unreachable: OverlaySearchResult['unreachable'] = [];
      for (const a of s.sentTo) {
        const st = overlay.linkState(a);
        if (st.state !== 'up') unreachable.push({ addr: a, reason: st.reason ?? 'no answer yet' });
      }
      resolve({ hits, asked: s.sentTo.length, unreachable, capped });
    }
  });
}

/** Why no neighbour could be asked, as one line. */
export function unreachableText(u: OverlaySearchResult['unreachable']): string {
  return u.map((x) => `${addressText(x.addr)} (${x.reason})`).join(', ');
}

/** Results merged by name and content id; holders collapsed. */
export class ResultSet {
  private readonly m = new Map<string, SearchResult>();

  add(f: FileInfo, holders: PeerAddress[], source: string): void {
    const key = `${f.cid}|${f.name}`;
    let r = this.m.get(key);
    if (!r) {
      if (this.m.size >= MAX_RESULTS) return;
      r = { name: f.name, kind: f.kind, size: f.size, mtime: f.mtime, cid: f.cid, holders: [], sources: [] };
      this.m.set(key, r);
    }
    if (!r.sources.includes(source)) r.sources.push(source);
    for (const h of holders) {
      if (r.holders.length >= MAX_HOLDERS) break;
      if (!r.holders.some((x) => x.ip === h.ip && x.port === h.port)) r.holders.push({ ip: h.ip, port: h.port });
    }
  }

  /** Hits; a holder that `isLan` says was heard on the LAN is counted as found there. */
  addHits(hits: Hit[], isLan: (a: PeerAddress) => boolean = () => false): void {
    for (const h of hits) this.add(h.file, [h.holder], isLan(h.holder) ? 'lan' : 'overlay');
  }

  /** By name, then newest first. */
  results(): SearchResult[] {
    return [...this.m.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : b.mtime - a.mtime));
  }
}

/** Hits of exactly `name`, as versions (holders merged by content id). */
export function versionsOf(name: string, hits: Hit[]): Version[] {
  const byCid = new Map<string, Version>();
  for (const h of hits) {
    if (h.file.name !== name) continue;
    let v = byCid.get(h.file.cid);
    if (!v) byCid.set(h.file.cid, (v = { cid: h.file.cid, size: h.file.size, mtime: h.file.mtime, holders: [], partial: [] }));
    // holders from hits are claims: a few per version and per address, so a forged hit cannot
    // make a download open connections to many addresses of its choosing
    if (v.holders.length >= MAX_HIT_HOLDERS || v.holders.filter((x) => x.ip === h.holder.ip).length >= MAX_HIT_HOLDERS_PER_IP) continue;
    if (!v.holders.some((x) => x.ip === h.holder.ip && x.port === h.holder.port)) v.holders.push(h.holder);
  }
  return [...byCid.values()].sort((x, y) => y.mtime - x.mtime || y.holders.length - x.holders.length);
}

/** The overlay as a place to find holders of a name (used by `get` beside the tracker). */
export function overlayFinder(overlay: Overlay, ttl = DEFAULT_SEARCH_TTL): VersionFinder {
  return {
    label: 'the overlay',
    versions: async (name, signal) => {
      const r = await searchOverlay(overlay, name, { ttl, ...(signal ? { signal } : {}) });
      const v = versionsOf(name, r.hits);
      // every neighbour down is not "nobody has it": say so, with why (exit 4, not 3)
      if (v.length === 0 && r.asked > 0 && r.unreachable.length === r.asked) {
        throw new SwarmError(ERROR_CODES.NO_PEERS, `no neighbour answered: ${unreachableText(r.unreachable)}`);
      }
      return v;
    },
  };
}
