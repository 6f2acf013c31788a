/**
 * Turning a NAME into what a download needs: the version to fetch (content id, size, mtime), its
 * manifest, and every peer that holds it.
 *
 * With a tracker: every version of NAME (newest first); the one asked for with `--version`, else
 * the newest. With named peers (--peer): each is asked what it shares under NAME, in parallel, and
 * the newest version among the answers wins (more holders on a tie).
 *
 * The manifest is asked of all holders of that version at once; the first that hashes to the
 * content id wins, so a holder that is silent or lies costs at most MANIFEST_TIMEOUT_MS and never
 * delays the others. A manifest is data about a content id: the name plays no part in it. When no
 * holder of the chosen version can give one, the error says so and names the other versions
 * (`swarm get NAME --version CID`), rather than silently falling back to an older file.
 */
import { DEFAULT_PEER_PORT } from '../constants.js';
import { ERROR_CODES, SwarmError, isIntegrityCode } from '../errors.js';
import { parseHostPort } from '../net/framed-client.js';
import { PeerClient } from '../peer/client.js';
import { trackerVersions } from '../tracker/client.js';
import { isLegacyCid } from '../protocol/entries.js';
import type { Manifest } from '../manifest.js';
import type { PeerAddress, Version } from '../types.js';
import { DEFAULT_TRACKER_PORT } from '../constants.js';

export const MANIFEST_TIMEOUT_MS = 5_000;

export interface Target {
  name: string;
  /** The mtime to give the finished file (the directory's, or the named peers'). */
  mtime: number;
  manifest: Manifest;
  holders: PeerAddress[];
  /** Where the holders came from, for messages. */
  source: string;
  /** Peers that were asked but are left out, with why. */
  skipped: { peer: string; reason: string }[];
  /** Other versions of the name that were seen, newest first (for messages and `who`). */
  others: Version[];
}

export interface ResolveOptions {
  tracker?: string;
  peers?: string[];
  /** A content id (or a unique prefix of at least 8 hex digits) to fetch instead of the newest. */
  version?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export function defaultTracker(explicit?: string): string {
  return explicit ?? process.env.SWARM_TRACKER ?? `127.0.0.1:${DEFAULT_TRACKER_PORT}`;
}

const addr = (a: PeerAddress) => (a.ip.includes(':') ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`);

/** Run `fn` on a connection to `a`, closed afterwards and when `signal` aborts. */
async function onPeer<T>(a: PeerAddress, timeoutMs: number, signal: AbortSignal | undefined, fn: (c: PeerClient) => Promise<T>): Promise<T> {
  const c = new PeerClient(a.ip, a.port, { timeoutMs });
  const stop = () => c.destroy(new SwarmError(ERROR_CODES.INTERRUPTED, 'interrupted'));
  signal?.addEventListener('abort', stop, { once: true });
  try {
    await c.connect();
    return await fn(c);
  } finally {
    signal?.removeEventListener('abort', stop);
    c.destroy();
  }
}

/** The manifest of `cid` from whichever holder answers first with one that matches. */
export async function fetchManifest(holders: PeerAddress[], cid: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<{ manifest: Manifest; failures: { peer: string; code: string; reason: string }[] }> {
  const failures: { peer: string; code: string; reason: string }[] = [];
  const timeoutMs = opts.timeoutMs ?? MANIFEST_TIMEOUT_MS;
  const inner = new AbortController();
  const onAbort = () => inner.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const manifest = await new Promise<Manifest | null>((resolve) => {
      let left = holders.length;
      if (left === 0) resolve(null);
      for (const h of holders) {
        onPeer(h, timeoutMs, inner.signal, (c) => c.manifest(cid, timeoutMs)).then(
          (m) => resolve(m),
          (err: SwarmError) => {
            failures.push({ peer: addr(h), code: err.code ?? ERROR_CODES.INTERNAL, reason: err.message });
            if (--left === 0) resolve(null);
          },
        );
      }
    });
    opts.signal?.throwIfAborted();
    if (!manifest) {
      const lied = failures.filter((f) => isIntegrityCode(f.code));
      const code = lied.length === failures.length && lied.length > 0 ? ERROR_CODES.MANIFEST_MISMATCH : ERROR_CODES.NO_PEERS;
      throw new SwarmError(code, failures.map((f) => `${f.peer}: ${f.reason}`).join('; ') || 'no holder');
    }
    return { manifest, failures };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    inner.abort(); // the race is over: close the connections still asking
  }
}

function pickVersion(name: string, versions: Version[], want: string | undefined, where: string): Version {
  if (!want) return versions[0]!;
  const w = want.toLowerCase();
  if (!/^[0-9a-f]{8,64}$/.test(w)) throw new SwarmError(ERROR_CODES.USAGE, `--version wants a content id (at least 8 hex digits), got ${JSON.stringify(want)}`);
  const matches = versions.filter((v) => v.cid.startsWith(w));
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) throw new SwarmError(ERROR_CODES.USAGE, `--version ${want} matches ${matches.length} versions of ${name}; give more digits`);
  throw new SwarmError(ERROR_CODES.NOT_FOUND, `${where} has no version ${want} of ${name} (it has: ${versions.map((v) => v.cid.slice(0, 16)).join(', ')})`);
}

export function describeVersions(versions: Version[]): string {
  return versions
    .map((v) => `${v.cid.slice(0, 16)} (modified ${new Date(v.mtime * 1000).toISOString().slice(0, 19).replace('T', ' ')} UTC, ${v.size} bytes, ${v.holders.length + v.partial.length} holder(s))`)
    .join('; ');
}

async function resolveVersion(name: string, versions: Version[], opts: ResolveOptions, source: string, skipped: Target['skipped']): Promise<Target> {
  const chosen = pickVersion(name, versions, opts.version, source);
  const others = versions.filter((v) => v !== chosen);
  if (isLegacyCid(chosen.cid)) {
    throw new SwarmError(ERROR_CODES.NOT_FOUND, `${name} is held only by stock seed-002 peers, which publish no content id; swarm get fetches verified content only`);
  }
  const holders = [...chosen.holders, ...chosen.partial];
  try {
    const { manifest, failures } = await fetchManifest(holders, chosen.cid, opts);
    for (const f of failures) skipped.push({ peer: f.peer, reason: f.reason });
    if (manifest.size !== chosen.size && chosen.size >= 0) skipped.push({ peer: source, reason: `announced ${chosen.size} bytes, the manifest says ${manifest.size}` });
    return { name, mtime: chosen.mtime, manifest, holders, source, skipped, others };
  } catch (err) {
    const e = err as SwarmError;
    if (e.code === ERROR_CODES.INTERRUPTED || (e as Error).name === 'AbortError') throw err;
    const which = opts.version ? `version ${chosen.cid.slice(0, 16)}` : `the newest version (${chosen.cid.slice(0, 16)})`;
    const offer = others.filter((v) => !isLegacyCid(v.cid));
    const hint = offer.length ? `; other versions: ${describeVersions(offer)}: fetch one with swarm get ${JSON.stringify(name)} --version CID` : '';
    throw new SwarmError(e.code, `no holder of ${which} of ${name} gave a valid manifest: ${e.message}${hint}`, { versions: offer.map((v) => v.cid) });
  }
}

export async function resolveTarget(name: string, opts: ResolveOptions): Promise<Target> {
  const skipped: Target['skipped'] = [];
  const timeoutMs = opts.timeoutMs ?? MANIFEST_TIMEOUT_MS;
  if (opts.peers && opts.peers.length > 0) {
    const addrs = opts.peers.map((p) => parseHostPort(p, DEFAULT_PEER_PORT)).map(({ host, port }) => ({ ip: host, port }));
    const unique = [...new Map(addrs.map((a) => [addr(a), a])).values()];
    const answers = await Promise.all(
      unique.map((a) =>
        onPeer(a, timeoutMs, opts.signal, (c) => c.stat(name, timeoutMs)).then(
          (f) => ({ a, f, code: null as string | null }),
          (err: SwarmError) => {
            skipped.push({ peer: addr(a), reason: err.message });
            return { a, f: null, code: err.code };
          },
        ),
      ),
    );
    opts.signal?.throwIfAborted();
    const good = answers.filter((x) => x.f);
    if (good.length === 0) {
      const allNotFound = answers.every((x) => x.code === ERROR_CODES.NOT_FOUND);
      throw new SwarmError(allNotFound ? ERROR_CODES.NOT_FOUND : ERROR_CODES.NO_PEERS, allNotFound ? `no named peer has ${name}` : `no named peer could serve ${name}: ${skipped.map((s) => `${s.peer}: ${s.reason}`).join('; ')}`);
    }
    const byCid = new Map<string, Version>();
    for (const { a, f } of good) {
      const v = byCid.get(f!.cid);
      if (v) v.holders.push(a);
      else byCid.set(f!.cid, { cid: f!.cid, size: f!.size, mtime: f!.mtime, holders: [a], partial: [] });
    }
    const versions = [...byCid.values()].sort((x, y) => y.mtime - x.mtime || y.holders.length - x.holders.length);
    return resolveVersion(name, versions, opts, 'the named peers', skipped);
  }
  const tracker = defaultTracker(opts.tracker);
  const { versions } = await trackerVersions(tracker, name);
  opts.signal?.throwIfAborted();
  if (versions.length === 0) throw new SwarmError(ERROR_CODES.NOT_FOUND, `no peer in the swarm of ${tracker} has ${name}`);
  return resolveVersion(name, versions, opts, `tracker ${tracker}`, skipped);
}
