/**
 * The control messages of swarm's two framed protocols (version PROTOCOL_VERSION), decoded from
 * JSON headers into typed unions in this one place. Everything that handles a message switches on
 * `t` and gets typed fields; nothing downstream casts.
 *
 *   peer protocol     hello, list, stat, manifest, get, cancel, interest, have, search, discover,
 *                     sync-index, sync-watch, sync-auth, sync-proof
 *                     → hello, files, entry, manifest-ok, done, error, bitfield, have, peers, busy,
 *                       hits, pong, sync-entries, sync-news, sync-challenge, sync-ok
 *   tracker protocol  hello, register, keepalive, update, delete, unregister, dir, who-has, peers-of
 *                     → hello, directory, ok, holders, peers, error
 *
 * A message of a known type with a missing or mistyped field is SWARM_ERR_BAD_MESSAGE. A message
 * of an unknown type decodes to `{ t: 'unknown' }`: after `hello` the receiver skips it (a newer
 * peer may speak types we do not know). Lists inside messages (files, holders, peers) are checked
 * element by element in entries.ts, where a bad element is dropped and the rest is kept.
 */
import { ERROR_CODES, SwarmError } from '../errors.js';
import type { Header } from './frame.js';
import { isContentId } from '../hashing.js';

/** The protocol version this build speaks (sent in `hello`). Version 1 had xxhash64 content ids. */
export const PROTOCOL_VERSION = 2;

type Kinds = {
  string: string;
  uint: number;
  port: number;
  cid: string;
  peerId: string;
  bool: boolean;
  array: unknown[];
  object: Record<string, unknown>;
  /** 64 hex digits: a sync nonce or proof (HMAC-SHA-256). */
  tag: string;
  /** 32 hex digits: a sync folder id. */
  folderId: string;
};
type Kind = keyof Kinds;
type FieldSpec = Kind | `?${Kind}`;
type Spec = Readonly<Record<string, FieldSpec>>;

type FieldType<F> = F extends `?${infer K extends Kind}` ? Kinds[K] | undefined : F extends Kind ? Kinds[F] : never;
type Required<S> = { [F in keyof S as S[F] extends `?${string}` ? never : F]: FieldType<S[F]> };
type Optional<S> = { [F in keyof S as S[F] extends `?${string}` ? F : never]?: FieldType<S[F]> };
type MessageOf<T extends string, S> = { t: T } & Required<S> & Optional<S>;
type UnionOf<Specs> = { [T in keyof Specs & string]: MessageOf<T, Specs[T]> }[keyof Specs & string];

const HELLO = { v: 'uint', peer: 'peerId', agent: '?string', listen: '?port', caps: '?array' } as const;
const ERROR = { id: '?uint', code: 'string', message: 'string' } as const;

const PEER_REQUESTS = {
  hello: HELLO,
  list: { id: 'uint', after: '?string', limit: '?uint' },
  stat: { id: 'uint', name: 'string' },
  manifest: { id: 'uint', cid: 'cid' },
  get: { id: 'uint', cid: 'cid', from: 'uint', to: 'uint' },
  cancel: { id: 'uint' },
  /** Ask for the sender's bitfield of a content and its `have` updates; `have`: what we hold already (base64 bitfield). */
  interest: { cid: 'cid', have: '?string' },
  /** Chunks the requester has newly verified: the server's upload slots see them delivered. */
  have: { cid: 'cid', chunks: 'array' },
  /** Overlay (seed 001): find files matching `pattern` within `ttl` hops; `sid` names the search. */
  search: { sid: 'peerId', pattern: 'string', ttl: 'uint', hops: 'uint' },
  /** Overlay (seed 001): learn the peers within `ttl` hops. */
  discover: { sid: 'peerId', ttl: 'uint', hops: 'uint' },
  /** Sync (seed 000's index): a page of the sender's sync index, in name order after `after`; with `since`, only entries changed after that version. */
  'sync-index': { id: 'uint', after: '?string', since: '?uint' },
  /** Sync: push `sync-news` whenever the index changes (seed 000's news). */
  'sync-watch': {},
  /** Sync membership: prove we both hold the key of folder `folder` (a hash of it); `nonce`: ours, fresh. */
  'sync-auth': { id: 'uint', folder: 'folderId', nonce: 'tag' },
  /** Sync membership: our HMAC over the challenge (answered `sync-ok`, or an error and the end of the connection). */
  'sync-proof': { id: 'uint', proof: 'tag' },
} as const;

const PEER_REPLIES = {
  hello: HELLO,
  files: { id: 'uint', files: 'array', next: '?string' },
  entry: { id: 'uint', name: 'string', size: 'uint', mtime: 'uint', cid: 'cid', kind: '?string' },
  'manifest-ok': { id: 'uint', cid: 'cid', size: 'uint', chunkBytes: 'uint', chunks: 'uint' },
  done: { id: 'uint' },
  error: ERROR,
  /** Which chunks of `cid` the sender has verified: base64 bitfield, bit i = chunk i (LSB first). */
  bitfield: { cid: 'cid', have: 'string', complete: '?bool' },
  /** Chunks newly verified since the last bitfield/have. */
  have: { cid: 'cid', chunks: 'array' },
  /** Other holders of `cid` the sender knows (peer exchange). */
  peers: { cid: 'cid', peers: 'array' },
  /** The request waits for an upload slot (others are being served): alive, not stalled. */
  busy: { id: 'uint' },
  /** Overlay: files matching search `sid` held by `holder` ({ip?, port}); routed back along the search's path. */
  hits: { sid: 'peerId', holder: 'object', files: 'array' },
  /** Overlay: a peer that a `discover` reached (`ip` absent: the address the hop before it connected to). */
  pong: { sid: 'peerId', peer: 'peerId', ip: '?string', port: 'port', hops: 'uint' },
  /** Sync: a page of the index: [{name, cid, mtime, size, deleted?, agreed?, prev?, maker?}]. */
  'sync-entries': { id: 'uint', entries: 'array', next: '?string', version: '?uint', mac: '?tag' },
  /** Sync membership: the server's nonce and its proof that it holds the folder key. */
  'sync-challenge': { id: 'uint', nonce: 'tag', proof: 'tag' },
  /** Sync membership: the client's proof was right; the index may be read. */
  'sync-ok': { id: 'uint' },
  /** Sync: the index changed (ask again). */
  'sync-news': { version: 'uint' },
} as const;

const TRACKER_REQUESTS = {
  hello: HELLO,
  register: { id: 'uint', port: 'port', files: 'array' },
  keepalive: { id: '?uint', port: '?port' },
  update: { id: 'uint', files: 'array' },
  delete: { id: 'uint', names: 'array' },
  unregister: { id: 'uint' },
  dir: { id: 'uint', after: '?string', limit: '?uint' },
  'who-has': { id: 'uint', name: 'string' },
  'peers-of': { id: 'uint', cid: 'cid' },
} as const;

const TRACKER_REPLIES = {
  hello: HELLO,
  directory: { id: 'uint', files: 'object', next: '?string' },
  ok: { id: '?uint', dropped: '?array' },
  holders: { id: 'uint', name: 'string', versions: 'array' },
  peers: { id: 'uint', cid: 'cid', peers: 'array' },
  error: ERROR,
} as const;

export type PeerRequest = UnionOf<typeof PEER_REQUESTS>;
export type PeerReply = UnionOf<typeof PEER_REPLIES>;
export type TrackerRequest = UnionOf<typeof TRACKER_REQUESTS>;
export type TrackerReply = UnionOf<typeof TRACKER_REPLIES>;
export type Hello = MessageOf<'hello', typeof HELLO>;
export type ErrorMessage = MessageOf<'error', typeof ERROR>;
/** A message of a type this build does not know (skipped after hello). */
export interface UnknownMessage {
  t: 'unknown';
  type: string;
  id?: number;
}

const SIDES = {
  peerRequest: PEER_REQUESTS,
  peerReply: PEER_REPLIES,
  trackerRequest: TRACKER_REQUESTS,
  trackerReply: TRACKER_REPLIES,
} as const;

export type ProtocolSide = keyof typeof SIDES;
export type MessageFor<S extends ProtocolSide> = S extends 'peerRequest'
  ? PeerRequest
  : S extends 'peerReply'
    ? PeerReply
    : S extends 'trackerRequest'
      ? TrackerRequest
      : TrackerReply;

/** Longest string field accepted (names are checked again by their own rules). */
const MAX_STRING_CHARS = 8192;

function kindOk(kind: Kind, v: unknown): boolean {
  switch (kind) {
    case 'string':
      return typeof v === 'string' && v.length <= MAX_STRING_CHARS;
    case 'uint':
      return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    case 'port':
      return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
    case 'cid':
      return isContentId(v);
    case 'peerId':
      return typeof v === 'string' && /^[0-9a-f]{16}$/.test(v);
    case 'bool':
      return typeof v === 'boolean';
    case 'array':
      return Array.isArray(v);
    case 'object':
      return v !== null && typeof v === 'object' && !Array.isArray(v);
    case 'tag':
      return typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
    case 'folderId':
      return typeof v === 'string' && /^[0-9a-f]{32}$/.test(v);
  }
}

/** Decode a frame header into a typed message of one side of a protocol. */
export function decodeMessage<S extends ProtocolSide>(side: S, header: Header): MessageFor<S> | UnknownMessage {
  const specs = SIDES[side] as Record<string, Spec>;
  const spec = Object.hasOwn(specs, header.t) ? specs[header.t] : undefined;
  if (!spec) {
    const id = header.id;
    return typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? { t: 'unknown', type: header.t, id } : { t: 'unknown', type: header.t };
  }
  const out: Record<string, unknown> = { t: header.t };
  for (const [field, want] of Object.entries(spec)) {
    const optional = want.startsWith('?');
    const kind = (optional ? want.slice(1) : want) as Kind;
    const v = header[field];
    if (v === undefined || v === null) {
      if (optional) continue;
      throw new SwarmError(ERROR_CODES.BAD_MESSAGE, `message "${header.t}" lacks field "${field}"`);
    }
    if (!kindOk(kind, v)) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, `message "${header.t}": field "${field}" must be ${kind}`);
    out[field] = v;
  }
  return out as MessageFor<S>;
}

export interface HelloFields {
  /** 16 hex digits, random per process (peer/identity.ts). */
  peer: string;
  /** Software and version, e.g. "swarm/0.2.0". */
  agent: string;
  /** The sender's listening port, if it serves. */
  listen?: number | null;
  caps?: string[];
}

/** The `hello` this build sends. */
export function helloMessage(f: HelloFields): Header {
  return { t: 'hello', v: PROTOCOL_VERSION, peer: f.peer, agent: f.agent, ...(f.listen ? { listen: f.listen } : {}), caps: f.caps ?? [] };
}

/** Check a peer's hello: the version must be ours. */
export function checkHello(h: Hello, what: string): void {
  if (h.v !== PROTOCOL_VERSION) {
    throw new SwarmError(ERROR_CODES.VERSION, `${what} speaks swarm protocol ${h.v}, this swarm speaks ${PROTOCOL_VERSION}; run the same swarm version on both sides`);
  }
}
