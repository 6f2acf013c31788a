/** Listings for `swarm ls`: a local folder (seed 001's LISTL) and a remote peer (LISTR). */
import { DEFAULT_PEER_PORT } from './constants.js';
import { parseHostPort } from './net/framed-client.js';
import { PeerClient } from './peer/client.js';
import { kindOf } from './share/kinds.js';
import { scanShare } from './share/scanner.js';
import type { FileInfo } from './types.js';
import { ERROR_CODES, SwarmError } from './errors.js';
import { stat } from 'node:fs/promises';

export async function listLocal(dir: string): Promise<FileInfo[]> {
  const st = await stat(dir).catch(() => null);
  if (!st?.isDirectory()) throw new SwarmError(ERROR_CODES.NOT_FOUND, `not a folder: ${dir}`);
  const scan = await scanShare(dir);
  return [...scan.entries()]
    .map(([name, s]) => ({ name, size: s.size, mtime: Math.floor(s.mtimeMs / 1000), kind: kindOf(name) }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

export async function listPeer(address: string, timeoutMs = 10_000): Promise<FileInfo[]> {
  const { host, port } = parseHostPort(address, DEFAULT_PEER_PORT);
  const c = new PeerClient(host, port, {}, timeoutMs);
  try {
    await c.connect();
    return await c.list();
  } finally {
    c.destroy();
  }
}
