/**
 * Start a TCP server listening, turning the usual failures into a SwarmError a person can act
 * on: the address is taken (another swarm?), not allowed (a port below 1024 without root), or
 * not on this machine. The system code stays in `details.errno` for callers that branch on it.
 */
import { once } from 'node:events';
import type net from 'node:net';
import { ERROR_CODES, SwarmError } from '../errors.js';

const HINTS: Record<string, string> = {
  EADDRINUSE: 'the port is in use (another swarm serve or tracker?); choose another with --port, or 0 for any free port',
  EACCES: 'not allowed (ports below 1024 need root); choose another with --port',
  EADDRNOTAVAIL: 'that address is not on this machine; check --host',
};

export async function listenOn(server: net.Server, port: number, host: string, what: string): Promise<net.AddressInfo> {
  server.listen(port, host);
  try {
    await once(server, 'listening');
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code ?? 'unknown';
    throw new SwarmError(ERROR_CODES.LISTEN, `cannot listen on ${host}:${port} for ${what}: ${HINTS[errno] ?? (err as Error).message}`, { errno }, { cause: err });
  }
  return server.address() as net.AddressInfo;
}
