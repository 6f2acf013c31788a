/**
 * One page of a peer's `list` answer: at most LIST_PAGE_FILES entries and about LIST_PAGE_BYTES of
 * JSON, so a share of a million files is listed in bounded replies; `next` names the last entry
 * sent when the page was cut, for the client's next `after`.
 */
import type { FileInfo } from '../types.js';
import type { SourceIndex } from './source.js';

/** Files per `files` page, and the JSON bytes a page may reach before it is cut. */
export const LIST_PAGE_FILES = 1000;
export const LIST_PAGE_BYTES = 256 << 10;

export function listPage(sources: SourceIndex, after: string | undefined, limit: number | undefined): { files: FileInfo[]; next?: string } {
  const page = sources.list(after, Math.min(limit ?? LIST_PAGE_FILES, LIST_PAGE_FILES));
  let bytes = 0;
  let cut = page.files.length;
  for (let i = 0; i < page.files.length; i++) {
    // a generous estimate of an entry's JSON: a name may double when escaped, plus the fields
    bytes += page.files[i]!.name.length * 2 + 160;
    if (bytes > LIST_PAGE_BYTES) {
      cut = Math.max(1, i);
      break;
    }
  }
  const files = page.files.slice(0, cut);
  const next = cut < page.files.length ? files[files.length - 1]!.name : page.next;
  return { files, ...(next !== undefined ? { next } : {}) };
}
