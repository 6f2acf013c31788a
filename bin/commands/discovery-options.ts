/**
 * The options every command that joins the overlay or the LAN shares (serve, get, search,
 * peers): `--neighbor host:port` (repeatable), `--lan` with `--lan-port` and `--lan-broadcast`.
 * Their values are checked in bin/options.ts, with messages naming the option.
 */
import type { Command } from 'commander';
import { SwarmError, ERROR_CODES } from '../../lib/errors.js';
import { DEFAULT_LAN_PORT } from '../../lib/constants.js';
import { addressList, boundedInt, broadcastOption } from '../options.js';

export interface DiscoveryCliOptions {
  neighbor?: string[];
  lan?: boolean;
  lanPort?: number;
  lanBroadcast?: string;
}

export function addDiscoveryOptions(cmd: Command): Command {
  return cmd
    .option('--neighbor <host:port>', 'an overlay neighbour to search and discover through (repeatable)', addressList)
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
