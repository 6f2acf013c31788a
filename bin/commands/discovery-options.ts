/**
 * The options every command that joins the overlay or the LAN shares (serve, get, search,
 * peers): `--neighbor host:port` (repeatable), `--lan` with `--lan-port` and `--lan-broadcast`.
 * Checked here, once, with messages naming the option.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { isIP } from 'node:net';
import { SwarmError, ERROR_CODES } from '../../lib/errors.js';
import { boundedInt, collect } from './common.js';

export interface DiscoveryCliOptions {
  neighbor?: string[];
  lan?: boolean;
  lanPort?: number;
  lanBroadcast?: string;
}

import { DEFAULT_LAN_PORT } from '../../lib/constants.js';

/** An IPv4 address to send LAN announcements to. */
function broadcastOption(v: string): string {
  if (isIP(v) !== 4) throw new InvalidArgumentError('expected an IPv4 address, e.g. 192.168.1.255 or 255.255.255.255');
  return v;
}

/** `host:port` (or `[v6]:port`), port 1-65535; checked when given. */
function neighborOption(v: string, prev: string[] = []): string[] {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(v) ?? /^([^:[\]]+):(\d+)$/.exec(v);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError('expected host:port, e.g. 10.0.0.5:7070');
  return collect(v, prev);
}

export function addDiscoveryOptions(cmd: Command): Command {
  return cmd
    .option('--neighbor <host:port>', 'an overlay neighbour to search and discover through (repeatable)', neighborOption)
    .option('--lan', 'find peers on the LAN by UDP broadcast, and be found (off unless given)')
    .option('--lan-port <port>', `UDP port of LAN announcements, 1 to 65535 (default: ${DEFAULT_LAN_PORT})`, boundedInt(1, 65535))
    .option('--lan-broadcast <addr>', 'where LAN announcements go (default: 255.255.255.255)', broadcastOption);
}

/** NodeOptions for the discovery options given. */
export function discoveryNodeOptions(o: DiscoveryCliOptions): { neighbors?: string[]; lan?: { port?: number; broadcast?: string } } {
  if (!o.lan && (o.lanPort !== undefined || o.lanBroadcast !== undefined)) {
    throw new SwarmError(ERROR_CODES.USAGE, '--lan-port and --lan-broadcast need --lan');
  }
  return {
    ...(o.neighbor?.length ? { neighbors: o.neighbor } : {}),
    ...(o.lan ? { lan: { ...(o.lanPort !== undefined ? { port: o.lanPort } : {}), ...(o.lanBroadcast ? { broadcast: o.lanBroadcast } : {}) } } : {}),
  };
}
