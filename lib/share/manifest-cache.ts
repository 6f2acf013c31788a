/**
 * On-disk cache of manifests, so a restart hashes only files whose size, mtime or inode changed.
 * One file (default `<share>/.swarm/manifests.json`): a first line with the xxhash64 of the rest,
 * then JSON keyed by name, each entry stamped with the stat it was computed for. Written
 * atomically. A damaged cache (checksum mismatch, bad JSON) or one from an older swarm (version 1:
 * xxhash64 chunk hashes) is ignored, and `load` says so, so the caller can tell the user why
 * everything is hashed again.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../storage/atomic.js';
import { loadLocalChecksum } from '../hashing.js';
import { makeManifest, type Manifest } from '../manifest.js';
import type { FileStat } from './scanner.js';

interface CacheEntry {
  size: number;
  mtimeMs: number;
  dev: number;
  ino: number;
  chunkBytes: number;
  /** Chunk hashes, base64. */
  hashes: string;
  cid: string;
  /** Packet payload sums (chunk-tasks.ts hashRangeWithSums), little-endian u16, base64; absent for adopted files. */
  sums?: string;
}

const VERSION = 2;

export type CacheLoad = 'ok' | 'missing' | 'old-format' | 'damaged';

export class ManifestCache {
  private entries = new Map<string, CacheEntry>();
  private dirty = false;

  constructor(private readonly file: string) {}

  static inStateDir(stateDir: string): ManifestCache {
    return new ManifestCache(path.join(stateDir, 'manifests.json'));
  }

  async load(): Promise<CacheLoad> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return 'missing';
    }
    const nl = text.indexOf('\n');
    const sum = await loadLocalChecksum();
    if (nl !== 16 || sum(text.slice(nl + 1)) !== text.slice(0, nl)) {
      return text.startsWith('{"version":1') ? 'old-format' : 'damaged';
    }
    try {
      const raw = JSON.parse(text.slice(nl + 1)) as { version?: number; files?: Record<string, CacheEntry> };
      if (raw.version !== VERSION || !raw.files) return 'old-format';
      for (const [name, e] of Object.entries(raw.files)) {
        if (typeof e?.cid === 'string' && typeof e.hashes === 'string') this.entries.set(name, e);
      }
      return 'ok';
    } catch {
      return 'damaged';
    }
  }

  /** The cached manifest of `name` if it was computed for exactly this stat, and still adds up. */
  get(name: string, st: FileStat): Manifest | undefined {
    const e = this.entries.get(name);
    if (!e || e.size !== st.size || e.mtimeMs !== st.mtimeMs || e.ino !== st.ino || e.dev !== st.dev) return undefined;
    const m = makeManifest(e.size, e.chunkBytes, Buffer.from(e.hashes, 'base64'));
    return m.cid === e.cid ? m : undefined;
  }

  /** The packet payload sums cached with `name`'s manifest, if any, for exactly this stat. */
  sumsOf(name: string, st: FileStat): Uint16Array | undefined {
    const e = this.entries.get(name);
    if (!e?.sums || e.size !== st.size || e.mtimeMs !== st.mtimeMs || e.ino !== st.ino || e.dev !== st.dev) return undefined;
    const b = Buffer.from(e.sums, 'base64');
    if (b.length % 2) return undefined;
    const out = new Uint16Array(b.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = b.readUInt16LE(i * 2);
    return out;
  }

  set(name: string, st: FileStat, m: Manifest, sums?: Uint16Array): void {
    let packed: string | undefined;
    if (sums) {
      const b = Buffer.allocUnsafe(sums.length * 2);
      for (let i = 0; i < sums.length; i++) b.writeUInt16LE(sums[i]!, i * 2);
      packed = b.toString('base64');
    }
    this.entries.set(name, { size: st.size, mtimeMs: st.mtimeMs, dev: st.dev, ino: st.ino, chunkBytes: m.chunkBytes, hashes: m.hashes.toString('base64'), cid: m.cid, ...(packed ? { sums: packed } : {}) });
    this.dirty = true;
  }

  delete(name: string): void {
    if (this.entries.delete(name)) this.dirty = true;
  }

  async save(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    // the state folder only, never the share's folder: one moved away (`mv DIR DIR.old`) was made
    // again here, and the user's `mv DIR.old DIR` then landed inside it (hostile review 47)
    const made = await mkdir(path.dirname(this.file)).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST') return true;
        if (err.code === 'ENOENT') return false;
        throw err;
      },
    );
    if (!made) {
      this.dirty = true; // the share's folder is gone: saved once it is back
      return;
    }
    const json = JSON.stringify({ version: VERSION, files: Object.fromEntries(this.entries) });
    const sum = await loadLocalChecksum();
    await writeFileAtomic(this.file, `${sum(json)}\n${json}`);
  }
}
