/**
 * The tracker's directory, as pure state: which peer (by connection) holds which files, and for
 * every name each version (content id) with its holders, complete and partial. Time is passed in.
 *
 *   peers: key ─► {ip, port, files: name ─► AnnouncedFile}
 *   index: name ─► cid ─► {size, mtime, holders: set of keys, partial: set of keys}
 *   kept in step on every register/update/delete/unregister, so a listing never rebuilds the world
 *
 * The newest version of a name (seed 002: the last modified wins) is the one with the highest
 * mtime; ties go to the version with more distinct holder addresses, then the smaller content id,
 * so every call answers the same. `versions(name)` lists them all, newest first, so a client whose
 * newest version cannot be fetched (a liar announced it) can see and pick another. Holders are
 * addresses: two registrations of one ip:port collapse to one, so a peer that opens many
 * connections does not appear many times.
 *
 * Limits (all in `RegistryLimits`): registrations in total and per address, files per
 * registration, file entries in total and per address. Entries are checked one by one before
 * they get here (protocol/entries.ts); a limit refuses the message that would cross it.
 */
import { ERROR_CODES, SwarmError } from '../errors.js';
import type { AnnouncedFile } from '../protocol/entries.js';
import type { DirectoryEntry, PeerAddress, Version } from '../types.js';

export type { AnnouncedFile } from '../protocol/entries.js';

export interface RegistryLimits {
  maxPeers: number;
  maxPeersPerIp: number;
  maxFilesPerPeer: number;
  maxEntries: number;
  maxEntriesPerIp: number;
  /** Holders listed per version in an answer (the rest are found through peer exchange). */
  maxHoldersListed: number;
}

export const REGISTRY_LIMITS: RegistryLimits = {
  maxPeers: 10_000,
  maxPeersPerIp: 64,
  maxFilesPerPeer: 100_000,
  maxEntries: 2_000_000,
  maxEntriesPerIp: 400_000,
  maxHoldersListed: 200,
};

interface PeerRecord extends PeerAddress {
  files: Map<string, AnnouncedFile>;
  lastSeen: number;
  /** Silence allowed before `expire` drops it, when not the tracker's default (stock seed-002 peers). */
  maxSilenceMs?: number;
}

interface VersionIndex {
  size: number;
  mtime: number;
  holders: Set<string>;
  partial: Set<string>;
}

export class Registry {
  private readonly peers = new Map<string, PeerRecord>();
  private readonly index = new Map<string, Map<string, VersionIndex>>();
  /** cid ─► names it is announced under (peer lookups by content). */
  private readonly namesOfCid = new Map<string, Set<string>>();
  private readonly entriesPerIp = new Map<string, number>();
  private readonly peersPerIp = new Map<string, number>();
  private entries = 0;
  private sortedNames: string[] | null = null;
  private readonly newest = new Map<string, DirectoryEntry>();
  readonly limits: RegistryLimits;

  constructor(limits: Partial<RegistryLimits> = {}) {
    this.limits = { ...REGISTRY_LIMITS, ...limits };
  }

  get peerCount(): number {
    return this.peers.size;
  }

  get entryCount(): number {
    return this.entries;
  }

  has(key: string): boolean {
    return this.peers.has(key);
  }

  /** `opts.maxSilenceMs`: this registration's own expiry (stock seed-002 peers keep alive less often). */
  register(key: string, addr: PeerAddress, files: AnnouncedFile[], now: number, opts: { maxSilenceMs?: number } = {}): void {
    const existing = this.peers.get(key);
    if (!existing) {
      if (this.peers.size >= this.limits.maxPeers) throw new SwarmError(ERROR_CODES.LIMIT, `tracker is full (${this.limits.maxPeers} peers)`);
      if ((this.peersPerIp.get(addr.ip) ?? 0) >= this.limits.maxPeersPerIp) {
        throw new SwarmError(ERROR_CODES.LIMIT, `too many registrations from ${addr.ip} (limit ${this.limits.maxPeersPerIp})`);
      }
    }
    const unique = new Map(files.map((f) => [f.name, f]));
    if (unique.size > this.limits.maxFilesPerPeer) throw new SwarmError(ERROR_CODES.LIMIT, `more than ${this.limits.maxFilesPerPeer} files from one peer`);
    const had = existing?.files.size ?? 0;
    this.checkRoom(addr.ip, unique.size - had);
    if (existing) this.unregister(key);
    const p: PeerRecord = { ip: addr.ip, port: addr.port, files: new Map(), lastSeen: now, ...(opts.maxSilenceMs !== undefined ? { maxSilenceMs: opts.maxSilenceMs } : {}) };
    this.peers.set(key, p);
    this.peersPerIp.set(addr.ip, (this.peersPerIp.get(addr.ip) ?? 0) + 1);
    for (const f of unique.values()) this.addFile(key, p, f);
  }

  private checkRoom(ip: string, more: number): void {
    if (more <= 0) return;
    if (this.entries + more > this.limits.maxEntries) throw new SwarmError(ERROR_CODES.LIMIT, `tracker is full (${this.limits.maxEntries} file entries)`);
    if ((this.entriesPerIp.get(ip) ?? 0) + more > this.limits.maxEntriesPerIp) {
      throw new SwarmError(ERROR_CODES.LIMIT, `too many file entries from ${ip} (limit ${this.limits.maxEntriesPerIp})`);
    }
  }

  private peer(key: string): PeerRecord {
    const p = this.peers.get(key);
    if (!p) throw new SwarmError(ERROR_CODES.USAGE, 'not registered: send register first');
    return p;
  }

  keepalive(key: string, now: number, port?: number): void {
    const p = this.peer(key);
    p.lastSeen = now;
    if (port !== undefined && port !== p.port) {
      const files = [...p.files.values()];
      for (const f of files) this.removeFile(key, p, f.name);
      p.port = port;
      for (const f of files) this.addFile(key, p, f);
    }
  }

  update(key: string, files: AnnouncedFile[], now: number): void {
    const p = this.peer(key);
    const unique = new Map(files.map((f) => [f.name, f]));
    let added = 0;
    for (const name of unique.keys()) if (!p.files.has(name)) added++;
    if (p.files.size + added > this.limits.maxFilesPerPeer) throw new SwarmError(ERROR_CODES.LIMIT, `more than ${this.limits.maxFilesPerPeer} files from one peer`);
    this.checkRoom(p.ip, added);
    for (const f of unique.values()) {
      this.removeFile(key, p, f.name);
      this.addFile(key, p, f);
    }
    p.lastSeen = now;
  }

  delete(key: string, names: string[], now: number): void {
    const p = this.peer(key);
    for (const n of names) this.removeFile(key, p, n);
    p.lastSeen = now;
  }

  unregister(key: string): boolean {
    const p = this.peers.get(key);
    if (!p) return false;
    for (const name of [...p.files.keys()]) this.removeFile(key, p, name);
    this.peers.delete(key);
    const n = (this.peersPerIp.get(p.ip) ?? 1) - 1;
    if (n <= 0) this.peersPerIp.delete(p.ip);
    else this.peersPerIp.set(p.ip, n);
    return true;
  }

  /** Drop peers not heard from since `now - maxSilenceMs` (or their own expiry). Returns the keys dropped. */
  expire(now: number, maxSilenceMs: number): string[] {
    const gone: string[] = [];
    for (const [key, p] of this.peers) if (now - p.lastSeen > (p.maxSilenceMs ?? maxSilenceMs)) gone.push(key);
    for (const key of gone) this.unregister(key);
    return gone;
  }

  private addFile(key: string, p: PeerRecord, f: AnnouncedFile): void {
    p.files.set(f.name, f);
    this.entries++;
    this.entriesPerIp.set(p.ip, (this.entriesPerIp.get(p.ip) ?? 0) + 1);
    let byCid = this.index.get(f.name);
    if (!byCid) {
      this.index.set(f.name, (byCid = new Map()));
      this.sortedNames = null;
    }
    let v = byCid.get(f.cid);
    if (!v) {
      byCid.set(f.cid, (v = { size: f.size, mtime: f.mtime, holders: new Set(), partial: new Set() }));
      let names = this.namesOfCid.get(f.cid);
      if (!names) this.namesOfCid.set(f.cid, (names = new Set()));
      names.add(f.name);
    }
    // the same content is the same whatever its holders say of its mtime: keep the newest claim
    if (f.mtime > v.mtime) v.mtime = f.mtime;
    (f.partial ? v.partial : v.holders).add(key);
    this.newest.delete(f.name);
  }

  private removeFile(key: string, p: PeerRecord, name: string): void {
    const f = p.files.get(name);
    if (!f) return;
    p.files.delete(name);
    this.entries--;
    const n = (this.entriesPerIp.get(p.ip) ?? 1) - 1;
    if (n <= 0) this.entriesPerIp.delete(p.ip);
    else this.entriesPerIp.set(p.ip, n);
    const byCid = this.index.get(name);
    const v = byCid?.get(f.cid);
    if (byCid && v) {
      v.holders.delete(key);
      v.partial.delete(key);
      if (v.holders.size === 0 && v.partial.size === 0) {
        byCid.delete(f.cid);
        const names = this.namesOfCid.get(f.cid);
        names?.delete(name);
        if (names?.size === 0) this.namesOfCid.delete(f.cid);
      }
      if (byCid.size === 0) {
        this.index.delete(name);
        this.sortedNames = null;
      }
    }
    this.newest.delete(name);
  }

  /** Distinct addresses of a set of registrations, sorted, at most maxHoldersListed. */
  private addresses(keys: Set<string>, except?: Set<string>): PeerAddress[] {
    const seen = new Map<string, PeerAddress>();
    for (const key of keys) {
      const p = this.peers.get(key);
      if (!p) continue;
      const id = `${p.ip}|${p.port}`;
      if (except?.has(id) || seen.has(id)) continue;
      seen.set(id, { ip: p.ip, port: p.port });
    }
    return [...seen.values()].sort((a, b) => (a.ip === b.ip ? a.port - b.port : a.ip < b.ip ? -1 : 1)).slice(0, this.limits.maxHoldersListed);
  }

  private versionOf(cid: string, v: VersionIndex): Version {
    const holders = this.addresses(v.holders);
    const partial = this.addresses(v.partial, new Set(holders.map((h) => `${h.ip}|${h.port}`)));
    return { cid, size: v.size, mtime: v.mtime, holders, partial };
  }

  private distinctHolders(v: VersionIndex): number {
    const s = new Set<string>();
    for (const key of v.holders) {
      const p = this.peers.get(key);
      if (p) s.add(`${p.ip}|${p.port}`);
    }
    return s.size;
  }

  /** Every version of `name`, newest first (the first is what `whoHas` answers). */
  versions(name: string): Version[] {
    const byCid = this.index.get(name);
    if (!byCid) return [];
    const ranked = [...byCid.entries()].map(([cid, v]) => ({ cid, v, n: this.distinctHolders(v) }));
    ranked.sort((a, b) => b.v.mtime - a.v.mtime || b.n - a.n || (a.cid < b.cid ? -1 : a.cid > b.cid ? 1 : 0));
    return ranked.map(({ cid, v }) => this.versionOf(cid, v));
  }

  whoHas(name: string): DirectoryEntry | null {
    let e = this.newest.get(name);
    if (!e) {
      const all = this.versions(name);
      if (all.length === 0) return null;
      e = { ...all[0]!, versions: all.length };
      this.newest.set(name, e);
    }
    return e;
  }

  /** Names in order, for paging. */
  names(): string[] {
    this.sortedNames ??= [...this.index.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return this.sortedNames;
  }

  /** Names after `after` (exclusive), in order, at most `limit`. */
  namesAfter(after: string | undefined, limit: number): string[] {
    const names = this.names();
    let lo = 0;
    if (after !== undefined) {
      let hi = names.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (names[mid]! <= after) lo = mid + 1;
        else hi = mid;
      }
    }
    return names.slice(lo, lo + limit);
  }

  /** The whole directory (tests and small trackers; answers are paged with namesAfter). */
  directory(): Map<string, DirectoryEntry> {
    const out = new Map<string, DirectoryEntry>();
    for (const name of this.names()) out.set(name, this.whoHas(name)!);
    return out;
  }

  /** Holders (complete and partial) of a content id, whatever its name. */
  peersOf(cid: string): Version | null {
    const holders = new Set<string>();
    const partial = new Set<string>();
    let first: VersionIndex | null = null;
    for (const name of this.namesOfCid.get(cid) ?? []) {
      const v = this.index.get(name)?.get(cid);
      if (!v) continue;
      first ??= v;
      for (const k of v.holders) holders.add(k);
      for (const k of v.partial) partial.add(k);
    }
    return first ? this.versionOf(cid, { size: first.size, mtime: first.mtime, holders, partial }) : null;
  }

  /** seed 002's Directory Response: {name: {ip, port, mtime}}, one complete holder per name. */
  legacyDirectory(): Record<string, { ip: string; port: number; mtime: number }> {
    const out: Record<string, { ip: string; port: number; mtime: number }> = {};
    for (const name of this.names()) {
      const e = this.whoHas(name)!;
      const h = e.holders[0];
      if (h) out[name] = { ip: h.ip, port: h.port, mtime: e.mtime };
    }
    return out;
  }
}
