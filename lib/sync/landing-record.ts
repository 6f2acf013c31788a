/**
 * The record of fetched versions about to take their names (DIR/.swarm/sync-landing.ndjson), for
 * the sync index (index-store.ts). A file sync fetched takes its name by a rename (a big file's
 * part file, or a batch of small ones), and the index is told after it and saved up to a second
 * later. Killed in between, the restarted index saw a file it did not know and took it for an
 * edit made here: this folder its maker, the version it replaced in its lineage. So what the index
 * will record is appended here first, a line per file, and kept until an index save holds it; at
 * start, a file found at that name with that content and mtime is taken as fetched.
 *
 * Appended on the calling thread through one open descriptor, one write a batch (tens of
 * microseconds): through the thread pool it queued behind the batch's own writes and fsyncs,
 * ~14 ms a batch, and held the batch.
 */
import { closeSync, ftruncateSync, openSync, rmSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { STATE_DIR_NAME } from '../constants.js';
import { isLegacyCid } from '../protocol/entries.js';
import { boundLineage, isLineage, lineage, type SyncEntry } from './plan.js';
import { isDeviceId } from './device-id.js';

const FILE = 'sync-landing.ndjson';

/** What the record keeps for `name` fetched as `remote` (a stock peer's version has no lineage to keep: none). */
export function landingEntry(name: string, remote: SyncEntry): SyncEntry[] {
  if (isLegacyCid(remote.cid)) return [];
  const prev = boundLineage(lineage(remote), remote.cid);
  return [{ name, cid: remote.cid, mtime: remote.mtime, size: remote.size, ...(prev.length ? { prev } : {}), ...(remote.maker ? { maker: remote.maker } : {}) }];
}

export class LandingRecord {
  private readonly byName = new Map<string, SyncEntry>();
  /** The file, open for appending while it exists. */
  private fd: number | null = null;

  constructor(private readonly root: string) {}

  private get file(): string {
    return path.join(this.root, STATE_DIR_NAME, FILE);
  }

  /** What a run killed before its index save left (a line cut by the kill is left out). */
  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return;
    }
    for (const line of text.split('\n')) {
      let e: SyncEntry;
      try {
        e = JSON.parse(line) as SyncEntry;
      } catch {
        continue;
      }
      if (!e || typeof e.name !== 'string' || typeof e.cid !== 'string' || typeof e.mtime !== 'number' || typeof e.size !== 'number' || e.deleted !== undefined) continue;
      if (e.prev !== undefined && !isLineage(e.prev)) delete e.prev;
      if (e.maker !== undefined && !isDeviceId(e.maker)) delete e.maker;
      this.byName.set(e.name, e);
    }
  }

  get(name: string): SyncEntry | undefined {
    return this.byName.get(name);
  }

  entries(): [string, SyncEntry][] {
    return [...this.byName];
  }

  /** On disk before this returns (throws if it cannot be written: the landing then waits). */
  add(es: SyncEntry[]): void {
    if (es.length === 0) return;
    for (const e of es) this.byName.set(e.name, e);
    this.fd ??= openSync(this.file, 'a');
    writeSync(this.fd, es.map((e) => JSON.stringify(e) + '\n').join(''));
  }

  /** A save holds these (or their fetch ended without a rename): the file keeps the rest, or goes. */
  forget(ended: [string, SyncEntry][]): void {
    if (ended.length === 0) return;
    for (const [name, e] of ended) if (this.byName.get(name) === e) this.byName.delete(name);
    try {
      if (this.byName.size === 0) {
        if (this.fd !== null) closeSync(this.fd);
        this.fd = null;
        rmSync(this.file, { force: true });
        return;
      }
      this.fd ??= openSync(this.file, 'a');
      ftruncateSync(this.fd, 0);
      writeSync(this.fd, [...this.byName.values()].map((e) => JSON.stringify(e) + '\n').join(''));
    } catch {
      // kept in memory; the next save tries again
    }
  }
}
