/**
 * Who a peer is on the wire: a random 64-bit peer id (hex) and the agent string sent in `hello`.
 * A peer id is chosen per running peer (a server, a download, the node that holds both), not per
 * process, so two peers in one process (tests, a shell) are told apart; a node's downloads use
 * its server's id, so a download recognises a connection to its own node. It is not a credential.
 */
import { randomBytes } from 'node:crypto';
import { VERSION } from '../version.js';
import type { HelloFields } from '../protocol/messages.js';

export const AGENT = `swarm/${VERSION}`;

export function newPeerId(): string {
  return randomBytes(8).toString('hex');
}

/** A hello for a peer that has no identity of its own yet (a short-lived client). */
export function localHello(listen: number | null = null, caps: string[] = [], peer = newPeerId()): HelloFields {
  return { peer, agent: AGENT, listen, caps };
}
