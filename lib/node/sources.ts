/**
 * Everything one peer serves, as one SourceIndex (peer/source.ts): the files of its share (the
 * library, when it shares a folder) and the contents it downloads (partial sources while they
 * run, complete ones once adopted). The peer server answers from this and never knows which is
 * which. Newly verified chunks of a download are announced to listeners (sessions push `have`
 * to peers that said `interest`).
 */
import { kindOf } from '../share/kinds.js';
import type { ChunkSource, HaveListener, HolderListener, SourceIndex, SourceReader } from '../peer/source.js';
import type { FileInfo, PeerAddress } from '../types.js';

/** Holders remembered per content, contents remembered, and for how long (peer exchange). */
const MAX_KNOWN_HOLDERS = 200;
const MAX_KNOWN_CONTENTS = 1000;
const KNOWN_FOR_MS = 10 * 60_000;

interface Held {
  name: string;
  mtime: number;
  source: ChunkSource;
}

export class NodeSources implements SourceIndex {
  private library: SourceIndex | null = null;
  private readonly held = new Map<string, Held>();
  private readonly byName = new Map<string, Held>();
  private readonly listeners = new Set<HaveListener>();
  private readonly holderListeners = new Set<HolderListener>();
  /** Holders of a content this peer knows of (for peer exchange), newest first out when full. */
  private readonly known = new Map<string, Map<string, { addr: PeerAddress; at: number }>>();

  setLibrary(library: SourceIndex | null): void {
    this.library = library;
  }

  /** Serve `source` (a download in progress, or a finished one) under `name`. */
  add(name: string, mtime: number, source: ChunkSource): void {
    const h = { name, mtime, source };
    this.held.set(source.manifest.cid, h);
    this.byName.set(name, h);
  }

  remove(cid: string): void {
    const h = this.held.get(cid);
    if (!h) return;
    this.held.delete(cid);
    if (this.byName.get(h.name) === h) this.byName.delete(h.name);
  }

  /** Contents held outside the library (downloads), for the tracker announcement. */
  heldContents(): { name: string; mtime: number; size: number; cid: string; partial: boolean }[] {
    return [...this.held.values()].map((h) => ({ name: h.name, mtime: h.mtime, size: h.source.manifest.size, cid: h.source.manifest.cid, partial: !h.source.complete }));
  }

  /** Chunks of `cid` newly verified here. */
  noteHave(cid: string, chunks: number[]): void {
    for (const l of this.listeners) l(cid, chunks);
  }

  noteHolder(cid: string, addr: PeerAddress): void {
    let m = this.known.get(cid);
    if (!m) {
      if (this.known.size >= MAX_KNOWN_CONTENTS) this.known.delete(this.known.keys().next().value!);
      this.known.set(cid, (m = new Map()));
    }
    const key = `${addr.ip}|${addr.port}`;
    const old = m.get(key);
    m.delete(key);
    m.set(key, { addr: { ip: addr.ip, port: addr.port }, at: Date.now() });
    if (m.size > MAX_KNOWN_HOLDERS) m.delete(m.keys().next().value!);
    // told once per holder, and again only once it was forgotten
    if (!old || old.at < Date.now() - KNOWN_FOR_MS) for (const l of this.holderListeners) l(cid, { ip: addr.ip, port: addr.port });
  }

  forgetHolder(cid: string, addr: PeerAddress): void {
    const m = this.known.get(cid);
    if (!m) return;
    m.delete(`${addr.ip}|${addr.port}`);
    if (m.size === 0) this.known.delete(cid);
  }

  onHolder(listener: HolderListener): () => void {
    this.holderListeners.add(listener);
    return () => this.holderListeners.delete(listener);
  }

  holdersOf(cid: string): PeerAddress[] {
    const m = this.known.get(cid);
    if (!m) return [];
    const fresh = Date.now() - KNOWN_FOR_MS;
    return [...m.values()].filter((k) => k.at >= fresh).reverse().map((k) => k.addr);
  }

  onHave(listener: HaveListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private info(h: Held): FileInfo {
    return { name: h.name, size: h.source.manifest.size, mtime: h.mtime, kind: kindOf(h.name), cid: h.source.manifest.cid };
  }

  list(after: string | undefined, limit: number): { files: FileInfo[]; next?: string } {
    const lib = this.library?.list(after, limit) ?? { files: [] };
    const mine = [...this.byName.keys()].filter((n) => (after === undefined || n > after) && !this.library?.stat(n)).sort();
    const merged: FileInfo[] = [];
    let i = 0;
    let j = 0;
    while (merged.length < limit && (i < lib.files.length || j < mine.length)) {
      if (j >= mine.length || (i < lib.files.length && lib.files[i]!.name < mine[j]!)) merged.push(lib.files[i++]!);
      else merged.push(this.info(this.byName.get(mine[j++]!)!));
    }
    const more = i < lib.files.length || lib.next !== undefined || j < mine.length;
    return more && merged.length ? { files: merged, next: merged[merged.length - 1]!.name } : { files: merged };
  }

  /** Files here whose name `match` accepts, at most `limit` (an overlay SEARCH is answered from this). */
  find(match: (name: string) => boolean, limit: number): FileInfo[] {
    const out: FileInfo[] = [];
    let after: string | undefined;
    for (;;) {
      const page = this.list(after, 1000);
      for (const f of page.files) {
        if (!match(f.name)) continue;
        out.push(f);
        if (out.length >= limit) return out;
      }
      if (page.next === undefined || page.next === after) return out;
      after = page.next;
    }
  }

  stat(name: string): FileInfo | undefined {
    const fromLibrary = this.library?.stat(name);
    if (fromLibrary) return fromLibrary;
    const h = this.byName.get(name);
    return h ? this.info(h) : undefined;
  }

  byCid(cid: string): ChunkSource | undefined {
    const lib = this.library?.byCid(cid);
    if (lib) return lib;
    return this.held.get(cid)?.source;
  }

  async openByName(name: string): Promise<{ reader: SourceReader; size: number } | undefined> {
    const fromLibrary = await this.library?.openByName(name);
    if (fromLibrary) return fromLibrary;
    const h = this.byName.get(name);
    if (!h || !h.source.complete) return undefined;
    return { reader: await h.source.open(), size: h.source.manifest.size };
  }
}
