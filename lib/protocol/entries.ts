/**
 * Element checks for the lists that messages carry: files a peer lists, files a peer announces to
 * a tracker, the tracker's directory and version lists, peer addresses. Pure.
 *
 * Each function takes the raw array (or object) from a decoded message and returns the elements
 * that pass as typed values, plus the ones dropped with why. One bad element never spoils the
 * rest: a peer with one file name the tracker cannot accept still registers its other files.
 * Duplicate addresses collapse to one.
 */
import { isIP } from 'node:net';
import { MAX_FILE_BYTES, MAX_MTIME_SEC } from '../constants.js';
import { isContentId } from '../hashing.js';
import { nameProblem } from './names.js';
import type { DirectoryEntry, FileInfo, FileKind, PeerAddress, Version } from '../types.js';

export interface Dropped {
  what: string;
  reason: string;
}

export interface Checked<T> {
  ok: T[];
  dropped: Dropped[];
}

const KINDS: ReadonlySet<string> = new Set<FileKind>(['video', 'music', 'picture', 'document', 'archive', 'other']);

/** Content ids of versions held by stock seed-002 peers, which hash nothing: "legacy:<mtime>". */
const LEGACY_CID = /^legacy:\d{1,10}$/;

export function isLegacyCid(cid: string): boolean {
  return LEGACY_CID.test(cid);
}

function label(raw: unknown, i: number): string {
  const n = (raw as { name?: unknown } | null)?.name;
  return typeof n === 'string' ? n.slice(0, 200) : `#${i}`;
}

export function mtimeProblem(v: unknown): string | null {
  if (typeof v !== 'number' || !Number.isFinite(v)) return 'mtime is not a number';
  if (v < 0 || v > MAX_MTIME_SEC) return `mtime ${v} out of range`;
  return null;
}

export function sizeProblem(v: unknown): string | null {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return 'size is not a whole number of bytes';
  if (v > MAX_FILE_BYTES) return `size ${v} over the ${MAX_FILE_BYTES}-byte limit`;
  return null;
}

export function addressProblem(raw: unknown): string | null {
  const a = raw as { ip?: unknown; port?: unknown } | null;
  if (!a || typeof a !== 'object') return 'not an address';
  if (typeof a.ip !== 'string' || isIP(a.ip) === 0) return 'ip is not an IP address';
  if (typeof a.port !== 'number' || !Number.isInteger(a.port) || a.port < 1 || a.port > 65535) return 'port out of range';
  return null;
}

/** Peer addresses: valid ones, duplicates collapsed, at most `max`. */
export function checkAddresses(raw: unknown, max = 1000): Checked<PeerAddress> {
  const out: PeerAddress[] = [];
  const dropped: Dropped[] = [];
  if (!Array.isArray(raw)) return { ok: out, dropped: [{ what: 'addresses', reason: 'not a list' }] };
  const seen = new Set<string>();
  for (let i = 0; i < raw.length; i++) {
    const problem = addressProblem(raw[i]);
    if (problem) {
      dropped.push({ what: `address #${i}`, reason: problem });
      continue;
    }
    const { ip, port } = raw[i] as PeerAddress;
    const key = `${ip}|${port}`;
    if (seen.has(key)) continue;
    if (out.length >= max) {
      dropped.push({ what: `address #${i}`, reason: `more than ${max} addresses` });
      continue;
    }
    seen.add(key);
    out.push({ ip, port });
  }
  return { ok: out, dropped };
}

/** One file of a peer's listing (`files`, `entry`). */
export function fileProblem(raw: unknown): string | null {
  const f = raw as Record<string, unknown> | null;
  if (!f || typeof f !== 'object') return 'not an object';
  return nameProblem(f.name) ?? sizeProblem(f.size) ?? mtimeProblem(f.mtime) ?? (isContentId(f.cid) ? null : 'bad content id');
}

export function toFileInfo(raw: Record<string, unknown>): FileInfo {
  const kind = typeof raw.kind === 'string' && KINDS.has(raw.kind) ? (raw.kind as FileKind) : 'other';
  return { name: raw.name as string, size: raw.size as number, mtime: Math.floor(raw.mtime as number), kind, cid: raw.cid as string };
}

export function checkFiles(raw: unknown[]): Checked<FileInfo> {
  const ok: FileInfo[] = [];
  const dropped: Dropped[] = [];
  raw.forEach((f, i) => {
    const problem = fileProblem(f);
    if (problem) dropped.push({ what: label(f, i), reason: problem });
    else ok.push(toFileInfo(f as Record<string, unknown>));
  });
  return { ok, dropped };
}

/** A file a peer announces to a tracker. Stock seed-002 peers send only name and mtime. */
export interface AnnouncedFile {
  name: string;
  mtime: number;
  /** -1 when unknown (seed-002 peers). */
  size: number;
  /** Content id, or "legacy:<mtime>" for seed-002 peers. */
  cid: string;
  /** True when the peer holds only some chunks (a download in progress that shares them). */
  partial: boolean;
}

export function checkAnnounced(raw: unknown[], legacy: boolean): Checked<AnnouncedFile> {
  const ok: AnnouncedFile[] = [];
  const dropped: Dropped[] = [];
  raw.forEach((r, i) => {
    const f = r as Record<string, unknown> | null;
    const problem =
      !f || typeof f !== 'object'
        ? 'not an object'
        : (nameProblem(f.name) ?? mtimeProblem(f.mtime) ?? (legacy ? null : (sizeProblem(f.size) ?? (isContentId(f.cid) ? null : 'bad content id'))));
    if (problem) {
      dropped.push({ what: label(r, i), reason: problem });
      return;
    }
    const mtime = Math.floor(f!.mtime as number);
    ok.push(
      legacy
        ? { name: f!.name as string, mtime, size: -1, cid: `legacy:${mtime}`, partial: false }
        : { name: f!.name as string, mtime, size: f!.size as number, cid: f!.cid as string, partial: f!.partial === true },
    );
  });
  return { ok, dropped };
}

function versionProblem(v: Record<string, unknown>): string | null {
  const legacy = typeof v.cid === 'string' && isLegacyCid(v.cid);
  if (!legacy && !isContentId(v.cid)) return 'bad content id';
  if (!(legacy && v.size === -1)) {
    const p = sizeProblem(v.size);
    if (p) return p;
  }
  return mtimeProblem(v.mtime);
}

/** One version as a tracker describes it; holders checked, duplicates collapsed. */
export function toVersion(raw: unknown): { v: Version | null; reason?: string } {
  const v = raw as Record<string, unknown> | null;
  if (!v || typeof v !== 'object') return { v: null, reason: 'not an object' };
  const problem = versionProblem(v);
  if (problem) return { v: null, reason: problem };
  const holders = checkAddresses(v.holders ?? []).ok;
  const seen = new Set(holders.map((h) => `${h.ip}|${h.port}`));
  const partial = checkAddresses(v.partial ?? []).ok.filter((h) => !seen.has(`${h.ip}|${h.port}`));
  if (holders.length === 0 && partial.length === 0) return { v: null, reason: 'no valid holder' };
  return { v: { cid: v.cid as string, size: v.size as number, mtime: Math.floor(v.mtime as number), holders, partial } };
}

/** A tracker's `directory` answer: name → newest version. */
export function checkDirectory(raw: Record<string, unknown>): Checked<[string, DirectoryEntry]> {
  const ok: [string, DirectoryEntry][] = [];
  const dropped: Dropped[] = [];
  for (const [name, e] of Object.entries(raw)) {
    const problem = nameProblem(name);
    if (problem) {
      dropped.push({ what: name.slice(0, 200), reason: problem });
      continue;
    }
    const { v, reason } = toVersion(e);
    if (!v) {
      dropped.push({ what: name, reason: reason! });
      continue;
    }
    const n = (e as { versions?: unknown }).versions;
    ok.push([name, { ...v, versions: typeof n === 'number' && Number.isSafeInteger(n) && n >= 1 ? n : 1 }]);
  }
  return { ok, dropped };
}

/** A tracker's `holders` answer: every version of one name, newest first. */
export function checkVersions(raw: unknown[]): Checked<Version> {
  const ok: Version[] = [];
  const dropped: Dropped[] = [];
  raw.forEach((r, i) => {
    const { v, reason } = toVersion(r);
    if (v) ok.push(v);
    else dropped.push({ what: `version #${i}`, reason: reason! });
  });
  ok.sort((a, b) => b.mtime - a.mtime);
  return { ok, dropped };
}
