/**
 * What a caller hands `get`: its options (GetOptions), the steps at which a test may hold a
 * download (GetStep), the default budget, grace and give-up times, and the DownloadHost contract,
 * what a download asks of the peer it runs in (the node implements it; it is declared on the
 * download's side so the download never imports the node). Types and constants only: the
 * sequence that reads them is get.ts.
 */
import type { ChunkPool } from '../pool.js';
import type { ChunkSource } from '../peer/source.js';
import type { HelloFields } from '../protocol/messages.js';
import type { Manifest } from '../manifest.js';
import type { PeerAddress, Version } from '../types.js';
import type { VersionFinder } from './resolve.js';

export interface GetOptions {
  /** host:port of the tracker; default $SWARM_TRACKER, then 127.0.0.1:7077. */
  tracker?: string;
  /** Fetch from these peers (host:port) instead of asking a tracker. */
  peers?: string[];
  /** Ask no tracker (holders come from --peer, the overlay or the LAN). */
  noTracker?: boolean;
  /** The version to fetch and who has it, already known (sync): fetched by content id, nobody asked by name. */
  known?: Version;
  /** A content id (or unique prefix) to fetch instead of the newest version. */
  version?: string;
  /** Folder the file lands in (NAME's subfolders are created); default the current folder. */
  outDir?: string;
  /** Replace a different file already at NAME (default: refuse and leave it alone). */
  overwrite?: boolean;
  /**
   * What is at NAME is the caller's (sync): it is not looked at first (no "already up to date":
   * a version here with the same size and mtime but other bytes, a conflict's tie, is not the one
   * coming), and this is awaited once every chunk is verified and on disk, just before the file
   * takes NAME (sync moves the version it replaces to the trash or a conflict copy then, not
   * before a download that may never complete).
   */
  beforeReplace?: () => Promise<void>;
  /** Chunk pool threads (0: hash and write on the main thread). */
  threads?: number;
  /** Peer connection threads (0: connections on the main thread). Default: half the cores, at most one per peer. */
  peerThreads?: number;
  /** Bytes of chunks requested but not yet on disk. Default 48 MiB. */
  budgetBytes?: number;
  stallMs?: number;
  requestTimeoutMs?: number;
  /** A peer that delivers nothing within this long of its first request is set aside. */
  firstChunkMs?: number;
  /** With a host: how long a download whose every peer is gone waits for new holders. Default 10 s. */
  stuckGraceMs?: number;
  /** Fail (SWARM_ERR_STALLED) when no chunk has been verified for this long, whatever the peers say. Default 120 s; 0: never. */
  giveUpMs?: number;
  /** Reuse a pool (benchmarks, long-running callers). */
  pool?: ChunkPool;
  /** Measure where the time goes; the result then carries `breakdown`. */
  profile?: boolean;
  /** Stops the download like `abort()`. */
  signal?: AbortSignal;
  /** The peer this download runs in: it shares what is verified and finds more holders. */
  host?: DownloadHost;
  /**
   * For tests only: awaited at each step of the sequence (see GetStep), so a test can hold one
   * download there while another runs, and so force an interleaving. An abort still settles the
   * download at once while it is held. Production callers leave it unset.
   */
  onStep?: (step: GetStep) => void | Promise<void>;
}

/**
 * The steps at which `onStep` is awaited, in order: the name is resolved; the target's lock is
 * held; what is at NAME was checked (and the transfer will happen); part file and ticket are
 * ready and 'start' was emitted; every chunk is on disk; NAME holds the file (lock still held).
 */
export type GetStep = 'resolved' | 'locked' | 'checked' | 'prepared' | 'transferred' | 'finished';

export const DEFAULT_BUDGET_BYTES = 48 << 20;
export const DEFAULT_STUCK_GRACE_MS = 10_000;
/** A download with no chunk verified for this long fails (a peer may say `busy` forever; see Coordinator's giveUpMs). */
export const DEFAULT_GIVE_UP_MS = 120_000;

/**
 * What a download asks of the peer it runs in (the SwarmNode implements it; declared here so the
 * download never imports the node): serve what it has verified, tell others, find more holders,
 * and take over the finished file.
 */
export interface DownloadHost {
  /** Our hello: the node's peer id and listening port. */
  readonly hello: HelloFields;
  /** Serve `source` (a partial download) under `name` from now on. */
  share(name: string, mtime: number, source: ChunkSource): void;
  /** Stop serving it (the download failed or was stopped). */
  unshare(name: string, cid: string): void;
  /** Chunks newly verified (peers interested in `cid` hear of them). */
  verified(cid: string, chunks: number[]): void;
  /** The download completed at `finalPath`: adopt it without hashing again. */
  finished(name: string, finalPath: string, manifest: Manifest, st: { size: number; mtimeMs: number; dev: number; ino: number }): void;
  /**
   * Ask for more holders of `cid` now and then (tracker), and pass on holders that reach this node
   * (peers that said `interest` in it). `now()` asks at once, `stop()` ends it.
   */
  /** Holders as they are found: `vouched` when the tracker listed them (not a peer that only said so). */
  discover(cid: string, add: (peers: PeerAddress[], vouched: boolean) => void): Discovery;
  /** Where else to look for holders of a name (the overlay, the LAN). */
  finders?(): VersionFinder[];
}

export interface Discovery {
  /** Ask again at once; false when there is nowhere to ask (no tracker). */
  now(): boolean;
  stop(): void;
}
