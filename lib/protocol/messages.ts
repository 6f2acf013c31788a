/**
 * The control messages of swarm's two framed protocols and their field checks.
 *
 * Peer protocol (swarm serve):   list, manifest, get, cancel  →  files, manifest-ok, done, error
 * Tracker protocol (framed):     register, keepalive, update, delete, unregister, dir, who-has
 *                                →  directory, ok, holders, error
 * Every request may carry `id` (u32); the answer echoes it. Element-level checks of file lists
 * happen where the lists are used (tracker/registry.ts), with their own limits.
 */
import { ERROR_CODES, SwarmError } from '../errors.js';
import type { Header } from './frame.js';

type Kind = 'string' | 'uint' | 'array' | 'object' | 'bool';
type Spec = Record<string, Kind | `?${Kind}`>;

const PEER_REQUESTS: Record<string, Spec> = {
  list: { id: '?uint' },
  manifest: { id: '?uint', name: 'string' },
  get: { id: 'uint', name: 'string', cid: 'string', from: 'uint', to: 'uint' },
  cancel: { id: 'uint' },
};

const PEER_REPLIES: Record<string, Spec> = {
  files: { id: '?uint', files: 'array' },
  'manifest-ok': { id: '?uint', name: 'string', size: 'uint', mtime: 'uint', chunkBytes: 'uint', cid: 'string', chunks: 'uint' },
  done: { id: 'uint' },
  error: { id: '?uint', code: 'string', message: 'string' },
};

const TRACKER_REQUESTS: Record<string, Spec> = {
  register: { id: '?uint', port: 'uint', files: 'array' },
  keepalive: { id: '?uint', port: '?uint' },
  update: { id: '?uint', files: 'array' },
  delete: { id: '?uint', names: 'array' },
  unregister: { id: '?uint' },
  dir: { id: '?uint' },
  'who-has': { id: '?uint', name: 'string' },
};

const TRACKER_REPLIES: Record<string, Spec> = {
  directory: { id: '?uint', files: 'object' },
  ok: { id: '?uint' },
  holders: { id: '?uint', name: 'string', entry: '?object' },
  error: { id: '?uint', code: 'string', message: 'string' },
};

export const PROTOCOLS = {
  peerRequest: PEER_REQUESTS,
  peerReply: PEER_REPLIES,
  trackerRequest: TRACKER_REQUESTS,
  trackerReply: TRACKER_REPLIES,
} as const;

export type ProtocolSide = keyof typeof PROTOCOLS;

function kindOk(kind: Kind, v: unknown): boolean {
  switch (kind) {
    case 'string':
      return typeof v === 'string';
    case 'uint':
      return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    case 'array':
      return Array.isArray(v);
    case 'object':
      return v !== null && typeof v === 'object' && !Array.isArray(v);
    case 'bool':
      return typeof v === 'boolean';
  }
}

/** Check a decoded header against one side of a protocol. Throws UNKNOWN_MESSAGE / BAD_MESSAGE. */
export function checkMessage(side: ProtocolSide, header: Header): void {
  const spec = PROTOCOLS[side][header.t];
  if (!spec) throw new SwarmError(ERROR_CODES.UNKNOWN_MESSAGE, `unknown message type "${header.t}"`);
  for (const [field, want] of Object.entries(spec)) {
    const optional = want.startsWith('?');
    const kind = (optional ? want.slice(1) : want) as Kind;
    const v = header[field];
    if (v === undefined || (optional && v === null)) {
      if (optional) continue;
      throw new SwarmError(ERROR_CODES.BAD_MESSAGE, `message "${header.t}" lacks field "${field}"`);
    }
    if (!kindOk(kind, v)) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, `message "${header.t}": field "${field}" must be ${kind}`);
  }
}
