/**
 * Shapes shared by several layers: what a file looks like in a listing, the tracker directory,
 * peer addresses. Plain data only, so they cross threads and the wire unchanged. Values of these
 * types that came from the network have passed protocol/entries.ts.
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
  /** Content id (BLAKE3 of the manifest). */
  cid: string;
}

/** A peer's address as the tracker hands it out. */
export interface PeerAddress {
  ip: string;
  port: number;
}

/** `ip:port`, or `[ip]:port` for IPv6: how an address is shown and dialled everywhere. */
export function addressText(a: PeerAddress): string {
  return a.ip.includes(':') ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
}

/** One version (content id) of a name in the tracker's directory, with who holds it. */
export interface Version {
  cid: string;
  size: number;
  mtime: number;
  /** Peers holding the whole file. */
  holders: PeerAddress[];
  /** Peers holding part of it (downloading, and sharing what they have). */
  partial: PeerAddress[];
}

/** One name in the tracker's directory: its newest version, and how many versions it has. */
export interface DirectoryEntry extends Version {
  versions: number;
}
