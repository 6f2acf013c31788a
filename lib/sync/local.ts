/**
 * The sync index follows the local folder: what the library hashed (new, changed) and what it no
 * longer has. A file still being written (its mtime younger than STABLE_MS) is announced only once
 * its stat held still for STABLE_MS: peers never fetch a half-written version.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Library } from '../share/library.js';
import type { FileInfo } from '../types.js';
import type { SyncIndex } from './index-store.js';

/** A local file whose mtime is younger than this is announced once its stat held still this long. */
export const STABLE_MS = 300;

export class LocalFollower {
  /** Local files waiting to be seen stable before the index follows them. */
  private readonly settling = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly lib: Library,
    private readonly index: SyncIndex,
  ) {}

  /** Files not yet announced because they may still be being written. */
  get settlingCount(): number {
    return this.settling.size;
  }

  /** Follow every file now, then every change the library sees. */
  start(): void {
    const lib = this.lib;
    this.follow(lib.files(), null);
    lib.on('change', (diff) => {
      const files: FileInfo[] = [];
      for (const n of [...diff.added, ...diff.changed]) {
        const f = lib.stat(n);
        if (f) files.push(f);
      }
      this.follow(files, diff.removed);
    });
  }

  /**
   * The index follows the share: files (all of them when `removed` is null, at start) and
   * removals. A file modified in the last STABLE_MS may still be being written: it waits until its
   * stat held still that long (then the library's version is the file's).
   */
  private follow(files: FileInfo[], removed: string[] | null): void {
    const now = Date.now();
    const ready: FileInfo[] = [];
    for (const f of files) {
      const st = this.lib.statOf(f.name);
      const e = this.index.get(f.name);
      if (e && e.deleted === undefined && e.cid === f.cid && e.mtime === f.mtime) continue;
      if (st && (now - st.mtimeMs < STABLE_MS || now < st.mtimeMs)) this.settle(f.name, st.mtimeMs);
      else ready.push(f);
    }
    // (at start, a file still settling is not taken for deleted: it exists)
    if (removed === null) this.index.follow(ready, null);
    else this.index.followSome(ready, removed);
    this.index.saveSoon();
  }

  /** Look at `name` again once STABLE_MS passed without its stat moving; follow it then. */
  private settle(name: string, mtimeMs: number): void {
    const old = this.settling.get(name);
    if (old) clearTimeout(old);
    const wait = Math.max(STABLE_MS, mtimeMs - Date.now() + STABLE_MS);
    const t = setTimeout(() => {
      this.settling.delete(name);
      if (this.closed) return;
      const lib = this.lib;
      const known = lib.statOf(name);
      const f = lib.stat(name);
      if (!known || !f) return; // gone meanwhile: the library says so
      void stat(path.join(lib.root, ...name.split('/')))
        .then((now) => {
          if (this.closed) return;
          // still what the library hashed, for STABLE_MS: stable. Otherwise the library hashes the
          // new version (its watch, or its next walk) and we come back here with it
          if (now.size === known.size && now.mtimeMs === known.mtimeMs && now.ino === known.ino && Date.now() - now.mtimeMs >= STABLE_MS) {
            if (lib.stat(name)?.cid === f.cid) {
              this.index.followSome([f], []);
              this.index.saveSoon();
            }
          } else if (Date.now() - now.mtimeMs < STABLE_MS) this.settle(name, now.mtimeMs);
        })
        .catch(() => {});
    }, Math.min(wait, 60_000));
    t.unref();
    this.settling.set(name, t);
  }

  close(): void {
    this.closed = true;
    for (const t of this.settling.values()) clearTimeout(t);
    this.settling.clear();
  }
}
