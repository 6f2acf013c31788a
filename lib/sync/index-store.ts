/**
 * The sync index of one folder: every name with its current version (content id, mtime, size),
 * the version last agreed on with the swarm, the versions local edits replaced (`prev`), the device
 * that made the version (`maker`: this folder's for a version made here, the holder's word for one
 * fetched), and deletions (tombstones with the deleted content id and when), so a deleted file does not come back from a peer that missed the deletion. It follows
 * the share's library (a file that disappears becomes a tombstone, unless sync itself is replacing
 * it) and is saved in DIR/.swarm/sync-index.json, written atomically (at most every SAVE_DELAY_MS
 * while changes keep coming). Tombstones older than `keepDeletedDays` are forgotten.
 *
 * Every change gets a sequence number (`version`, per process): a watcher that read the index up to
 * version V asks for what changed since V (`page(after, since)`), not the whole index again. The
 * names in order are kept sorted between changes, so a page costs its size, not a sort of every name.
 *
 * A fetched file noted in the landing record (landing-record.ts) before it took its name is taken,
 * when found at start with that content and mtime, as fetched, not as an edit made here (`take`).
 */
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../storage/atomic.js';
import { STATE_DIR_NAME } from '../constants.js';
import type { FileInfo } from '../types.js';
import { boundLineage, isLineage, type SyncEntry } from './plan.js';
import { LandingRecord } from './landing-record.js';
import { isDeviceId } from './device-id.js';

const FILE = 'sync-index.json';
const FORMAT = 1;
/** Entries per page when a peer asks for the index. */
export const SYNC_PAGE_ENTRIES = 1000;
/** Changes are written to disk this long after the first of a burst (and at close). */
const SAVE_DELAY_MS = 1_000;

/** JSON a page of entries holds at most, about (a frame's header takes 1 MiB: MAX_HEADER_BYTES). */
const PAGE_BYTES = 384 << 10;

/** An upper bound of one entry's JSON: the fields (a maker's too), the name (escaped, at worst twice its bytes) and its lineage. */
function entryBytes(e: SyncEntry): number {
  return 272 + 2 * Buffer.byteLength(e.name) + 70 * (e.prev?.length ?? 0);
}

/** The first index in sorted `names` whose name is after `after`. */
function lowerBound(names: string[], after: string): number {
  let lo = 0;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (names[mid]! <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Whether a file the scan no longer lists is really gone: its stat says it does not exist (ENOENT,
 * or ENOTDIR: a folder on its path is a file now). Any other failure says nothing about the file
 * (EACCES: a folder made unreadable; EIO: a failing disk; ENOTCONN, ESTALE: a lost network or
 * FUSE mount; ELOOP): taking it for a deletion sent the deletion of every file under such a folder
 * to every member (hostile review 47: `chmod 000` of a folder for 3 s lost its files everywhere).
 */
function reallyGone(file: string): boolean {
  try {
    statSync(file);
    return false;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR';
  }
}

export class SyncIndex {
  private readonly entries = new Map<string, SyncEntry>();
  /**
   * Names sync is replacing or moving right now (their disappearance is not a deletion), and the
   * content id a fetch brings there ('' a deletion): a conflict copy goes to no name that another
   * version is coming to (conflict-copy.ts).
   */
  readonly busy = new Map<string, string>();
  private saving: Promise<void> = Promise.resolve();
  private dirty = false;
  private saveTimer: NodeJS.Timeout | null = null;
  /** Bumped on every change (peers watching are told). */
  version = 0;
  /** The version at which each name last changed. */
  private readonly seqOf = new Map<string, number>();
  /** Every name, sorted (null: to be sorted again after names were added or forgotten). */
  private sorted: string[] | null = null;
  private readonly listeners = new Set<() => void>();
  /**
   * Files on another device than the share's folder (a disk mounted in a subfolder), and that
   * device: kept with the index, so that a disk unmounted while sync was stopped is told from its
   * files deleted then (local.ts `diskGone`). Never sent to peers.
   */
  private readonly devices = new Map<string, number>();
  /** This folder's device id (device-id.ts; set at start): the `maker` of the versions made here. */
  deviceId = '';
  /** Fetched versions about to take their name, or that took it since the last index save (see above). */
  private readonly landing: LandingRecord;

  constructor(
    readonly root: string,
    private readonly keepDeletedDays = 30,
  ) {
    this.landing = new LandingRecord(root);
  }

  get file(): string {
    return path.join(this.root, STATE_DIR_NAME, FILE);
  }

  async load(): Promise<void> {
    await this.landing.load();
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(this.file, 'utf8'));
    } catch {
      return; // none yet, or damaged: rebuilt from the share (tombstones are then lost, not files)
    }
    const r = raw as { format?: number; entries?: unknown; devices?: unknown };
    if (r.format !== FORMAT || !Array.isArray(r.entries)) return;
    if (Array.isArray(r.devices)) {
      for (const d of r.devices as unknown[]) {
        if (Array.isArray(d) && typeof d[0] === 'string' && Number.isSafeInteger(d[1]) && (d[1] as number) >= 0) this.devices.set(d[0], d[1] as number);
      }
    }
    for (const e of r.entries as SyncEntry[]) {
      if (!e || typeof e.name !== 'string' || typeof e.cid !== 'string' || typeof e.mtime !== 'number') continue;
      // a lineage this version would not send (too long, not content ids) is dropped, not passed on
      if (e.prev !== undefined && !isLineage(e.prev)) delete e.prev;
      if (e.maker !== undefined && !isDeviceId(e.maker)) delete e.maker;
      this.entries.set(e.name, e);
    }
  }

  /**
   * Versions sync fetched are about to take their names (a big file before its rename, a batch of
   * small ones before its renames): what `fetched` will record, on disk before this returns, so
   * a kill before the index is saved leaves them known (landing-record.ts).
   */
  willLand(es: SyncEntry[]): void {
    this.landing.add(es);
  }

  /**
   * Whether the live version of `name` was made here (new or edited in this folder), not fetched:
   * its maker is this folder (a conflict this member loses is then "changed here", else between two
   * other members). A version without a maker (an older build's index): one not agreed on, as far
   * as we know. Agreement alone cannot tell: an edit of ours the others took is agreed on too.
   */
  madeHere(name: string): boolean {
    const e = this.entries.get(name);
    if (!e || e.deleted !== undefined) return false;
    return e.maker !== undefined ? e.maker === this.deviceId : e.agreed !== e.cid;
  }

  get(name: string): SyncEntry | undefined {
    return this.entries.get(name);
  }

  all(): SyncEntry[] {
    return [...this.entries.values()];
  }

  /**
   * A page of entries in name order after `after`; with `since`, only the entries changed after
   * that version (a watcher's catch-up). `version`: the index version the page was read at.
   */
  page(after: string | undefined, since?: number, limit = SYNC_PAGE_ENTRIES): { entries: SyncEntry[]; next?: string; version: number } {
    let names: string[];
    let start = 0;
    if (since !== undefined && since <= this.version) {
      names = [];
      for (const [n, seq] of this.seqOf) if (seq > since && (after === undefined || n > after)) names.push(n);
      names.sort();
    } else {
      this.sorted ??= [...this.entries.keys()].sort();
      names = this.sorted;
      // from where the last page ended, without copying the rest (a full read stays linear)
      if (after !== undefined) start = lowerBound(names, after);
    }
    // at most `limit` entries and about PAGE_BYTES of JSON (names reach 4 KiB: 1,000 of them would
    // not fit in one frame's header)
    const entries: SyncEntry[] = [];
    let i = start;
    for (let bytes = 0; i < names.length && entries.length < limit && bytes < PAGE_BYTES; i++) {
      const e = this.entries.get(names[i]!)!;
      bytes += entryBytes(e);
      entries.push(e);
    }
    return i < names.length ? { entries, next: names[i - 1]!, version: this.version } : { entries, version: this.version };
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Bring the index in line with the share's files: new and changed ones, and deletions. A
   * deletion is only a name the scan reported removed (`removed`; at start, every name the share
   * lacks) whose file is really gone: a file being re-hashed, or replaced by a rename while it was
   * hashed, is missing from the library for a moment, and must not become a tombstone.
   */
  follow(files: FileInfo[], removed: string[] | null = null, nowSec = Math.floor(Date.now() / 1000)): void {
    const present = new Set<string>();
    for (const f of files) {
      present.add(f.name);
      this.take(f);
    }
    const gone = removed ? new Set(removed) : null;
    for (const e of this.entries.values()) {
      if (present.has(e.name)) continue;
      if (gone && !gone.has(e.name)) continue;
      this.gone(e.name, nowSec);
    }
    const forgetBefore = nowSec - this.keepDeletedDays * 86_400;
    for (const e of [...this.entries.values()]) {
      if (e.deleted !== undefined && e.deleted < forgetBefore) {
        this.entries.delete(e.name);
        this.seqOf.delete(e.name);
        this.sorted = null;
        this.changed(null);
      }
    }
  }

  /** `follow` for what one change of the share names: files added or changed, names removed. */
  followSome(files: FileInfo[], removed: string[], nowSec = Math.floor(Date.now() / 1000)): void {
    for (const f of files) this.take(f);
    for (const name of removed) this.gone(name, nowSec);
  }

  private take(f: FileInfo): void {
    const e = this.entries.get(f.name);
    if (e && e.deleted === undefined && e.cid === f.cid && e.mtime === f.mtime) return;
    // the version sync fetched, which took its name before the index was told or saved (a kill
    // between: see above): fetched, not made here
    const l = this.landing.get(f.name);
    if (l && l.cid === f.cid && l.mtime === f.mtime) {
      this.fetched(f.name, f.cid, f.mtime, f.size, l.prev, l.maker);
      return;
    }
    // a local edit of a live file: the version it replaced joins the lineage (plan.ts), so a peer
    // holding it can tell that this one was made from it
    const prev = e && e.deleted === undefined ? (e.cid === f.cid ? (e.prev ?? []) : boundLineage([e.cid, ...(e.prev ?? [])], f.cid)) : [];
    // made here (new, edited, back after a deletion), or only touched: the same version, the same maker
    const maker = e && e.deleted === undefined && e.cid === f.cid ? e.maker : this.deviceId || undefined;
    this.set({ name: f.name, cid: f.cid, mtime: f.mtime, size: f.size, ...(e?.agreed ? { agreed: e.agreed } : {}), ...(prev.length ? { prev } : {}), ...(maker ? { maker } : {}) });
  }

  private gone(name: string, nowSec: number): void {
    const e = this.entries.get(name);
    if (!e || e.deleted !== undefined || this.busy.has(name)) return;
    if (!reallyGone(path.join(this.root, ...name.split('/')))) return;
    this.set({ name: e.name, cid: e.cid, mtime: e.mtime, size: e.size, deleted: nowSec, ...(e.agreed ? { agreed: e.agreed } : {}), ...(e.prev ? { prev: e.prev } : {}) });
  }

  private set(e: SyncEntry): void {
    if (!this.entries.has(e.name)) this.sorted = null;
    this.entries.set(e.name, e);
    this.changed(e.name);
  }

  /** The device `name` was last seen on, if not the share folder's (see `devices`). */
  deviceOf(name: string): number | undefined {
    return this.devices.get(name);
  }

  /** `name` is on device `dev` (undefined: on the share folder's own). Saved with the index. */
  setDevice(name: string, dev: number | undefined): void {
    if (this.devices.get(name) === dev) return;
    if (dev === undefined) this.devices.delete(name);
    else this.devices.set(name, dev);
    this.dirty = true;
  }

  /** Whether any file was seen on another device than the share folder's. */
  get onOtherDevices(): boolean {
    return this.devices.size > 0;
  }

  /** The version of `name` agreed on with the swarm (fetched, or seen the same elsewhere). */
  agree(name: string, cid: string): void {
    const e = this.entries.get(name);
    if (!e || e.agreed === cid) return;
    this.set({ ...e, agreed: cid });
  }

  /** A deletion learnt from a peer (nothing here to delete, or deleted here by sync). */
  rememberDeletion(t: SyncEntry): void {
    const e = this.entries.get(t.name);
    if (e?.deleted !== undefined && e.deleted >= (t.deleted ?? 0)) return;
    const prev = boundLineage(t.prev ?? [], t.cid);
    this.set({ name: t.name, cid: t.cid, mtime: t.mtime, size: t.size, deleted: t.deleted!, agreed: t.cid, ...(prev.length ? { prev } : {}) });
  }

  /** A file sync fetched: live, agreed on, with the lineage its holder gave it (`prev`) and its maker (absent from an older build's entry). */
  fetched(name: string, cid: string, mtime: number, size: number, prev?: string[], maker?: string): void {
    // (each version once: the holder's lineage often names what it agreed on twice, and a bound of a few must not lose an older one to that)
    const p = boundLineage(prev ?? [], cid);
    this.set({ name, cid, mtime, size, agreed: cid, ...(p.length ? { prev: p } : {}), ...(isDeviceId(maker) ? { maker } : {}) });
  }

  private changed(name: string | null): void {
    this.version++;
    if (name !== null) this.seqOf.set(name, this.version);
    this.dirty = true;
    for (const fn of this.listeners) fn();
  }

  /** Write the index soon: one write for a burst of changes (the file holds every entry). */
  saveSoon(): void {
    if (this.saveTimer || !this.dirty) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      void this.save();
    }, SAVE_DELAY_MS);
    this.saveTimer.unref();
  }

  /** Write the index now if it changed (one write per call, however many changes). */
  save(): Promise<void> {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    // a landing record is needed no more once a save holds what its fetch recorded, or once its
    // fetch ended without landing (its name no longer busy: no rename is coming)
    const ended = this.landing.entries().filter(([name]) => !this.busy.has(name));
    const forget = (): void => this.landing.forget(ended);
    if (!this.dirty) {
      if (ended.length) this.saving = this.saving.then(forget).catch(() => {});
      return this.saving;
    }
    this.dirty = false;
    // (the devices of live files only: a name deleted or forgotten since needs none)
    for (const name of this.devices.keys()) if (this.entries.get(name)?.deleted !== undefined || !this.entries.has(name)) this.devices.delete(name);
    const data = JSON.stringify({ format: FORMAT, entries: this.all(), ...(this.devices.size ? { devices: [...this.devices] } : {}) });
    this.saving = this.saving
      .then(() => writeFileAtomic(this.file, data, false))
      .then(forget)
      .catch(() => {});
    return this.saving;
  }
}
