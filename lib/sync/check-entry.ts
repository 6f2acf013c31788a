/**
 * One entry of a peer's sync index, checked field by field before anything of it is used: a name
 * sync may write, content ids, sizes and times in range, a lineage of content ids (cut to ours),
 * a maker that is a device id. What fails is left out, never the whole index.
 */
import { MAX_MTIME_SEC, MAX_FILE_BYTES } from '../constants.js';
import { isContentId } from '../hashing.js';
import { nameProblem } from '../protocol/names.js';
import { notSharedName } from '../share/names.js';
import { isDeviceId } from './device-id.js';
import { PREV_KEEP, type SyncEntry } from './plan.js';

/** Content ids a peer's `prev` may hold (cut to PREV_KEEP): more drops the entry. */
const MAX_PREV_READ = 64;

/** One index entry from a peer, checked field by field (null: left out). */
export function checkEntry(raw: unknown): SyncEntry | null {
  const e = raw as Record<string, unknown> | null;
  if (!e || typeof e !== 'object') return null;
  if (nameProblem(e.name) !== null || notSharedName(e.name as string) !== null || !isContentId(e.cid)) return null;
  const uint = (v: unknown, max: number) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= max;
  if (!uint(e.mtime, MAX_MTIME_SEC) || !uint(e.size, MAX_FILE_BYTES)) return null;
  if (e.deleted !== undefined && !uint(e.deleted, MAX_MTIME_SEC)) return null;
  if (e.agreed !== undefined && !isContentId(e.agreed)) return null;
  // a longer lineage of content ids (a later build may keep more) is cut to ours, not refused: a
  // refused entry left that member silently out of step (hostile review 47); anything else is
  if (e.prev !== undefined && !(Array.isArray(e.prev) && e.prev.length <= MAX_PREV_READ && e.prev.every(isContentId))) return null;
  const prev = e.prev === undefined ? [] : (e.prev as string[]).slice(0, PREV_KEEP);
  return {
    name: e.name as string,
    cid: e.cid as string,
    mtime: e.mtime as number,
    size: e.size as number,
    ...(e.deleted !== undefined ? { deleted: e.deleted as number } : {}),
    ...(e.agreed !== undefined ? { agreed: e.agreed as string } : {}),
    ...(prev.length ? { prev } : {}),
    // who made the version: exactly a device id, else the field goes (never the entry); it names a
    // conflict copy's suffix, nothing more (conflict-copy.ts)
    ...(isDeviceId(e.maker) ? { maker: e.maker } : {}),
  };
}
