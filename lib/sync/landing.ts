/**
 * Where fetched, replaced and deleted files go in a synced folder: small files land in batches
 * (small.ts: verified, a temp file each, one durability barrier per batch, then renames); the
 * version a fetch replaces goes to DIR/.swarm/trash/, or (a conflict we lost) stays beside it as
 * NAME.sync-conflict-YYYYMMDD-HHMMSS-DEVICEID.EXT (conflict-copy.ts); a deleted file is moved to the trash, and the
 * folders a deletion emptied (here or on a peer) go. The trash is emptied of files older than
 * `trashDays`. Nothing a user wrote is lost silently.
 *
 *   fetched small file ─► stage (temp file) ─► batch (BATCH_FILES / BATCH_BYTES / BATCH_MAX_WAIT_MS,
 *   or nothing else coming) ─► commit: one barrier, renames ─► index and library follow
 */
import { constants as fsConstants, lstatSync } from 'node:fs';
import { copyFile, link, lstat, mkdir, realpath, rename, readdir, rmdir, stat, unlink } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { STATE_DIR_NAME } from '../constants.js';
import { ERROR_CODES, fromWire } from '../errors.js';
import type { Library } from '../share/library.js';
import type { SyncIndex } from './index-store.js';
import { landingEntry } from './landing-record.js';
import { keepAsCopy } from './conflict-copy.js';
import { lineage, type SyncEntry } from './plan.js';
import { Lander, type Staged } from './lander.js';
import { chunkBytesFor } from '../chunking.js';
import type { Manifest } from '../manifest.js';
import { InlineChunkPool, type ChunkPool } from '../pool.js';
import type { StageFile } from '../stage-files.js';
import type { Ticket } from './tickets.js';

/** Files verified and staged by one pool task at most, and their bytes (a task is sent sooner when the socket reads pause). */
const STAGE_TASK_FILES = 64;
const STAGE_TASK_BYTES = 4 << 20;

/** Cores from which small files are staged on the chunk pool's threads (see Landing.stagePool). */
const STAGE_POOL_MIN_CORES = 3;

/** A file fetched, waiting for its stage task. */
interface ToStage {
  t: Ticket;
  data: Buffer;
  done: (v: true | null) => void;
  fail: (e: unknown) => void;
}

/** A batch lands when it holds this many files or bytes, or when nothing more is coming. */
const BATCH_FILES = 256;
const BATCH_BYTES = 16 << 20;
/** ...or at the latest this long after its first file was verified. */
const BATCH_MAX_WAIT_MS = 150;
/** The trash is looked through for expired files at most this often. */
const TRASH_SWEEP_MS = 60_000;

export interface LandingHost {
  readonly library: Library;
  /** Where small files are verified and staged, a batch per task (stage-files.ts). */
  readonly pool: ChunkPool;
  /** Stage on the pool's threads whatever the cores (tests), or not; default: see Landing.stagePool. */
  readonly stageOnPool?: boolean;
  readonly index: SyncIndex;
  /** This folder's device id (device-id.ts): names the conflict copies of versions whose maker is not known. */
  readonly deviceId: string;
  readonly trashDays: number;
  /** Small files being fetched or staged (the syncer's count): a batch waits only while some are fetched. */
  smallActive(): number;
  /** A conflict we lost: ours kept as `copy`; `here`, ours was made here; `ours`, `theirs`: the two content ids; `oursBy`, `theirsBy`: their makers' device ids, where known. */
  conflict(e: { name: string; copy: string; here: boolean; ours: string; theirs: string; oursBy?: string; theirsBy?: string }): void;
  fetched(t: Ticket, size: number, from: number): void;
  failed(t: Ticket, err: unknown): void;
  /** The ticket is still the one queued for its name (not done already). */
  current(t: Ticket): boolean;
  /** A batch is done (landed or failed): its tickets end. */
  batchDone(tickets: Ticket[]): void;
  warn(message: string, info: { code?: string; name?: string; peer?: string }): void;
}

export class Landing {
  readonly lander: Lander;
  private staged: Staged[] = [];
  private stagedBytes = 0;
  private stagedTickets = new Map<string, Ticket>();
  private batchTimer: NodeJS.Timeout | null = null;
  /** Files fetched and waiting for their stage task (sent when full, or once this burst of reads is over). */
  private toStage: ToStage[] = [];
  private toStageBytes = 0;
  private stageSoon: NodeJS.Immediate | null = null;
  /** Stage tasks sent and not yet answered: close() waits for them (their files land before it returns). */
  private readonly stageTasks = new Set<Promise<void>>();
  private landing: Promise<void> = Promise.resolve();
  /** Files in the batch landing now. */
  private landingCount = 0;
  private lastSweep = 0;

  /**
   * Where small files are verified and staged: the node's chunk pool on a machine with more than
   * STAGE_POOL_MIN_CORES - 1 cores, else the main thread. Measured on 2 cores (10,000 files of
   * 1-64 KiB, both sides on the machine): 2.29-2.62 s on the main thread against 2.58-2.68 with
   * 2 pool threads and 2.82-3.28 with one (the hand-off costs ~0.4-0.8 CPU s, and no core is
   * spare to win it back).
   */
  private readonly stagePool: ChunkPool;

  constructor(private readonly host: LandingHost) {
    this.lander = new Lander(host.library.root);
    this.stagePool = host.pool.threads > 0 && (host.stageOnPool ?? availableParallelism() >= STAGE_POOL_MIN_CORES) ? host.pool : new InlineChunkPool();
  }

  private get root(): string {
    return this.host.library.root;
  }

  /** What sync does with the version a fetched file replaces, just before it lands (undefined: nothing there to keep). */
  replacing(t: Ticket): Promise<void> | undefined {
    const local = this.host.index.get(t.name);
    if (!local || local.deleted !== undefined) {
      // a file the index does not know (made or moved here since the library's last look, or a
      // conflict copy made at this name meanwhile) is never replaced unkept: to the trash (hostile review 52)
      const st = lstatSync(path.join(this.root, ...t.name.split('/')), { throwIfNoEntry: false });
      if (!st?.isFile()) return undefined;
      return this.toTrash(t.name, path.join(this.root, ...t.name.split('/')), true).then((kept) => {
        t.replaced = kept;
      });
    }
    return this.keep(t, local);
  }

  private async keep(t: Ticket, local: SyncEntry): Promise<void> {
    const file = path.join(this.root, ...t.name.split('/'));
    if (t.conflict) {
      // ours lost: it stays, under the conflict name of its maker (a new file every peer will
      // fetch; conflict-copy.ts). Already there, the same (another member lost the same version,
      // and its copy came first): kept, and this file goes as for any fetch (the trash holds it too)
      const { copy, made } = await keepAsCopy(this.host, t.name, local);
      if (!made) await this.toTrash(t.name, file, true);
      // ours was made here (edited, or new), or fetched from the member that made it: then two
      // others edited the file, and this member only had one of the two
      this.host.conflict({
        name: t.name,
        copy,
        here: this.host.index.madeHere(t.name),
        ours: local.cid,
        theirs: t.remote.cid,
        ...(local.maker ? { oursBy: local.maker } : {}),
        ...(t.remote.maker ? { theirsBy: t.remote.maker } : {}),
      });
    } else {
      t.replaced = await this.toTrash(t.name, file, true);
    }
  }

  /**
   * A peer deleted it: the file moves to the trash. Not through a symlinked folder: what is there
   * is outside the share (not shared, README), and a stale entry must not delete it. True once it
   * is in the trash (or was gone), false when it was left alone.
   */
  async delete(name: string): Promise<boolean> {
    let done = true;
    if ((await this.folderState(path.dirname(name))) === 'elsewhere') {
      done = false;
      this.host.warn(`${name}: a peer deleted it, but its folder here leads outside the share (a symlink): left alone`, { code: ERROR_CODES.PATH_ESCAPE, name });
    } else {
      await this.toTrash(name, path.join(this.root, ...name.split('/')), false);
      await this.removeEmptied([name]);
    }
    // gone from what we serve and count now, not at the library's next look
    this.host.library.removedHere(name);
    return done;
  }

  /**
   * Only files are synced, so a folder is there while it holds one: the folders that deleting
   * `names` left empty go, on every member that takes the deletion and (after a grace, below) on
   * the one that deleted them (README: folders follow their files), so the members end alike.
   * rmdir refuses a folder with anything left in it (a file not shared, a temp file of a fetch),
   * so nothing else is touched; one already gone (`rm -r`) is passed. Never a mount point (its
   * device is not its parent's: an unmounted disk's empty mount point stays for the next mount),
   * nor a folder reached through a symlink. `untouchedMs`: a folder changed more recently than
   * that stays (a user refilling it: `rm out/*.o; cc -o out/x.o` found its folder gone when sync
   * removed it at once, hostile review 47).
   */
  async removeEmptied(names: string[], o: { untouchedMs?: number } = {}): Promise<void> {
    for (const name of names) {
      for (let d = path.dirname(name); d !== '.' && d !== ''; d = path.dirname(d)) {
        // never through a symlink: a folder outside the share is not ours to remove (hostile review 47)
        const state = await this.folderState(d);
        if (state === 'gone') continue;
        if (state === 'elsewhere') break;
        const dir = path.join(this.root, ...d.split('/'));
        const [st, up] = await Promise.all([lstat(dir).catch(() => null), lstat(path.dirname(dir)).catch(() => null)]);
        if (!st || !up || st.dev !== up.dev) break;
        if (o.untouchedMs !== undefined && Date.now() - st.mtimeMs < o.untouchedMs) break;
        const err = await rmdir(dir).then(() => null, (e: NodeJS.ErrnoException) => e);
        // a small file staged next in this folder makes it again (the lander took it for there)
        if (!err) this.lander.forgetDirs();
        if (err && err.code !== 'ENOENT') break;
      }
    }
  }

  /** Folder `d` of the share ('.' the top): there, reached through no symlink ('plain'), gone, or reached through a symlink or unreadable ('elsewhere'). */
  private async folderState(d: string): Promise<'plain' | 'gone' | 'elsewhere'> {
    const realRoot = this.host.library.realRoot || (await realpath(this.root));
    const parts = d === '.' || d === '' ? [] : d.split('/');
    const real = await realpath(path.join(this.root, ...parts)).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? 'gone' : null));
    if (real === 'gone') return 'gone';
    return real === path.join(realRoot, ...parts) ? 'plain' : 'elsewhere';
  }

  /** A small file verified and in its temp file: into the next batch. */
  private add(t: Ticket, staged: Staged): void {
    this.staged.push(staged);
    this.stagedBytes += staged.manifest.size;
    this.stagedTickets.set(t.name, t);
    this.batchSoon();
  }

  /**
   * A small file's bytes, not yet verified (small.ts Pipe.fetch's `verify`): checked against its
   * content id and written to a temp file on the chunk pool, with the others of its burst (one
   * task for up to STAGE_TASK_FILES), then into the next batch. true once staged; null when the
   * bytes are not that content (nothing written). `data` is moved to the pool: not used after.
   */
  verifyAndStage(t: Ticket, data: Buffer): Promise<true | null> {
    return new Promise((done, fail) => {
      this.toStage.push({ t, data, done, fail });
      this.toStageBytes += data.length;
      if (this.toStage.length >= STAGE_TASK_FILES || this.toStageBytes >= STAGE_TASK_BYTES) this.stageTask();
      // the rest of this burst of socket reads first, then one task for all of it
      else this.stageSoon ??= setImmediate(() => this.stageTask());
    });
  }

  private stageTask(): void {
    if (this.stageSoon) clearImmediate(this.stageSoon);
    this.stageSoon = null;
    const all = this.toStage;
    this.toStage = [];
    this.toStageBytes = 0;
    const items: ToStage[] = [];
    const files: StageFile[] = [];
    for (const x of all) {
      try {
        files.push({ tmp: this.lander.tempFor(x.t.name), cid: x.t.remote.cid, mtimeSec: x.t.remote.mtime });
        items.push(x);
      } catch (err) {
        x.fail(err);
      }
    }
    if (!items.length) return;
    const task: Promise<void> = this.stagePool.stageFiles({ files, bytes: items.map((x) => x.data) }).then(
      (results) =>
        results.forEach((r, i) => {
          const { t, done, fail } = items[i]!;
          if (!r.ok && r.mismatch) return done(null);
          // verified against this very id: the manifest is the one-chunk manifest of that id
          const size = r.ok ? r.size : r.bytes.length;
          const manifest: Manifest = { cid: t.remote.cid, size, chunkBytes: chunkBytesFor(size), hashes: Buffer.from(r.hash) };
          const before = () => this.replacing(t);
          try {
            if (r.ok) this.add(t, { name: t.name, manifest, tmp: files[i]!.tmp, fd: r.fd, before, st: { size: r.size, mtimeMs: r.mtimeMs, dev: r.dev, ino: r.ino } });
            // verified, but no temp file there: the folder went since it was checked (a deletion
            // emptied it): staged here, which makes it again
            else if (r.errno === 'ENOENT') this.add(t, this.lander.stage(t.name, r.bytes, manifest, t.remote.mtime, before));
            else throw fromWire(r.error);
            done(true);
          } catch (err) {
            fail(err);
          }
        }),
      (err) => {
        for (const x of items) x.fail(err);
      },
    ).finally(() => this.stageTasks.delete(task));
    this.stageTasks.add(task);
  }

  /** A small fetch failed: what is staged need not wait for it. */
  fetchFailed(): void {
    if (this.staged.length) this.batchSoon();
  }

  /** Land the staged files when the batch is full, when nothing more is coming, or soon anyway. */
  private batchSoon(): void {
    const fetching = this.host.smallActive() - this.staged.length - this.landingCount;
    if (this.staged.length >= BATCH_FILES || this.stagedBytes >= BATCH_BYTES || fetching <= 0) {
      this.landBatch();
      return;
    }
    this.batchTimer ??= setTimeout(() => this.landBatch(), BATCH_MAX_WAIT_MS);
  }

  private landBatch(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = null;
    if (this.staged.length === 0) return;
    const batch = this.staged;
    const tickets = this.stagedTickets;
    this.staged = [];
    this.stagedBytes = 0;
    this.stagedTickets = new Map();
    // one batch lands at a time; the next one fills meanwhile
    this.landingCount += batch.length;
    this.landing = this.landing.then(async () => {
      const lib = this.host.library;
      try {
        // what the index will record, kept until it is saved (a kill -9 right after the renames:
        // the files are taken at restart as fetched, not as edits made here; index-store.ts)
        this.host.index.willLand(batch.flatMap((l) => landingEntry(l.name, tickets.get(l.name)!.remote)));
        const { landed, failed } = await this.lander.commit(batch, (l) => lib.landing(l.name, l.st));
        for (const l of landed) {
          const r = tickets.get(l.name)!.remote;
          this.host.index.fetched(l.name, l.manifest.cid, r.mtime, l.manifest.size, lineage(r), r.maker);
        }
        // served before it is announced: the library takes them as they are (no rescan, no hash)
        lib.adoptMany(landed);
        for (const l of landed) this.host.fetched(tickets.get(l.name)!, l.manifest.size, 1);
        for (const f of failed) this.host.failed(tickets.get(f.name)!, f.err);
      } catch (err) {
        for (const t of tickets.values()) if (this.host.current(t)) this.host.failed(t, err);
      } finally {
        this.landingCount -= batch.length;
      }
      this.host.batchDone([...tickets.values()]);
      // files verified meanwhile wait for nothing more if nothing else is coming
      if (this.staged.length) this.batchSoon();
    });
  }

  /** Keep what sync replaces or deletes: linked (or moved) into DIR/.swarm/trash/. */
  /** `file` (share name `name`) into the trash: true once a copy of it is there. */
  private async toTrash(name: string, file: string, keepInPlace: boolean): Promise<boolean> {
    const st = await stat(file).catch(() => null);
    if (!st?.isFile()) return false;
    const trash = path.join(this.root, STATE_DIR_NAME, 'trash');
    await mkdir(trash, { recursive: true });
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    // a name of its own: two versions trashed in one second (or `a/b` and `a__b`) must not replace
    // each other; a hard link never replaces anything, so a taken name is told atomically
    const flat = name.replace(/\//g, '__');
    for (let n = 1; ; n++) {
      const dest = path.join(trash, `${stamp}${n > 1 ? `.${n}` : ''}-${flat}`);
      const err = await link(file, dest).then(() => null, (e: NodeJS.ErrnoException) => e);
      if (err?.code === 'EEXIST' && n < 1000) continue;
      if (!err) {
        if (!keepInPlace) await unlink(file);
      } else if (!keepInPlace) {
        // no hard links here (another file system, a mount that refuses them): moved, as before
        await rename(file, dest);
      } else {
        // ... and the file stays where it is until the new version replaces it: a copy (without
        // it the replaced version was lost on such a file system)
        await copyFile(file, dest, fsConstants.COPYFILE_EXCL);
      }
      break;
    }
    if (Date.now() - this.lastSweep > TRASH_SWEEP_MS) {
      this.lastSweep = Date.now();
      await this.emptyTrash(trash);
    }
    return true;
  }

  private async emptyTrash(trash: string): Promise<void> {
    const before = Date.now() - this.host.trashDays * 86_400_000;
    for (const f of await readdir(trash).catch(() => [] as string[])) {
      const p = path.join(trash, f);
      const st = await stat(p).catch(() => null);
      if (st && st.ctimeMs < before) await unlink(p).catch(() => {});
    }
  }

  /** What was verified lands (it is durable once it does). */
  async close(): Promise<void> {
    // files fetched and verified-or-staging now land too (none after close returns: the index is
    // saved and the folder's lock released right after)
    if (this.toStage.length) this.stageTask();
    while (this.stageTasks.size) await Promise.allSettled([...this.stageTasks]);
    this.landBatch();
    await this.landing.catch(() => {});
  }
}
