/**
 * Who is a sync peer: only a peer that proves it holds the folder key (folder-key.ts). Owns the
 * proof (challenge-response after `hello`) and the tag on every index page read after it, both
 * sides of a connection; the key itself never goes on the wire.
 *
 *   client (reads the index)                        server (answers from its index)
 *   sync-auth {folder id, nonce C}          ─────►  same folder id? else SWARM_ERR_SYNC_DENIED
 *                                          ◄─────   sync-challenge {nonce S, proof S}
 *   proof S = HMAC(key, server|folder|C|S|peers) checked, else the peer is refused
 *   sync-proof {proof C}                    ─────►  proof C = HMAC(key, client|…) checked, else
 *                                          ◄─────   SWARM_ERR_SYNC_DENIED and the connection ends
 *                                          ◄─────   sync-ok
 *   sync-index … ─► sync-entries {…, mac}: HMAC(session key, the request and the page)
 *
 * Both nonces are fresh per connection (a proof seen once is worthless on the next connection),
 * the role is inside the HMAC (a server's proof cannot be reflected as a client's), and so are both
 * hello peer ids. The page tag binds what a member said to this connection's session key: a
 * peer without the key that relays a handshake between two members (the tracker lists it, so a
 * member connects to it) can pass the proofs along but cannot change a single entry it relays;
 * it can read them (nothing here encrypts: a member's index is not a secret from whoever can sit
 * between two members, any more than its files are from whoever knows their content ids).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ERROR_CODES, SwarmError } from '../errors.js';
import type { Header } from '../protocol/frame.js';
import type { PeerClient } from '../peer/client.js';
import type { FolderKey } from './folder-key.js';

export const NONCE_BYTES = 32;
/** How long each step of the proof may take. */
export const PROOF_TIMEOUT_MS = 5_000;

export interface Transcript {
  folder: string;
  clientNonce: string;
  serverNonce: string;
  clientPeer: string;
  serverPeer: string;
}

export function newNonce(): string {
  return randomBytes(NONCE_BYTES).toString('hex');
}

function hmac(key: Buffer, parts: unknown[]): Buffer {
  return createHmac('sha256', key).update(JSON.stringify(parts)).digest();
}

/** What one side sends to prove it holds the key, for this connection only. */
export function proofOf(key: FolderKey, role: 'client' | 'server', t: Transcript): string {
  return hmac(key.secret, ['swarm-sync-proof-1', role, t.folder, t.clientNonce, t.serverNonce, t.clientPeer, t.serverPeer]).toString('hex');
}

/** The key that tags this connection's index pages (never sent). */
export function sessionKeyOf(key: FolderKey, t: Transcript): Buffer {
  return hmac(key.secret, ['swarm-sync-session-1', t.folder, t.clientNonce, t.serverNonce, t.clientPeer, t.serverPeer]);
}

/** The tag of one `sync-entries` page, over the request it answers and the page as sent. */
export function pageMac(session: Buffer, req: { id: number; after?: string | undefined; since?: number | undefined }, page: { entries: unknown[]; next?: string | undefined; version?: number | undefined }): string {
  return hmac(session, ['swarm-sync-page-1', req.id, req.after ?? null, req.since ?? null, page.entries, page.next ?? null, page.version ?? null]).toString('hex');
}

/** Compare two hex tags in constant time. */
export function sameTag(a: unknown, b: string): boolean {
  if (typeof a !== 'string' || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The client side of the proof on a connected client. Resolves with the session key; throws
 * SWARM_ERR_SYNC_DENIED when the peer cannot prove the key or refuses ours, and the error it got
 * otherwise (SWARM_ERR_NOT_FOUND: the peer does not sync; SWARM_ERR_UNKNOWN_MESSAGE: an older
 * swarm without folder keys).
 */
export async function proveToServer(c: PeerClient, key: FolderKey, ownPeer: string): Promise<Buffer> {
  const clientNonce = newNonce();
  const { message: ch } = await c.request({ t: 'sync-auth', folder: key.id, nonce: clientNonce }, 'sync-challenge', PROOF_TIMEOUT_MS);
  // (the peer's hello comes before any answer: ours is pipelined with the first request)
  const serverPeer = c.remoteHello?.peer;
  if (!serverPeer) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'no hello from the peer');
  const t: Transcript = { folder: key.id, clientNonce, serverNonce: ch.nonce, clientPeer: ownPeer, serverPeer };
  if (ch.nonce === clientNonce || !sameTag(ch.proof, proofOf(key, 'server', t))) {
    throw new SwarmError(ERROR_CODES.SYNC_DENIED, 'it does not hold this folder\'s key (wrong proof)');
  }
  await c.request({ t: 'sync-proof', proof: proofOf(key, 'client', t) }, 'sync-ok', PROOF_TIMEOUT_MS);
  return sessionKeyOf(key, t);
}

/**
 * The server side of the proof, one per connection. One attempt per connection: a wrong proof
 * ends it. `session` is set once the client proved the key.
 */
export class ServerProof {
  session: Buffer | null = null;
  private pending: Transcript | null = null;
  private tried = false;

  constructor(
    private readonly key: FolderKey | null,
    private readonly ownPeer: string,
    private readonly clientPeer: string,
  ) {}

  /** The answer to `sync-auth`, or a refusal. */
  challenge(m: { id: number; folder: string; nonce: string }): Header {
    if (!this.key) throw new SwarmError(ERROR_CODES.SYNC_DENIED, 'the open side has no folder key: it proves none and reads no keyed peer');
    if (this.tried) throw new SwarmError(ERROR_CODES.SYNC_DENIED, 'one proof per connection');
    this.tried = true;
    // both ids, so that the line reads the same on both sides (each prints the other's address)
    if (m.folder !== this.key.id) throw new SwarmError(ERROR_CODES.SYNC_DENIED, `folder ${m.folder.slice(0, 8)}… was asked for, and the refusing peer syncs folder ${this.key.id.slice(0, 8)}… (a different folder key)`);
    const t: Transcript = { folder: this.key.id, clientNonce: m.nonce, serverNonce: newNonce(), clientPeer: this.clientPeer, serverPeer: this.ownPeer };
    this.pending = t;
    return { t: 'sync-challenge', id: m.id, nonce: t.serverNonce, proof: proofOf(this.key, 'server', t) };
  }

  /** Check `sync-proof`; throws SWARM_ERR_SYNC_DENIED (the caller ends the connection). */
  check(proof: string): void {
    const t = this.pending;
    this.pending = null;
    if (!this.key || !t) throw new SwarmError(ERROR_CODES.SYNC_DENIED, 'sync-proof without sync-auth');
    if (!sameTag(proof, proofOf(this.key, 'client', t))) throw new SwarmError(ERROR_CODES.SYNC_DENIED, 'wrong proof of the folder key');
    this.session = sessionKeyOf(this.key, t);
  }
}
