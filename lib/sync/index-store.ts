/**
 * The sync index of one folder: every name with its current version (content id, mtime, size),
 * the version last agreed on with the swarm, and deletions (tombstones with the deleted content id
 * and when), so a deleted file does not come back from a peer that missed the deletion. It follows
 * the share's library (a file that disappears becomes a tombstone, unless sync itself is replacing
 * it) and is saved in DIR/.swarm/sync-index.json, written atomically after each batch of changes.
 * Tombstones older than `keepDeletedDays` are forgotten.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../storage/atomic.js';
import { STATE_DIR_NAME } from '../constants.js';
import type { FileInfo } from '../types.js';
import type { SyncEntry } from './plan.js';

const FILE = 'sync-index.json';
const FORMAT = 1;
/** Entries per page when a peer asks for the index. */
export const SYNC_PAGE_ENTRIES = 1000;

export class SyncIndex {
  private readonly entries = new Map<string, SyncEntry>();
  /** Names sync is replacing or moving right now: their disappearance is not a deletion. */
  readonly busy = new Set<string>();
  private saving: Promise<void> = Promise.resolve();
  private dirty = false;
  /** Bumped on every change (peers watching are told). */
  version = 0;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly root: string,
    private readonly keepDeletedDays = 30,
  ) {}

  get file(): string {
    return path.join(this.root, STATE_DIR_NAME, FILE);
  }

  async load(): Promise<void> {
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(this.file, 'utf8'));
    } catch {
      return; // none yet, or damaged: rebuilt from the share (tombstones are then lost, not files)
    }
    const r = raw as { format?: number; entries?: unknown };
    if (r.format !== FORMAT || !Array.isArray(r.entries)) return;
    for (const e of r.entries as SyncEntry[]) {
      if (e && typeof e.name === 'string' && typeof e.cid === 'string' && typeof e.mtime === 'number') this.entries.set(e.name, e);
    }
  }

  get(name: string): SyncEntry | undefined {
    return this.entries.get(name);
  }

  all(): SyncEntry[] {
    return [...this.entries.values()];
  }

  /** A page of entries in name order after `after`. */
  page(after: string | undefined, limit = SYNC_PAGE_ENTRIES): { entries: SyncEntry[]; next?: string } {
    const names = [...this.entries.keys()].filter((n) => after === undefined || n > after).sort();
    const cut = names.slice(0, limit);
    const entries = cut.map((n) => this.entries.get(n)!);
    return names.length > limit ? { entries, next: cut[cut.length - 1]! } : { entries };
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
    let changed = false;
    const present = new Set<string>();
    for (const f of files) {
      present.add(f.name);
      const e = this.entries.get(f.name);
      if (e && e.deleted === undefined && e.cid === f.cid && e.mtime === f.mtime) continue;
      this.entries.set(f.name, { name: f.name, cid: f.cid, mtime: f.mtime, size: f.size, ...(e?.agreed ? { agreed: e.agreed } : {}) });
      changed = true;
    }
    const gone = removed ? new Set(removed) : null;
    for (const e of this.entries.values()) {
      if (e.deleted !== undefined || present.has(e.name) || this.busy.has(e.name)) continue;
      if (gone && !gone.has(e.name)) continue;
      if (existsSync(path.join(this.root, ...e.name.split('/')))) continue;
      this.entries.set(e.name, { name: e.name, cid: e.cid, mtime: e.mtime, size: e.size, deleted: nowSec, ...(e.agreed ? { agreed: e.agreed } : {}) });
      changed = true;
    }
    const forgetBefore = nowSec - this.keepDeletedDays * 86_400;
    for (const e of [...this.entries.values()]) {
      if (e.deleted !== undefined && e.deleted < forgetBefore) {
        this.entries.delete(e.name);
        changed = true;
      }
    }
    if (changed) this.changed();
  }

  /** The version of `name` agreed on with the swarm (fetched, or seen the same elsewhere). */
  agree(name: string, cid: string): void {
    const e = this.entries.get(name);
    if (!e || e.agreed === cid) return;
    e.agreed = cid;
    this.changed();
  }

  /** A deletion learnt from a peer (nothing here to delete, or deleted here by sync). */
  rememberDeletion(t: SyncEntry): void {
    const e = this.entries.get(t.name);
    if (e?.deleted !== undefined && e.deleted >= (t.deleted ?? 0)) return;
    this.entries.set(t.name, { name: t.name, cid: t.cid, mtime: t.mtime, size: t.size, deleted: t.deleted!, agreed: t.cid });
    this.changed();
  }

  /** A file sync fetched: live, and agreed on. */
  fetched(name: string, cid: string, mtime: number, size: number): void {
    this.entries.set(name, { name, cid, mtime, size, agreed: cid });
    this.changed();
  }

  private changed(): void {
    this.version++;
    this.dirty = true;
    for (const fn of this.listeners) fn();
  }

  /** Write the index if it changed (one write per call, however many changes). */
  save(): Promise<void> {
    if (!this.dirty) return this.saving;
    this.dirty = false;
    const data = JSON.stringify({ format: FORMAT, entries: this.all() });
    this.saving = this.saving.then(() => writeFileAtomic(this.file, data, false)).catch(() => {});
    return this.saving;
  }
}
