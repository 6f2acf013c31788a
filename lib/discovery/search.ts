/**
 * Searching by name across every source a peer has (the overlay's SEARCH, a tracker's
 * directory), with answers merged into one result per file and content id, and the overlay as a
 * holder finder for `get` (resolve.ts's VersionFinder) when no tracker answers.
 */
import type { VersionFinder } from '../download/resolve.js';
import type { FileInfo, FileKind, PeerAddress, Version } from '../types.js';
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
/** Holders kept per result, results kept per search. */
const MAX_HOLDERS = 64;
const MAX_RESULTS = 10_000;

/** Flood SEARCH `pattern`; resolves with the hits, `quietMs` after the last one or at `waitMs`. */
export function overlaySearch(overlay: Overlay, pattern: string, o: { ttl?: number; waitMs?: number; quietMs?: number; signal?: AbortSignal; onHits?: (h: Hit[]) => void } = {}): Promise<Hit[]> {
  return new Promise((resolve) => {
    const hits: Hit[] = [];
    let quiet: NodeJS.Timeout | null = null;
    const s = overlay.search(pattern, o.ttl ?? DEFAULT_SEARCH_TTL, (h) => {
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
      resolve(hits);
    }
  });
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

  addHits(hits: Hit[], source = 'overlay'): void {
    for (const h of hits) this.add(h.file, [h.holder], source);
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
    if (!v.holders.some((x) => x.ip === h.holder.ip && x.port === h.holder.port) && v.holders.length < MAX_HOLDERS) v.holders.push(h.holder);
  }
  return [...byCid.values()].sort((x, y) => y.mtime - x.mtime || y.holders.length - x.holders.length);
}

/** The overlay as a place to find holders of a name (used by `get` beside the tracker). */
export function overlayFinder(overlay: Overlay, ttl = DEFAULT_SEARCH_TTL): VersionFinder {
  return {
    label: 'the overlay',
    versions: async (name, signal) => versionsOf(name, await overlaySearch(overlay, name, { ttl, ...(signal ? { signal } : {}) })),
  };
}
