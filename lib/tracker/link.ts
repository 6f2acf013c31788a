/**
 * How a serving peer finds its tracker. With `tracker` set, it registers there. Without it,
 * it starts a tracker in the same process on `trackerPort` (so one command makes a whole swarm);
 * if that port is taken, a tracker is already running here and it joins that one instead.
 * The library's changes become update/delete messages.
 */
import { DEFAULT_TRACKER_PORT, KEEPALIVE_MS } from '../constants.js';
import type { SwarmError } from '../errors.js';
import { parseHostPort } from '../net/framed-client.js';
import type { Library } from '../share/library.js';
import type { Log } from '../log.js';
import { TrackerClient } from './client.js';
import { TrackerServer } from './server.js';
import type { AnnouncedFile } from '../protocol/entries.js';
import type { FileInfo } from '../types.js';

export interface TrackerLinkOptions {
  /** host:port of an external tracker. */
  tracker?: string;
  /** Port of the embedded tracker (default 7077). */
  trackerPort?: number;
  /** Register with no tracker at all. */
  noTracker?: boolean;
  keepaliveMs?: number;
  log?: Log;
}

export interface TrackerState {
  connected: boolean;
  address: string;
  embedded: boolean;
  message?: string;
  /** Entries the tracker refused, with why (the rest were registered). */
  dropped?: { what: string; reason: string }[];
}

export interface TrackerLink {
  client: TrackerClient;
  embedded: TrackerServer | null;
  address: string;
  close(): Promise<void>;
}

export async function attachTracker(
  library: Library,
  served: { host: string; port: number },
  opts: TrackerLinkOptions,
  onState: (s: TrackerState) => void,
): Promise<TrackerLink | null> {
  if (opts.noTracker) return null;
  let embedded: TrackerServer | null = null;
  let host: string;
  let port: number;
  if (opts.tracker) {
    ({ host, port } = parseHostPort(opts.tracker, DEFAULT_TRACKER_PORT));
  } else {
    port = opts.trackerPort ?? DEFAULT_TRACKER_PORT;
    const candidate = new TrackerServer({ host: served.host, port, keepaliveMs: opts.keepaliveMs ?? KEEPALIVE_MS, ...(opts.log ? { log: opts.log } : {}) });
    try {
      const a = await candidate.listen();
      embedded = candidate;
      port = a.port;
    } catch (err) {
      if ((err as SwarmError).details?.errno !== 'EADDRINUSE') throw err;
      // a tracker already runs here (another `swarm serve`): join it
    }
    host = served.host === '0.0.0.0' || served.host === '::' ? '127.0.0.1' : served.host;
  }
  const announce = (files: FileInfo[]): AnnouncedFile[] => files.map((f) => ({ name: f.name, mtime: f.mtime, size: f.size, cid: f.cid, partial: false }));
  const client = new TrackerClient(host, port, served.port, () => announce(library.files()), opts.keepaliveMs ?? KEEPALIVE_MS);
  const address = `${host}:${port}`;
  client.on('state', (s) => onState({ ...s, address, embedded: !!embedded }));
  library.on('change', (diff) => {
    const changed = new Set([...diff.added, ...diff.changed]);
    client.update(announce(library.files().filter((f) => changed.has(f.name))));
    client.remove(diff.removed);
  });
  await client.start();
  return {
    client,
    embedded,
    address,
    async close() {
      await client.close();
      await embedded?.close();
    },
  };
}
