/**
 * The LAN announcement datagram (seed 004's broadcast `start` / `stop`), encoded and decoded.
 * Pure: bytes in, a typed announcement or a rejection reason out; no sockets, no clocks. The
 * announcer and listener that send and receive these are in lan.ts.
 *
 *   {"swarm":"lan","v":2,"op":"start","peer":"0123456789abcdef","port":7070}
 *
 *   swarm  marker, always "lan": tells our datagrams from anything else sent to the port
 *   v      the peer protocol version the sender speaks (PROTOCOL_VERSION of lib/protocol)
 *   op     "start" (I am here, re-sent every interval) or "stop" (I am leaving)
 *   peer   the sender's peer id, 16 lowercase hex digits (lib/net/identity.ts); not a credential
 *   port   the sender's TCP transfer port, 1..65535
 *
 * Every datagram is written by an adversary (DESIGN.md, "Peers are untrusted"), so the decoder
 * checks the size before parsing and every field after, and reports why it refused instead of
 * throwing: the listener counts refusals and must never throw out of its socket handler.
 *
 * Decisions:
 * - A `v` other than ours is NOT a rejection. The announcement is kept (LanPeer.v) and the node
 *   decides whether to talk to that peer; refusing here would hide a peer that a newer node could
 *   still use, and the version check of the TCP hello is the real gate anyway.
 * - The sender's IP is never a field: the listener takes the datagram's source address, so a
 *   datagram cannot point us at a third party's address (only at its own source, which on a LAN
 *   can be spoofed; see lan.ts for what that can and cannot do).
 * - Unknown extra fields are ignored, so a later version can add some without breaking this one.
 */

/** Value of the `swarm` field: the marker of a LAN announcement. */
export const LAN_MARKER = 'lan';

/**
 * Longest datagram accepted, in bytes. A real announcement is about 90 bytes; the margin leaves
 * room for fields a later version may add, and the cap keeps JSON.parse work per datagram small.
 */
export const MAX_LAN_DATAGRAM_BYTES = 512;

/** `query`: a peer that only listens asks those that serve to announce themselves now (no port). */
export type LanOp = 'start' | 'stop' | 'query';

export interface LanAnnouncement {
  op: LanOp;
  /** 16 lowercase hex digits. */
  peer: string;
  /** TCP transfer port of the sender, 1..65535 (0 in a `query`, which carries none). */
  port: number;
  /** Peer protocol version of the sender (any unsigned integer is accepted; see the header). */
  v: number;
}

/** Why a datagram was refused: one reason per check, in the order the checks run. */
export type LanRejectReason =
  | 'too-large' // over MAX_LAN_DATAGRAM_BYTES
  | 'not-json'
  | 'not-object' // JSON, but an array, a string, a number, null...
  | 'not-swarm' // the `swarm` marker is missing or is not LAN_MARKER
  | 'bad-version' // `v` missing or not an unsigned safe integer
  | 'bad-op' // `op` is not "start", "stop" or "query"
  | 'bad-peer' // `peer` is not 16 lowercase hex digits
  | 'bad-port'; // `port` is not an integer in 1..65535

export type LanDecoded = { ok: true; announcement: LanAnnouncement } | { ok: false; reason: LanRejectReason };

const PEER_ID = /^[0-9a-f]{16}$/;

export function isLanPeerId(v: unknown): v is string {
  return typeof v === 'string' && PEER_ID.test(v);
}

export function isLanPort(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
}

function isVersion(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * The datagram for an announcement. Throws a TypeError for values the decoder would refuse: they
 * can only come from our own code, and sending something every listener drops helps nobody.
 */
export function encodeAnnouncement(a: LanAnnouncement): Buffer {
  if (a.op !== 'start' && a.op !== 'stop' && a.op !== 'query') throw new TypeError(`LAN announcement: op must be "start", "stop" or "query", not ${String(a.op)}`);
  if (!isLanPeerId(a.peer)) throw new TypeError('LAN announcement: peer must be 16 lowercase hex digits');
  if (a.op === 'query') return Buffer.from(JSON.stringify({ swarm: LAN_MARKER, v: a.v, op: a.op, peer: a.peer }), 'utf8');
  if (!isLanPort(a.port)) throw new TypeError(`LAN announcement: port must be 1..65535, not ${String(a.port)}`);
  if (!isVersion(a.v)) throw new TypeError(`LAN announcement: v must be an unsigned integer, not ${String(a.v)}`);
  // Field order fixed so the bytes are the same for the same announcement (easy to eyeball in a capture).
  return Buffer.from(JSON.stringify({ swarm: LAN_MARKER, v: a.v, op: a.op, peer: a.peer, port: a.port }), 'utf8');
}

/** Decode one datagram. Never throws. */
export function decodeAnnouncement(bytes: Uint8Array): LanDecoded {
  // Size first: nothing larger is even turned into a string.
  if (bytes.byteLength > MAX_LAN_DATAGRAM_BYTES) return { ok: false, reason: 'too-large' };
  let parsed: unknown;
  try {
    // Invalid UTF-8 becomes U+FFFD here; any field that then matters is checked by pattern below.
    parsed = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    return { ok: false, reason: 'not-json' };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { ok: false, reason: 'not-object' };
  const o = parsed as Record<string, unknown>;
  // Own properties only: a datagram's "__proto__" key is an own property after JSON.parse, but an
  // inherited one (Object.prototype polluted elsewhere) must not make a field appear.
  const field = (k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined);
  if (field('swarm') !== LAN_MARKER) return { ok: false, reason: 'not-swarm' };
  const v = field('v');
  if (!isVersion(v)) return { ok: false, reason: 'bad-version' };
  const op = field('op');
  if (op !== 'start' && op !== 'stop' && op !== 'query') return { ok: false, reason: 'bad-op' };
  const peer = field('peer');
  if (!isLanPeerId(peer)) return { ok: false, reason: 'bad-peer' };
  if (op === 'query') return { ok: true, announcement: { op, peer, port: 0, v } };
  const port = field('port');
  if (!isLanPort(port)) return { ok: false, reason: 'bad-port' };
  return { ok: true, announcement: { op, peer, port, v } };
}
