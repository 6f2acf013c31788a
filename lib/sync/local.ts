/**
 * The sync index follows the local folder: what the library hashed (new, changed) and what it no
 * longer has. A file still being written (its mtime younger than STABLE_MS) is announced only once
 * its stat held still for STABLE_MS: peers never fetch a half-written version. A file rewritten
 * soon after each announcement must hold still longer each time (up to MAX_STABLE_MS).
 */
import { statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Library } from '../share/library.js';
import type { FileInfo } from '../types.js';
import type { SyncIndex } from './index-store.js';

/** A local file whose mtime is younger than this is announced once its stat held still this long. */
export const STABLE_MS = 300;
/**
 * A file changed again within REWRITTEN_WITHIN_MS of its last announcement is being written
 * slowly (a download, a log, an editor saving in steps): each time, the stillness it must show
 * doubles, up to MAX_STABLE_MS, so its receivers do not fetch (and trash) every step. A file left
 * alone that long starts again at STABLE_MS.
 */
export const REWRITTEN_WITHIN_MS = 10_000;
export const MAX_STABLE_MS = 10_000;
/** Files whose recent announcements are remembered at most (the oldest are forgotten first). */
const MAX_REMEMBERED = 10_000;

export class LocalFollower {
  /** Local files waiting to be seen stable before the index follows them. */
  private readonly settling = new Map<string, NodeJS.Timeout>();
  /** When a file was last announced, and the stillness it had to show (see REWRITTEN_WITHIN_MS). */
  private readonly announced = new Map<string, { at: number; quietMs: number }>();
  private closed = false;
  /** The share's folder as sync started on it (device, inode): removals are deletions only while it is still that folder. */
  private rootId: { dev: number; ino: number } | null = null;
  /** The folder was found moved, replaced or unmounted (told once until it is back). */
  private rootLost = false;
  /** Folders whose disk was found gone (told once each). */
  private readonly unmountedSaid = new Set<string>();
  /** The folder came back after it was lost: the share is being looked at again, then followed whole. */
  private returning: Promise<void> | null = null;

  constructor(
    private readonly lib: Library,
    private readonly index: SyncIndex,
    /** Files deleted here (by a person, not by sync), once per change the library saw: their deletions go to the others. */
    private readonly onDeletedHere: (names: string[]) => void = () => {},
    /** Files here that are not there and not deleted: the share's folder is not the one sync started on (moved away, replaced, unmounted), or a disk in it is gone. */
    private readonly warn: (message: string) => void = () => {},
    /** The share's folder is the one sync started on again, after warn said it was not: it is followed again. */
    private readonly onBack: (dir: string) => void = () => {},
  ) {}

  /** Files not yet announced because they may still be being written. */
  get settlingCount(): number {
    return this.settling.size;
  }

  /** Follow every file now, then every change the library sees. */
  start(): void {
    const lib = this.lib;
    const st = statSync(lib.realRoot || lib.root);
    this.rootId = { dev: st.dev, ino: st.ino };
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
    const start = removed === null;
    // the whole share gone at once (`mv DIR DIR.old`, `mv DIR DIR.old && mkdir DIR`, the disk
    // unmounted): the scan found nothing, or another folder, which is no deletion of the files
    // (hostile review 47: every member trashed every file, and the maker too once it was moved back).
    // Nor is what that other folder holds a change of ours (its files replaced ours on every
    // member), and what the library saw of ours meanwhile (through the watches that moved with
    // it) is seen again once it is back: the whole share is followed then (back())
    if (!this.sameRoot()) return;
    // at start (or once the folder is back): every live name the share lacks is a removal
    if (removed === null) {
      const here = new Set(files.map((f) => f.name));
      removed = this.index
        .all()
        .filter((e) => e.deleted === undefined && !here.has(e.name))
        .map((e) => e.name);
    }
    // a disk mounted in a subfolder and unmounted (while sync ran, or while it was stopped: the
    // devices are kept with the index): its files are not there, and not deleted either
    if (removed.length && this.index.onOtherDevices) removed = removed.filter((n) => !this.diskGone(n));
    const ready: FileInfo[] = [];
    for (const f of files) {
      const st = this.lib.statOf(f.name);
      this.index.setDevice(f.name, st && this.rootId && st.dev !== this.rootId.dev ? st.dev : undefined);
      const e = this.index.get(f.name);
      if (e && e.deleted === undefined && e.cid === f.cid && e.mtime === f.mtime) continue;
      if (st && (now - st.mtimeMs < this.quietMs(f.name, now) || now < st.mtimeMs)) this.settle(f.name, st.mtimeMs);
      else {
        ready.push(f);
        if (!start) this.announce(f.name, now);
      }
    }
    // (at start, a file still settling is not taken for deleted: it exists; one the index had
    // that is gone was deleted here while sync was stopped)
    const live = removed.filter((n) => this.index.get(n)?.deleted === undefined);
    if (start) this.index.follow(ready, removed);
    else this.index.followSome(ready, removed);
    const deleted = live.filter((n) => this.index.get(n)?.deleted !== undefined);
    if (deleted.length) this.onDeletedHere(deleted);
    this.index.saveSoon();
  }

  /**
   * Whether removed file `name` lived on a disk mounted in one of its folders that is gone now:
   * the nearest of its folders still there is on another device than the file was (the empty
   * mount point left by `umount` is on the parent's device). Such files are not deletions: an
   * unmounted disk sent the deletion of its every file to every member (hostile review 47).
   * Known for files seen on that disk, in this run or an earlier one (the index keeps the devices):
   * a disk unmounted while sync was stopped is no deletion either.
   */
  private diskGone(name: string): boolean {
    const dev = this.index.deviceOf(name);
    if (dev === undefined) return false;
    const root = this.lib.realRoot || this.lib.root;
    for (let d = path.dirname(name); ; d = path.dirname(d)) {
      const top = d === '.' || d === '';
      let st;
      try {
        st = statSync(top ? root : path.join(root, ...d.split('/')));
      } catch {
        if (!top) continue;
        return false;
      }
      if (st.dev === dev) {
        this.index.setDevice(name, undefined); // its disk is there: a real deletion
        return false;
      }
      if (!this.unmountedSaid.has(d)) {
        this.unmountedSaid.add(d);
        this.warn(`${top ? root : path.join(root, ...d.split('/'))}: the disk its files were on is not mounted there any more: they are not taken for deleted`);
      }
      return true;
    }
  }

  /** Whether the share's folder is still the one sync started on (as Syncthing's folder marker tells). */
  sameRoot(): boolean {
    const root = this.lib.realRoot || this.lib.root;
    let st;
    try {
      st = statSync(root);
    } catch {
      st = null;
    }
    const same = !this.rootId || (st !== null && st.dev === this.rootId.dev && st.ino === this.rootId.ino);
    if (!same && !this.rootLost) this.warn(`${root} is not the folder sync started on (moved, replaced or unmounted): nothing there is fetched, deleted or passed on; put the folder back, or stop sync`);
    const back = same && this.rootLost;
    this.rootLost = !same;
    if (back) {
      this.onBack(root);
      this.back();
    }
    return same;
  }

  /**
   * The folder is back: what changed in it while it was away (files added, edited, deleted: the
   * library's watches moved with it, and those changes were not followed then) is found as at a
   * start, once the library has looked at the whole folder again.
   */
  private back(): void {
    this.returning ??= this.lib
      .refresh()
      .catch(() => {})
      .then(() => {
        this.returning = null;
        if (this.closed || !this.sameRoot()) return; // lost again: followed when it is back
        this.follow(this.lib.files(), null);
      });
  }

  /** The stillness `name` must show before it is announced now (STABLE_MS, or more if rewritten lately). */
  private quietMs(name: string, now: number): number {
    const a = this.announced.get(name);
    if (!a || now - a.at > REWRITTEN_WITHIN_MS) return STABLE_MS;
    return Math.min(MAX_STABLE_MS, a.quietMs * 2);
  }

  /** `name` was announced at `now` (after the stillness quietMs asked). */
  private announce(name: string, now: number): void {
    const quietMs = this.quietMs(name, now);
    this.announced.delete(name);
    this.announced.set(name, { at: now, quietMs });
    if (this.announced.size > MAX_REMEMBERED) this.announced.delete(this.announced.keys().next().value!);
  }

  /** Look at `name` again once its stillness (quietMs) passed without its stat moving; follow it then. */
  private settle(name: string, mtimeMs: number): void {
    const old = this.settling.get(name);
    if (old) clearTimeout(old);
    const quiet = this.quietMs(name, Date.now());
    const wait = Math.max(quiet, mtimeMs - Date.now() + quiet);
    const t = setTimeout(() => {
      this.settling.delete(name);
      if (this.closed || !this.sameRoot()) return; // not our folder now: followed whole when it is back
      const lib = this.lib;
      const known = lib.statOf(name);
      const f = lib.stat(name);
      if (!known || !f) return; // gone meanwhile: the library says so
      void stat(path.join(lib.root, ...name.split('/')))
        .then((now) => {
          if (this.closed) return;
          // still what the library hashed, for STABLE_MS: stable. Otherwise the library hashes the
          // new version (its watch, or its next walk) and we come back here with it
          const quietNow = this.quietMs(name, Date.now());
          if (now.size === known.size && now.mtimeMs === known.mtimeMs && now.ino === known.ino && Date.now() - now.mtimeMs >= quietNow) {
            if (lib.stat(name)?.cid === f.cid) {
              this.index.followSome([f], []);
              this.announce(name, Date.now());
              this.index.saveSoon();
            }
          } else if (Date.now() - now.mtimeMs < quietNow) this.settle(name, now.mtimeMs);
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
