/**
 * What the peer server answers `sync-index` and `sync-watch` from (seed 000's index and news),
 * declared here and implemented above (sync/), so the peer layer never imports sync.
 */
export interface SyncPort {
  /**
   * A page of the index after `after` (entries as they go on the wire); with `since` (a version
   * this process gave earlier), only what changed after it. `version`: the version read at.
   */
  page(after: string | undefined, since?: number): { entries: unknown[]; next?: string; version?: number };
  /** The index version now; `onChange` tells of every change. */
  readonly version: number;
  onChange(fn: () => void): () => void;
  /** A peer that serves on `addr` watches our index: it syncs too, so we read its index back. */
  watchedBy?(addr: { ip: string; port: number }): void;
}
