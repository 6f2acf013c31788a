/**
 * Numbers that several layers agree on. Units are in the names.
 * Protocol limits live here (not in the codecs) so servers, clients and tests share them.
 */

/** Default TCP port of `swarm serve` (peer protocol). */
export const DEFAULT_PEER_PORT = 7070;
/** Default TCP port of the tracker (`swarm tracker`, or the one `swarm serve` embeds). */
export const DEFAULT_TRACKER_PORT = 7077;

/** Default UDP port of LAN announcements (`--lan`, seed 004). */
export const DEFAULT_LAN_PORT = 7071;

/** Largest JSON header a frame may declare. Manifests carry their hashes in the body, so 1 MiB is generous. */
export const MAX_HEADER_BYTES = 1 << 20;
/** Largest body a frame may declare: one data packet or one manifest's hash table. */
export const MAX_BODY_BYTES = 16 << 20;

/** Payload bytes per data packet the server sends. Tens of KiB keep per-packet cost low. */
export const PACKET_PAYLOAD_BYTES = 64 << 10;
/** Largest payload a packet may declare; anything bigger is a protocol error. */
export const MAX_PACKET_PAYLOAD_BYTES = 1 << 20;

/** Smallest chunk; larger files get larger chunks so that a manifest stays under MAX_CHUNKS. */
export const MIN_CHUNK_BYTES = 1 << 20;
/** Upper bound on chunks per file (bounds manifest size and the chunk table). */
export const MAX_CHUNKS = 1 << 16;
/** Largest chunk we accept from a manifest (bounds per-chunk memory). */
export const MAX_CHUNK_BYTES = 64 << 20;
/** Largest file swarm transfers: MAX_CHUNKS chunks of MAX_CHUNK_BYTES (4 TiB). */
export const MAX_FILE_BYTES = MAX_CHUNKS * MAX_CHUNK_BYTES;
/** Latest modification time accepted from the wire, in seconds (2106-02-07; fits every file system's utimes). */
export const MAX_MTIME_SEC = 0xffff_ffff;

/** Keepalive period of the tracker protocol (seed 002: every 5 s). */
export const KEEPALIVE_MS = 5_000;
/** A peer silent for this many keepalive periods is dropped from the directory. */
export const KEEPALIVE_MISSES = 3;

/** Name of the hidden folder inside a share that holds swarm's own state (manifest cache). */
export const STATE_DIR_NAME = '.swarm';
/** Suffix of a download in progress and of its ticket. */
export const PART_SUFFIX = '.swarm-part';
export const TICKET_SUFFIX = '.swarm-ticket';
/** The lock a download holds on its target (storage/lock.ts). */
export const LOCK_SUFFIX = '.swarm-lock';
/** Marks swarm's temporary files (atomic writes): `NAME.swarm-tmp-PID-RANDOM`. */
export const TEMP_MARK = '.swarm-tmp-';

/** Bytes before every frame's JSON header: two u32 lengths. */
export const FRAME_PREFIX_BYTES = 8;

/** The tracker to ask when none is named: $SWARM_TRACKER, else the one a local `swarm serve` embeds. */
/** True when a tracker was asked for (named, or $SWARM_TRACKER), not only the local default. */
export function trackerNamed(explicit?: string): boolean {
  return !!explicit || !!process.env.SWARM_TRACKER;
}

export function defaultTracker(explicit?: string): string {
  return explicit ?? process.env.SWARM_TRACKER ?? `127.0.0.1:${DEFAULT_TRACKER_PORT}`;
}
