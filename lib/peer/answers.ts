/**
 * The requests a serving connection (session.ts) answers at once from its SourceIndex, pure:
 * `list` (one page: list-page.ts), `stat` (a file by name), `manifest` (a content's chunk hashes,
 * sent as the reply's body), and a request of a type this build does not know (a newer peer's:
 * refused clearly when it expects an answer, else skipped).
 */
import { ERROR_CODES } from '../errors.js';
import type { Header } from '../protocol/frame.js';
import type { PeerRequest, UnknownMessage } from '../protocol/messages.js';
import { chunksOf } from '../manifest.js';
import { listPage } from './list-page.js';
import type { SourceIndex } from './source.js';

export type AtOnceRequest = Extract<PeerRequest, { t: 'list' | 'stat' | 'manifest' }> | UnknownMessage;

/** The reply to `m` (a header, and a body for a manifest), or null: nothing to say. */
export function answer(m: AtOnceRequest, sources: SourceIndex): { header: Header; body?: Uint8Array } | null {
  switch (m.t) {
    case 'unknown':
      if (m.id === undefined) return null;
      return { header: { t: 'error', id: m.id, code: ERROR_CODES.UNKNOWN_MESSAGE, message: `unknown request "${m.type}"` } };
    case 'list':
      return { header: { t: 'files', id: m.id, ...listPage(sources, m.after, m.limit) } };
    case 'stat': {
      const f = sources.stat(m.name);
      if (!f) return { header: { t: 'error', id: m.id, code: ERROR_CODES.NOT_FOUND, message: `no such file: ${m.name}` } };
      return { header: { t: 'entry', id: m.id, ...f } };
    }
    case 'manifest': {
      const src = sources.byCid(m.cid);
      if (!src) return { header: { t: 'error', id: m.id, code: ERROR_CODES.NOT_FOUND, message: `no content ${m.cid.slice(0, 16)}… here` } };
      const mf = src.manifest;
      return { header: { t: 'manifest-ok', id: m.id, cid: mf.cid, size: mf.size, chunkBytes: mf.chunkBytes, chunks: chunksOf(mf) }, body: mf.hashes };
    }
  }
}
