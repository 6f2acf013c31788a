/**
 * Who this process is on the wire: a random 64-bit peer id (hex), fixed for the life of the
 * process, and the agent string sent in `hello`. A peer id lets two connections between the same
 * peers be recognised (and a peer's connection to itself refused); it is not a credential.
 */
import { randomBytes } from 'node:crypto';
import { VERSION } from '../version.js';
import type { HelloFields } from '../protocol/messages.js';

export const LOCAL_PEER_ID = randomBytes(8).toString('hex');
export const AGENT = `swarm/${VERSION}`;

export function localHello(listen: number | null = null, caps: string[] = []): HelloFields {
  return { peer: LOCAL_PEER_ID, agent: AGENT, listen, caps };
}
