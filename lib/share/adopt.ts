/**
 * Adoption records: how a finished download hands its manifest to the share it landed in, so the
 * share serves it without hashing it again. `swarm get -o DIR` writes one into
 * `DIR/.swarm/adopt/` when DIR is a share (it has a `.swarm/` folder); the library of a
 * `swarm serve DIR` (in this process or another) reads it when its scanner finds the new file,
 * and uses the manifest if the file's size, mtime, device and inode are exactly those recorded
 * (anything else: the record is ignored and the file is hashed as usual). A record carries an
 * xxhash64 of itself: local state, protected against damage, not against local attackers.
 */
import { mkdir, readFile, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { loadLocalChecksum } from '../hashing.js';
import { makeManifest, type Manifest } from '../manifest.js';
import { writeFileAtomic } from '../storage/atomic.js';
import type { FileStat } from './scanner.js';

export const ADOPT_DIR = 'adopt';

interface Record {
  name: string;
  size: number;
  mtimeMs: number;
  dev: number;
  ino: number;
  chunkBytes: number;
  hashes: string;
  cid: string;
}

export async function writeAdoption(stateDir: string, name: string, st: FileStat, m: Manifest): Promise<void> {
  const dir = path.join(stateDir, ADOPT_DIR);
  await mkdir(dir, { recursive: true });
  const rec: Record = { name, size: st.size, mtimeMs: st.mtimeMs, dev: st.dev, ino: st.ino, chunkBytes: m.chunkBytes, hashes: m.hashes.toString('base64'), cid: m.cid };
  const json = JSON.stringify(rec);
  await writeFileAtomic(path.join(dir, `${m.cid}.json`), `${(await loadLocalChecksum())(json)}\n${json}`, false);
}

/** Adoption records found in `stateDir`, by name (damaged ones are removed). */
export async function readAdoptions(stateDir: string): Promise<Map<string, { st: FileStat; manifest: Manifest; file: string }>> {
  const dir = path.join(stateDir, ADOPT_DIR);
  const out = new Map<string, { st: FileStat; manifest: Manifest; file: string }>();
  const names = await readdir(dir).catch(() => [] as string[]);
  if (names.length === 0) return out;
  const sum = await loadLocalChecksum();
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    const file = path.join(dir, n);
    try {
      const text = await readFile(file, 'utf8');
      const nl = text.indexOf('\n');
      if (nl !== 16 || sum(text.slice(nl + 1)) !== text.slice(0, nl)) throw new Error('damaged');
      const r = JSON.parse(text.slice(nl + 1)) as Record;
      const manifest = makeManifest(r.size, r.chunkBytes, Buffer.from(r.hashes, 'base64'));
      if (manifest.cid !== r.cid) throw new Error('damaged');
      out.set(r.name, { st: { size: r.size, mtimeMs: r.mtimeMs, dev: r.dev, ino: r.ino }, manifest, file });
    } catch {
      await unlink(file).catch(() => {});
    }
  }
  return out;
}

export async function removeAdoption(file: string): Promise<void> {
  await unlink(file).catch(() => {});
}
