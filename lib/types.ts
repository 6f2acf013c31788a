/**
 * Shapes shared by several layers: what a file looks like in a listing, a manifest, the tracker
 * directory. Plain data only, so they cross threads and the wire unchanged.
 */

/** seed 001's file types, by extension. */
export type FileKind = 'video' | 'music' | 'picture' | 'document' | 'archive' | 'other';

/** A shared file as a peer lists it. `name` is the relative path with '/' separators. */
export interface FileInfo {
  name: string;
  size: number;
  /** Modification time in whole seconds (seed 002 rounds down). */
  mtime: number;
  kind: FileKind;
  /** Content id of the manifest; absent while the file is still being hashed. */
  cid?: string;
}

/** How a file is cut into chunks and what each chunk must hash to. */
export interface Manifest {
  name: string;
  size: number;
  mtime: number;
  chunkBytes: number;
  /** xxhash64 of each chunk, as 16 lowercase hex digits. */
  hashes: string[];
  /** Content id: xxhash64 over size, chunkBytes and the chunk hashes. */
  cid: string;
}

/** A peer's address as the tracker hands it out. */
export interface PeerAddress {
  ip: string;
  port: number;
}

/** One file in the tracker's directory: the newest version and every peer holding exactly it. */
export interface DirectoryEntry extends PeerAddress {
  mtime: number;
  size: number;
  cid: string;
  holders: PeerAddress[];
}
