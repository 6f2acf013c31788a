import type { EventEmitter } from 'node:events';
import type { Breakdown } from './breakdown.js';
/** Events a download emits (library API and `--json` output share these shapes). */

export interface PeerView {
  address: string;
  state: 'connecting' | 'active' | 'dropped';
  /** Bytes per second, smoothed. */
  rate: number;
  chunks: number;
  inflight: number;
  strikes: number;
  /** True for a peer that has the whole file (a seeder); false for a partial holder. */
  complete: boolean;
}

export interface StartEvent {
  name: string;
  path: string;
  size: number;
  mtime: number;
  cid: string;
  chunks: number;
  chunkBytes: number;
  peers: string[];
  resumedChunks: number;
  source: string;
}

export interface ProgressEvent {
  bytes: number;
  total: number;
  /** Verified bytes per second, smoothed. */
  rate: number;
  peers: PeerView[];
}

export interface DoneEvent {
  name: string;
  path: string;
  /** Content id of what was fetched (or found already there). */
  cid: string;
  size: number;
  seconds: number;
  /** Average rate of this run (bytes fetched in this run / seconds). */
  rate: number;
  peersUsed: number;
  peersDropped: number;
  badPackets: number;
  badChunks: number;
  resumedChunks: number;
  fetchedChunks: number;
  /** True when the file was already there with the directory's size and mtime. */
  upToDate: boolean;
  /** Where the time went, when asked for (`profile`). */
  breakdown?: Breakdown;
  /**
   * Set only when the file came from stock seed-002 holders, which publish no hashes: "size" (only
   * the size the directory gives was checked), "none" (the directory gives no size either: only a
   * clean end of the transfer). Absent: every chunk was checked with BLAKE3 against the content id.
   */
  verified?: 'size' | 'none';
}

/** A `done` event with every count at zero, for the fields a download knows from the start. */
export function doneEvent(base: { name: string; path: string; cid: string; size: number; started: number }, over: Partial<DoneEvent> = {}): DoneEvent {
  return {
    name: base.name,
    path: base.path,
    cid: base.cid,
    size: base.size,
    seconds: (Date.now() - base.started) / 1000,
    rate: 0,
    peersUsed: 0,
    peersDropped: 0,
    badPackets: 0,
    badChunks: 0,
    resumedChunks: 0,
    fetchedChunks: 0,
    upToDate: false,
    ...over,
  };
}

export interface WarningEvent {
  peer?: string;
  code?: string;
  message: string;
}

export interface PeerDroppedEvent {
  peer: string;
  reason: string;
  code: string;
}

/** What `Download` (and so `get(...).download`) emits. */
export interface DownloadEvents {
  start: [e: StartEvent];
  progress: [e: ProgressEvent];
  warning: [e: WarningEvent];
  'peer-dropped': [e: PeerDroppedEvent];
}

/** What the coordinator emits to `Download`. */
export interface CoordinatorEvents {
  /** Chunks newly verified and written (batched): they can be served at once. */
  verified: [chunks: number[]];
  snapshot: [e: { verifiedBytes: number; verifiedChunks: number; peers: PeerView[] }];
  warning: [e: WarningEvent];
  'peer-dropped': [e: PeerDroppedEvent];
}

/** The coordinator's `emit`, as the units it delegates to (chunk-intake, peer-roster, give-up) see it. */
export type CoordinatorEmitter = Pick<EventEmitter<CoordinatorEvents>, 'emit'>;
