/**
 * Listings for `swarm ls`: a local folder (seed 001's LISTL) and a remote peer (LISTR). A local
 * listing takes content ids from the folder's manifest cache where it is current (a folder that
 * `swarm serve` has shared); it never hashes.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_PEER_PORT, STATE_DIR_NAME } from './constants.js';
import { parseHostPort } from './net/framed-client.js';
import { PeerClient } from './peer/client.js';
import { kindOf } from './share/kinds.js';
import { scanShare } from './share/scanner.js';
import { ManifestCache } from './share/manifest-cache.js';
import type { Dropped } from './protocol/entries.js';
import type { FileInfo } from './types.js';
import { ERROR_CODES, SwarmError } from './errors.js';

/** A local file: like FileInfo, with the content id only where the manifest cache knows it. */
export type LocalFileInfo = Omit<FileInfo, 'cid'> & { cid?: string };

export async function listLocal(dir: string): Promise<LocalFileInfo[]> {
  const st = await stat(dir).catch(() => null);
  if (!st?.isDirectory()) throw new SwarmError(ERROR_CODES.NOT_FOUND, `not a folder: ${dir}`);
  const scan = await scanShare(dir);
  const cache = ManifestCache.inStateDir(path.join(dir, STATE_DIR_NAME));
  await cache.load();
  return [...scan.entries()]
    .map(([name, s]) => {
      const cid = cache.get(name, s)?.cid;
      return { name, size: s.size, mtime: Math.floor(s.mtimeMs / 1000), kind: kindOf(name), ...(cid ? { cid } : {}) };
    })
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

export async function listPeer(address: string, timeoutMs = 10_000): Promise<{ files: FileInfo[]; dropped: Dropped[] }> {
  const { host, port } = parseHostPort(address, DEFAULT_PEER_PORT);
  const c = new PeerClient(host, port, { timeoutMs });
  try {
    await c.connect();
    return await c.list();
  } finally {
    c.destroy();
  }
}
