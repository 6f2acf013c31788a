/**
 * What a sync takes from the tracker's directory: the addresses of every holder of swarm content
 * (candidates to dial: dial-plan.ts decides which, readers.ts dials), and, in an open folder, the
 * files of stock seed-002 peers, which prove no key and send no index: their directory entries
 * ("legacy:MTIME") stand for their index, by plain name (legacy-fetch.ts), taken only when newer
 * (plan.ts). Pure: the directory's entries come in.
 */
import { isLegacyCid } from '../protocol/entries.js';
import { nameProblem } from '../protocol/names.js';
import { notSharedName } from '../share/names.js';
import type { PeerAddress } from '../types.js';
import type { SyncEntry } from './plan.js';

/** Files taken from one stock seed-002 peer's directory entries at most. */
export const MAX_STOCK_ENTRIES_PER_PEER = 10_000;
/** A stock peer's file dated further ahead than this is not taken (it would win every later edit). */
export const MAX_CLOCK_AHEAD_SEC = 86_400;

export interface DirectoryEntry {
  cid: string;
  mtime: number;
  size: number;
  holders: PeerAddress[];
  partial: PeerAddress[];
}

/** One stock peer's files, by its address key. */
export interface StockFiles {
  addr: PeerAddress;
  entries: Map<string, SyncEntry>;
}

/** The directory's holders of swarm content (in its order, repeats included), and the stock peers' files (none when keyed). */
export function readDirectory(entries: Iterable<[string, DirectoryEntry]>, keyed: boolean, keyOf: (a: PeerAddress) => string, nowSec = Date.now() / 1000): { listed: PeerAddress[]; stock: Map<string, StockFiles> } {
  const listed: PeerAddress[] = [];
  const stock = new Map<string, StockFiles>();
  for (const [name, e] of entries) {
    if (!isLegacyCid(e.cid)) {
      for (const h of e.holders) listed.push(h); // (a loop: a hostile tracker's entry may hold more than a call's arguments)
      for (const h of e.partial) listed.push(h);
      continue;
    }
    if (keyed) continue;
    // (the tracker checked the name; that sync may write it is ours to check; an mtime from the
    // future would win every later edit)
    if (nameProblem(name) !== null || notSharedName(name) !== null || e.mtime > nowSec + MAX_CLOCK_AHEAD_SEC) continue;
    for (const h of e.holders) {
      const k = keyOf(h);
      const r = stock.get(k) ?? { addr: h, entries: new Map<string, SyncEntry>() };
      if (r.entries.size < MAX_STOCK_ENTRIES_PER_PEER) r.entries.set(name, { name, cid: e.cid, mtime: e.mtime, size: e.size });
      stock.set(k, r);
    }
  }
  return { listed, stock };
}
