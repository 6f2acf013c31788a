/**
 * What the peer server serves from, declared here and implemented above (share/ for complete
 * files, download/ for partial ones): the peer layer never imports them.
 *
 * A `ChunkSource` is one content id that this peer can serve: its manifest, which chunks are
 * verified, and a way to read them. `open()` returns a reader tied to the exact file the source
 * was checked against (device and inode compared after opening), so a symlink or another file
 * swapped in later is never read. A source only ever answers for verified chunks.
 */
import type { Manifest } from '../manifest.js';
import type { FileInfo, PeerAddress } from '../types.js';

export interface SourceReader {
  /** Read into `buf[at, at+length)` from file offset `position`; resolves bytes read (0 at end). */
  read(buf: Buffer, at: number, length: number, position: number): Promise<number>;
  /** Fill `bufs` in order from `position` in one call where the source can; resolves bytes read. */
  readv?(bufs: Buffer[], position: number): Promise<number>;
  /** Throws (or rejects) SWARM_ERR_FILE_CHANGED if the file no longer matches what was verified; a promise only when it had to wait. */
  checkUnchanged(): void | Promise<void>;
  close(): Promise<void>;
  /**
   * The open descriptor, for the kernel to send from (sender.ts, sendfile), kept open until
   * `release`; null when closed. Only readers of complete files whose packet sums were taken at
   * hashing offer it: the bytes go out without passing through our memory.
   */
  lend?(): LentFile | null;
}

export interface ChunkSource {
  readonly manifest: Manifest;
  /** True when every chunk is verified (a seeder). */
  readonly complete: boolean;
  /** True when chunk i is verified and may be served. */
  has(chunk: number): boolean;
  /** The verified chunks as a bitfield (bit i, LSB first within a byte, set when chunk i is). */
  bitfield(): Uint8Array;
  /** The first chunk of [from, to) not verified, or -1 (optional: else `has` is asked chunk by chunk). */
  firstMissing?(from: number, to: number): number;
  open(): Promise<SourceReader>;
  /**
   * The RFC 1071 sums of chunk `chunk`'s 64 KiB packet payloads, taken when the file was hashed,
   * or null: the sender then sums each payload as it goes.
   */
  packetSums?(chunk: number): Uint16Array | null;
}

/** A reader's descriptor lent to the kernel path (sender.ts). */
export interface LentFile {
  fd: number;
  release(): void;
}

/** Listeners for changes of a source's chunks (partial holders announce `have`). */
export type HaveListener = (cid: string, chunks: number[]) => void;

/** Everything the server can answer for. */
export interface SourceIndex {
  /** A page of the files this peer shares, by name, starting after `after`. */
  list(after: string | undefined, limit: number): { files: FileInfo[]; next?: string };
  /** The file shared under `name`, if any. */
  stat(name: string): FileInfo | undefined;
  /** The source of a content id, complete or partial. */
  byCid(cid: string): ChunkSource | undefined;
  /** For seed 002's plain File Request: a reader of the complete file shared under `name`. */
  openByName(name: string): Promise<{ reader: SourceReader; size: number } | undefined>;
  /** Subscribe to newly verified chunks; returns the unsubscribe function. */
  onHave?(listener: HaveListener): () => void;
  /** Other holders of `cid` this peer knows (peer exchange). */
  holdersOf?(cid: string): PeerAddress[];
  /** A peer that serves on `addr` is interested in `cid` (it is a holder to tell others of). */
  noteHolder?(cid: string, addr: PeerAddress): void;
  /** The peer on `addr` closed its connection to us: no longer a holder to tell others of. */
  forgetHolder?(cid: string, addr: PeerAddress): void;
  /** Subscribe to holders newly noted; returns the unsubscribe function. */
  onHolder?(listener: HolderListener): () => void;
}

/** A holder of `cid` this peer had not heard of. */
export type HolderListener = (cid: string, addr: PeerAddress) => void;
