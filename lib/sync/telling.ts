/**
 * What a syncer (syncer.ts) tells beyond one event per file, and the counts its verdicts need:
 * peers that reached us and could not prove the folder key (said once each), the members whose
 * index was read and those refused (`--once`'s verdict), and many files deleted here at once (one
 * summary for a person: `rm -r` of a big folder said one line per file, thousands of lines that
 * hid everything else; Syncthing passes such deletions on too, and so does sync: only the saying
 * changes), and progress: what is done since the start against what is left.
 */
import { ERROR_CODES } from '../errors.js';
import type { SyncLink } from '../peer/sync-port.js';
import { addressText } from '../types.js';
import type { WarningInfo } from './sync-types.js';
import type { IndexReaders } from './readers.js';

/** Peers that reached us and were refused, told of once each; forgotten all at once beyond this. */
const MAX_REFUSED = 1_024;
/** One change that deletes more files than this here is said in one line (and the files each with --json). */
export const MANY_DELETED = 100;
/** ... as is one that deletes more than half of the share, from this many files on. */
const MANY_DELETED_HALF_FROM = 10;

export class Refusals {
  private readonly said = new Set<string>();

  constructor(private readonly warn: (message: string, info: WarningInfo) => void) {}

  /**
   * A peer that reached us could not prove the key: told once per peer, named by where it serves
   * (its hello's listen port: what a user can look up or pass to --neighbor), not by the
   * connection's ephemeral source port; one that serves nowhere by the connection.
   */
  refusedBy(link: SyncLink, reason: string): void {
    const k = `${link.remote.replace(/:\d+$/, '')}|${link.peer}`;
    if (this.said.has(k)) return;
    if (this.said.size >= MAX_REFUSED) this.said.clear();
    this.said.add(k);
    const at = link.listen ? addressText(link.listen) : null;
    const who = at ? `${at} (peer ${link.peer})` : `peer ${link.peer} (connected from ${link.remote}; it serves nowhere)`;
    this.warn(`refused ${who}: ${reason}`, { code: ERROR_CODES.SYNC_DENIED, peer: at ?? link.remote });
  }
}

/** Peers whose index was read (stock seed-002 peers are not members), and peers refused as not members. */
export function memberCounts(readers: IndexReaders): { read: number; refused: number } {
  let read = 0;
  for (const r of readers.remote.values()) if (!r.stock) read++;
  return { read, refused: readers.refusedCount };
}

/**
 * Files deleted here by one change (`names`, of a share that held `before` files): when they are
 * many (more than MANY_DELETED, or more than half of the share), how many and the folder they have
 * in common ('' for the share's top); null when each is said on its own.
 */
export function manyDeleted(names: readonly string[], before: number): { files: number; under: string } | null {
  const n = names.length;
  if (n <= MANY_DELETED && (n < MANY_DELETED_HALF_FROM || n * 2 <= before)) return null;
  let common = names[0]!.split('/').slice(0, -1);
  for (const name of names) {
    const dirs = name.split('/').slice(0, -1);
    let i = 0;
    while (i < common.length && i < dirs.length && common[i] === dirs[i]) i++;
    common = common.slice(0, i);
    if (common.length === 0) break;
  }
  return { files: n, under: common.join('/') };
}

export interface SyncProgressCounts {
  filesDone: number;
  bytesDone: number;
  filesToGo: number;
  bytesToGo: number;
}

/** Files (fetched, replaced or deleted here) and bytes done since the start. */
export class Tally {
  private files = 0;
  private bytes = 0;

  counted(files: number, bytes: number): void {
    this.files += files;
    this.bytes += bytes;
  }

  /**
   * Done since the start, and what is left to do as known now (`left`: it grows when members
   * announce more); what has come of the big files still coming (`coming`) counts as done bytes
   * (their files count when they land).
   */
  progress(left: { files: number; bytes: number }, coming: Iterable<number>): SyncProgressCounts {
    let c = 0;
    for (const b of coming) c += b;
    c = Math.min(c, left.bytes);
    return { filesDone: this.files, bytesDone: this.bytes + c, filesToGo: left.files, bytesToGo: left.bytes - c };
  }
}
