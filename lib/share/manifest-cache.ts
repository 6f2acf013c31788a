/**
 * On-disk cache of manifests, so a restart hashes only files whose size or mtime changed.
 * One JSON file (default `<share>/.swarm/manifests.json`), keyed by name, each entry stamped with
 * the size and mtime (ms) it was computed for. Written atomically; a damaged cache is ignored.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../storage/atomic.js';
import type { Manifest } from '../types.js';
import type { FileStat } from './scanner.js';

interface CacheEntry {
  size: number;
  mtimeMs: number;
  chunkBytes: number;
  hashes: string[];
  cid: string;
}

const VERSION = 1;

export class ManifestCache {
  private entries = new Map<string, CacheEntry>();
  private dirty = false;

  constructor(private readonly file: string) {}

  static inStateDir(stateDir: string): ManifestCache {
    return new ManifestCache(path.join(stateDir, 'manifests.json'));
  }

  async load(): Promise<void> {
    try {
      const raw = JSON.parse(await readFile(this.file, 'utf8')) as { version?: number; files?: Record<string, CacheEntry> };
      if (raw.version !== VERSION || !raw.files) return;
      for (const [name, e] of Object.entries(raw.files)) {
        if (typeof e?.cid === 'string' && Array.isArray(e.hashes)) this.entries.set(name, e);
      }
    } catch {
      // missing or damaged: start empty, everything gets hashed
    }
  }

  get(name: string, st: FileStat): Manifest | undefined {
    const e = this.entries.get(name);
    if (!e || e.size !== st.size || e.mtimeMs !== st.mtimeMs) return undefined;
    return { name, size: e.size, mtime: Math.floor(e.mtimeMs / 1000), chunkBytes: e.chunkBytes, hashes: e.hashes, cid: e.cid };
  }

  set(name: string, st: FileStat, m: Manifest): void {
    this.entries.set(name, { size: st.size, mtimeMs: st.mtimeMs, chunkBytes: m.chunkBytes, hashes: m.hashes, cid: m.cid });
    this.dirty = true;
  }

  delete(name: string): void {
    if (this.entries.delete(name)) this.dirty = true;
  }

  async save(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    await mkdir(path.dirname(this.file), { recursive: true });
    await writeFileAtomic(this.file, JSON.stringify({ version: VERSION, files: Object.fromEntries(this.entries) }));
  }
}
