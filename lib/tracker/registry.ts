/**
 * The tracker's directory, as pure state: which peer (by connection) serves which files, and for
 * every name the newest version with all peers holding exactly that version. Time is passed in.
 *
 * Choosing the version of a name (seed 002: the last modified wins): the highest mtime; among
 * versions with that mtime, the one with the most holders, then the smallest content id, so the
 * answer is the same on every call. Holders of other versions are not offered for the name.
 */
import { ERROR_CODES, SwarmError } from '../errors.js';
import { nameProblem } from '../share/names.js';
import type { DirectoryEntry, PeerAddress } from '../types.js';

export const MAX_PEERS = 10_000;
export const MAX_FILES_PER_PEER = 100_000;

export interface AnnouncedFile {
  name: string;
  mtime: number;
  size: number;
  cid: string;
}

interface PeerRecord extends PeerAddress {
  files: Map<string, AnnouncedFile>;
  lastSeen: number;
}

/** Validate one announced file; seed-002 peers send no size or cid. */
export function parseAnnounced(raw: unknown, legacy: boolean): AnnouncedFile {
  const f = raw as Record<string, unknown> | null;
  if (!f || typeof f !== 'object') throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'file entry is not an object');
  const problem = nameProblem(f.name);
  if (problem) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, `file entry name: ${problem}`);
  if (typeof f.mtime !== 'number' || !Number.isFinite(f.mtime) || f.mtime < 0) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, `file ${String(f.name)}: bad mtime`);
  const mtime = Math.floor(f.mtime);
  if (legacy) {
    return { name: f.name as string, mtime, size: typeof f.size === 'number' ? f.size : -1, cid: `legacy:${mtime}` };
  }
  if (typeof f.size !== 'number' || !Number.isSafeInteger(f.size) || f.size < 0) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, `file ${String(f.name)}: bad size`);
  if (typeof f.cid !== 'string' || f.cid.length === 0 || f.cid.length > 128) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, `file ${String(f.name)}: bad content id`);
  return { name: f.name as string, mtime, size: f.size, cid: f.cid };
}

export class Registry {
  private readonly peers = new Map<string, PeerRecord>();
  private cache: Map<string, DirectoryEntry> | null = null;

  constructor(private readonly limits = { maxPeers: MAX_PEERS, maxFilesPerPeer: MAX_FILES_PER_PEER }) {}

  get peerCount(): number {
    return this.peers.size;
  }

  has(key: string): boolean {
    return this.peers.has(key);
  }

  register(key: string, addr: PeerAddress, files: AnnouncedFile[], now: number): void {
    if (!this.peers.has(key) && this.peers.size >= this.limits.maxPeers) {
      throw new SwarmError(ERROR_CODES.LIMIT, `tracker is full (${this.limits.maxPeers} peers)`);
    }
    if (files.length > this.limits.maxFilesPerPeer) throw new SwarmError(ERROR_CODES.LIMIT, `more than ${this.limits.maxFilesPerPeer} files from one peer`);
    this.peers.set(key, { ip: addr.ip, port: addr.port, files: new Map(files.map((f) => [f.name, f])), lastSeen: now });
    this.cache = null;
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
      p.port = port;
      this.cache = null;
    }
  }

  update(key: string, files: AnnouncedFile[], now: number): void {
    const p = this.peer(key);
    for (const f of files) p.files.set(f.name, f);
    if (p.files.size > this.limits.maxFilesPerPeer) {
      for (const f of files) p.files.delete(f.name);
      throw new SwarmError(ERROR_CODES.LIMIT, `more than ${this.limits.maxFilesPerPeer} files from one peer`);
    }
    p.lastSeen = now;
    this.cache = null;
  }

  delete(key: string, names: string[], now: number): void {
    const p = this.peer(key);
    for (const n of names) p.files.delete(n);
    p.lastSeen = now;
    this.cache = null;
  }

  unregister(key: string): boolean {
    const had = this.peers.delete(key);
    if (had) this.cache = null;
    return had;
  }

  /** Drop peers not heard from since `now - maxSilenceMs`. Returns the keys dropped. */
  expire(now: number, maxSilenceMs: number): string[] {
    const gone: string[] = [];
    for (const [key, p] of this.peers) if (now - p.lastSeen > maxSilenceMs) gone.push(key);
    for (const key of gone) this.peers.delete(key);
    if (gone.length) this.cache = null;
    return gone;
  }

  directory(): Map<string, DirectoryEntry> {
    if (this.cache) return this.cache;
    const versions = new Map<string, Map<string, { f: AnnouncedFile; holders: PeerAddress[] }>>();
    for (const p of this.peers.values()) {
      for (const f of p.files.values()) {
        let byCid = versions.get(f.name);
        if (!byCid) versions.set(f.name, (byCid = new Map()));
        const v = byCid.get(f.cid);
        if (v) v.holders.push({ ip: p.ip, port: p.port });
        else byCid.set(f.cid, { f, holders: [{ ip: p.ip, port: p.port }] });
      }
    }
    const out = new Map<string, DirectoryEntry>();
    for (const [name, byCid] of versions) {
      let best: { f: AnnouncedFile; holders: PeerAddress[] } | null = null;
      for (const v of byCid.values()) {
        if (
          !best ||
          v.f.mtime > best.f.mtime ||
          (v.f.mtime === best.f.mtime && (v.holders.length > best.holders.length || (v.holders.length === best.holders.length && v.f.cid < best.f.cid)))
        ) {
          best = v;
        }
      }
      const holders = [...best!.holders].sort((a, b) => (a.ip === b.ip ? a.port - b.port : a.ip < b.ip ? -1 : 1));
      out.set(name, { ip: holders[0]!.ip, port: holders[0]!.port, mtime: best!.f.mtime, size: best!.f.size, cid: best!.f.cid, holders });
    }
    this.cache = out;
    return out;
  }

  whoHas(name: string): DirectoryEntry | null {
    return this.directory().get(name) ?? null;
  }

  /** seed 002's Directory Response: {name: {ip, port, mtime}}. */
  legacyDirectory(): Record<string, { ip: string; port: number; mtime: number }> {
    const out: Record<string, { ip: string; port: number; mtime: number }> = {};
    for (const [name, e] of this.directory()) out[name] = { ip: e.ip, port: e.port, mtime: e.mtime };
    return out;
  }
}
