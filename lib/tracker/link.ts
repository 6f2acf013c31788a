/**
 * How a peer finds its tracker. With `tracker` set, it registers there. Without it, a sharing
 * peer (`embed`) starts a tracker in the same process on `trackerPort` (so one command makes a
 * whole swarm); if that port is taken, a tracker is already running here and it joins that one
 * instead; a downloading peer uses the default tracker. What it holds comes from an `Announcer`
 * (declared here: the tracker layer never imports the share or the downloads), whose changes
 * become update/delete messages.
 */
import { DEFAULT_TRACKER_PORT, KEEPALIVE_MS } from '../constants.js';
import type { SwarmError } from '../errors.js';
import { parseHostPort } from '../net/framed-client.js';
import type { Log } from '../log.js';
import { TrackerClient } from './client.js';
import { TrackerServer } from './server.js';
import type { AnnouncedFile } from '../protocol/entries.js';

/** What a peer holds, and a way to hear when that changes. */
export interface Announcer {
  files(): AnnouncedFile[];
  onChange(fn: (changed: AnnouncedFile[], removed: string[]) => void): void;
}

export interface TrackerLinkOptions {
  /** host:port of an external tracker. */
  tracker?: string;
  /** Port of the embedded tracker (default 7077). */
  trackerPort?: number;
  /** Register with no tracker at all. */
  noTracker?: boolean;
  /** Without `tracker`: start one here (a sharing peer), else use $SWARM_TRACKER or 127.0.0.1:7077. */
  embed?: boolean;
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
  /** False after unregister() (seed 003's `unregister`), until register(). */
  registered: boolean;
  /** Register again (a new connection), or re-announce everything when registered. */
  register(): Promise<void>;
  /** Leave the tracker's directory; the embedded tracker, if any, keeps running. */
  unregister(): Promise<void>;
  close(): Promise<void>;
}

export async function attachTracker(
  announcer: Announcer,
  served: { host: string; port: number },
  opts: TrackerLinkOptions,
  onState: (s: TrackerState) => void,
): Promise<TrackerLink | null> {
  if (opts.noTracker) return null;
  let embedded: TrackerServer | null = null;
  let host: string;
  let port: number;
  if (opts.tracker || opts.embed === false) {
    ({ host, port } = parseHostPort(opts.tracker ?? process.env.SWARM_TRACKER ?? `127.0.0.1:${DEFAULT_TRACKER_PORT}`, DEFAULT_TRACKER_PORT));
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
  const address = `${host}:${port}`;
  const newClient = () => {
    const c = new TrackerClient(host, port, served.port, () => announcer.files(), opts.keepaliveMs ?? KEEPALIVE_MS);
    c.on('state', (s) => onState({ ...s, address, embedded: !!embedded }));
    return c;
  };
  const link: TrackerLink = {
    client: newClient(),
    embedded,
    address,
    registered: true,
    async register() {
      if (link.registered && link.client.connected) {
        // registered already: announce everything again (what the tracker may have missed)
        link.client.update(announcer.files());
        return;
      }
      await link.client.close();
      link.client = newClient();
      link.registered = true;
      await link.client.start();
    },
    async unregister() {
      link.registered = false;
      await link.client.close();
    },
    async close() {
      await link.client.close();
      await embedded?.close();
    },
  };
  // changes go to whichever client is current (register/unregister replace it)
  announcer.onChange((changed, removed) => {
    link.client.update(changed);
    link.client.remove(removed);
  });
  await link.client.start();
  return link;
}
