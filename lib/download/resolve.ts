/**
 * Turning a NAME into what a download needs: the version to fetch (size, mtime, content id),
 * its manifest, and every peer that holds exactly that version.
 *
 * With a tracker: who-has NAME, then the manifest from the first holder that answers, checked
 * against the directory's content id. With named peers (--peer): ask each for the manifest and
 * keep the newest version (most holders on a tie); peers with other versions are left out.
 */
import { DEFAULT_PEER_PORT, DEFAULT_TRACKER_PORT } from '../constants.js';
import { ERROR_CODES, SwarmError } from '../errors.js';
import { loadHasher } from '../hashing.js';
import { parseHostPort } from '../net/framed-client.js';
import { PeerClient } from '../peer/client.js';
import { trackerWhoHas } from '../tracker/client.js';
import type { Manifest, PeerAddress } from '../types.js';

export interface Target {
  manifest: Manifest;
  holders: PeerAddress[];
  /** Where the holders came from, for messages. */
  source: string;
  /** Peers that were asked but are left out, with why. */
  skipped: { peer: string; reason: string }[];
}

async function fetchManifest(addr: PeerAddress, name: string, expectCid?: string, timeoutMs = 5_000): Promise<Manifest> {
  const c = new PeerClient(addr.ip, addr.port, {}, timeoutMs);
  try {
    await c.connect();
    return await c.manifest(await loadHasher(), name, expectCid);
  } finally {
    c.destroy();
  }
}

export function defaultTracker(explicit?: string): string {
  return explicit ?? process.env.SWARM_TRACKER ?? `127.0.0.1:${DEFAULT_TRACKER_PORT}`;
}

export async function resolveTarget(name: string, opts: { tracker?: string; peers?: string[]; timeoutMs?: number }): Promise<Target> {
  const skipped: { peer: string; reason: string }[] = [];
  if (opts.peers && opts.peers.length > 0) {
    const addrs = opts.peers.map((p) => parseHostPort(p, DEFAULT_PEER_PORT)).map(({ host, port }) => ({ ip: host, port }));
    const answers = await Promise.all(
      addrs.map((a) =>
        fetchManifest(a, name, undefined, opts.timeoutMs).then(
          (m) => ({ a, m }),
          (err: SwarmError) => {
            skipped.push({ peer: `${a.ip}:${a.port}`, reason: err.message });
            return { a, m: null, code: err.code };
          },
        ),
      ),
    );
    const good = answers.filter((x): x is { a: PeerAddress; m: Manifest } => !!x.m);
    if (good.length === 0) {
      const allNotFound = answers.every((x) => 'code' in x && x.code === ERROR_CODES.NOT_FOUND);
      throw new SwarmError(allNotFound ? ERROR_CODES.NOT_FOUND : ERROR_CODES.NO_PEERS, allNotFound ? `no peer has ${name}` : `no named peer could serve ${name}: ${skipped.map((s) => `${s.peer}: ${s.reason}`).join('; ')}`);
    }
    const byCid = new Map<string, { m: Manifest; holders: PeerAddress[] }>();
    for (const { a, m } of good) {
      const v = byCid.get(m.cid);
      if (v) v.holders.push(a);
      else byCid.set(m.cid, { m, holders: [a] });
    }
    const best = [...byCid.values()].sort((x, y) => y.m.mtime - x.m.mtime || y.holders.length - x.holders.length)[0]!;
    for (const { a, m } of good) if (m.cid !== best.m.cid) skipped.push({ peer: `${a.ip}:${a.port}`, reason: 'holds another version' });
    return { manifest: best.m, holders: best.holders, source: 'named peers', skipped };
  }
  const trackerAddr = defaultTracker(opts.tracker);
  const { host, port } = parseHostPort(trackerAddr, DEFAULT_TRACKER_PORT);
  const entry = await trackerWhoHas(host, port, name);
  if (!entry || entry.holders.length === 0) throw new SwarmError(ERROR_CODES.NOT_FOUND, `no peer in the swarm of ${trackerAddr} has ${name}`);
  for (const h of entry.holders) {
    try {
      const manifest = await fetchManifest(h, name, entry.cid, opts.timeoutMs);
      if (manifest.mtime !== entry.mtime) manifest.mtime = entry.mtime; // the directory's mtime is the one to set
      return { manifest, holders: entry.holders, source: `tracker ${trackerAddr}`, skipped };
    } catch (err) {
      skipped.push({ peer: `${h.ip}:${h.port}`, reason: (err as Error).message });
    }
  }
  throw new SwarmError(ERROR_CODES.NO_PEERS, `no holder of ${name} answered: ${skipped.map((s) => `${s.peer}: ${s.reason}`).join('; ')}`);
}
