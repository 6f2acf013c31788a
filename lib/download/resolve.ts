/**
 * Turning a NAME into what a download needs: the version to fetch (content id, size, mtime), its
 * manifest, and every peer that holds it.
 *
 * Every source that is enabled is asked at once and the answers merged by content id: a tracker
 * (every version of NAME), named peers (--peer: each is asked what it shares under NAME), and the
 * finders a node adds (the overlay and the LAN: discovery/). The version asked for with
 * `--version` is fetched, else the newest (more holders on a tie).
 *
 * The manifest is asked of all holders of that version at once; the first that hashes to the
 * content id wins, so a holder that is silent or lies costs at most MANIFEST_TIMEOUT_MS and never
 * delays the others. A holder that failed before one answered (its manifest did not hash to the
 * content id: it lied about what it holds; or it refused) is left out of the download. A manifest
 * is data about a content id: the name plays no part in it. Versions that tie for newest (same
 * mtime: a liar can always claim the honest version's mtime with another content id) are asked
 * at once, and the first of them in order of preference (more holders) whose manifest is valid
 * wins. When no holder of the newest version can give one, the error says so and names the other
 * versions (`swarm get NAME --version CID`), rather than silently falling back to an older file.
 * A version held only by stock seed-002 peers (no hashes: anyone may register one with any mtime)
 * is fetched only when no verified version exists or when `--version legacy:MTIME` names it.
 */
import { DEFAULT_PEER_PORT } from '../constants.js';
import { ERROR_CODES, SwarmError, isIntegrityCode } from '../errors.js';
import { parseHostPort } from '../net/framed-client.js';
import { PeerClient } from '../peer/client.js';
import { trackerVersions } from '../tracker/client.js';
import { isLegacyCid } from '../protocol/entries.js';
import type { Manifest } from '../manifest.js';
import { addressText, type PeerAddress, type Version } from '../types.js';

export const MANIFEST_TIMEOUT_MS = 5_000;
/** Versions tying for newest that are tried at once. */
const MAX_TIED_VERSIONS = 8;

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

/**
 * A version held only by stock seed-002 peers (content id "legacy:<mtime>"): no manifest, no
 * hashes, often no size. It is fetched whole by plain-name request, one holder at a time
 * (legacy-fetch.ts), and checked against the size when the directory gives one.
 */
export interface StockTarget {
  kind: 'stock';
  name: string;
  cid: string;
  mtime: number;
  /** Bytes the directory gives for it, or -1 (a Table 1 registration carries no size). */
  size: number;
  holders: PeerAddress[];
  source: string;
  skipped: { peer: string; reason: string }[];
  others: Version[];
}

export function isStockTarget(t: Target | StockTarget): t is StockTarget {
  return (t as StockTarget).kind === 'stock';
}

export interface ResolveOptions {
  tracker?: string;
  peers?: string[];
  /** A content id (or a unique prefix of at least 8 hex digits) to fetch instead of the newest. */
  version?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Do not ask a tracker (`--no-tracker`). */
  noTracker?: boolean;
  /** More places to find holders (the overlay, the LAN), merged with the others. */
  finders?: VersionFinder[];
  /** The version and its holders, already known (sync): no source is asked, only manifests by content id. */
  known?: Version;
}

export { defaultTracker } from '../constants.js';
import { defaultTracker, trackerNamed } from '../constants.js';

const addr = addressText;

/** Run `fn` on a connection to `a`, closed afterwards and when `signal` aborts. */
/**
 * A holder that answers BUSY (full of connections, none of them idle) is asked again a little
 * later, BUSY_RETRIES times: a server under attack evicts stuck connections within seconds.
 */
const BUSY_RETRIES = 3;
const BUSY_WAIT_MS = 700;

async function onPeer<T>(a: PeerAddress, timeoutMs: number, signal: AbortSignal | undefined, fn: (c: PeerClient) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await onPeerOnce(a, timeoutMs, signal, fn);
    } catch (err) {
      if ((err as SwarmError).code !== ERROR_CODES.BUSY || attempt >= BUSY_RETRIES || signal?.aborted) throw err;
      await new Promise((r) => setTimeout(r, BUSY_WAIT_MS * (attempt + 1)));
    }
  }
}

async function onPeerOnce<T>(a: PeerAddress, timeoutMs: number, signal: AbortSignal | undefined, fn: (c: PeerClient) => Promise<T>): Promise<T> {
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
    let settled = false;
    const manifest = await new Promise<Manifest | null>((resolve) => {
      let left = holders.length;
      if (left === 0) resolve(null);
      for (const h of holders) {
        onPeer(h, timeoutMs, inner.signal, (c) => c.manifest(cid, timeoutMs)).then(
          (m) => {
            settled = true;
            resolve(m);
          },
          (err: SwarmError) => {
            // after the race is won, the rest were cut short by us: not their failure
            if (settled) return;
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
  throw new SwarmError(ERROR_CODES.NOT_FOUND, `version ${want} of ${name} is not held by ${where} (held: ${versions.map((v) => v.cid.slice(0, 16)).join(', ')})`);
}

export function describeVersions(versions: Version[]): string {
  return versions
    .map((v) => `${v.cid.slice(0, 16)} (modified ${new Date(v.mtime * 1000).toISOString().slice(0, 19).replace('T', ' ')} UTC, ${v.size} bytes, ${v.holders.length + v.partial.length} holder(s))`)
    .join('; ');
}

/**
 * The newest version is held only by stock seed-002 peers: a verified version with the same mtime
 * is preferred (it has hashes); otherwise the stock holders are the download's (legacy-fetch.ts).
 */
function stockOrVerified(name: string, versions: Version[], first: Version, source: string, skipped: Target['skipped']): Version | StockTarget {
  const verifiedTie = versions.find((v) => v.mtime === first.mtime && !isLegacyCid(v.cid));
  if (verifiedTie) return verifiedTie;
  const stock = versions.filter((v) => v.mtime === first.mtime && isLegacyCid(v.cid));
  const holders = mergeVersions(stock.map((v) => [v]))
    .flatMap((v) => [...v.holders, ...v.partial])
    .filter((h, i, all) => all.findIndex((o) => o.ip === h.ip && o.port === h.port) === i);
  const sizes = stock.map((v) => v.size).filter((n) => n >= 0);
  return { kind: 'stock', name, cid: first.cid, mtime: first.mtime, size: sizes.length ? sizes[0]! : -1, holders, source, skipped, others: versions.filter((v) => !stock.includes(v)) };
}

async function resolveVersion(name: string, versions: Version[], opts: ResolveOptions, source: string, skipped: Target['skipped']): Promise<Target | StockTarget> {
  let first: Version;
  if (isLegacyCid(opts.version ?? '')) {
    // the stock version asked for, or nothing (never a fallback to another version)
    const asked = versions.find((v) => v.cid === opts.version);
    if (!asked) throw new SwarmError(ERROR_CODES.NOT_FOUND, `version ${opts.version} of ${name} is not held by ${source} (held: ${versions.map((v) => v.cid.slice(0, 16)).join(', ')})`);
    first = asked;
  } else first = pickVersion(name, versions, opts.version, source);
  // a version only stock seed-002 peers hold cannot be checked (no hash): anyone can register one
  // with a newer mtime. The newest verified version is fetched instead unless it was asked for.
  const verified = isLegacyCid(first.cid) && !opts.version ? versions.find((v) => !isLegacyCid(v.cid)) : undefined;
  if (verified && verified.mtime !== first.mtime) {
    skipped.push({ peer: source, reason: `a newer version (modified ${new Date(first.mtime * 1000).toISOString().slice(0, 19).replace('T', ' ')} UTC) is held only by stock seed-002 peers and cannot be verified; the newest verified version is fetched instead (swarm get ${JSON.stringify(name)} --version ${first.cid} fetches the other)` });
    first = verified;
  }
  if (isLegacyCid(first.cid)) {
    const chosen = stockOrVerified(name, versions, first, source, skipped);
    if ('kind' in chosen) return chosen;
    first = chosen;
  }
  const tied = opts.version ? [first] : versions.filter((v) => v.mtime === first.mtime && !isLegacyCid(v.cid)).slice(0, MAX_TIED_VERSIONS);
  // every tied version is asked at once; the first in order of preference with a valid manifest
  // wins, and the connections still asking close then
  const asking = new AbortController();
  const onAbort = () => asking.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const attempts = tied.map((v) => fetchManifest([...v.holders, ...v.partial], v.cid, { ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}), signal: asking.signal }));
    for (const a of attempts) a.catch(() => {}); // each is awaited in turn, or given up when one wins
    const failed: { v: Version; err: SwarmError }[] = [];
    let won: { chosen: Version; manifest: Manifest; failures: { peer: string; code: string; reason: string }[] } | null = null;
    for (let i = 0; i < attempts.length && !won; i++) {
      try {
        won = { chosen: tied[i]!, ...(await attempts[i]!) };
      } catch (err) {
        failed.push({ v: tied[i]!, err: err as SwarmError });
      }
    }
    asking.abort();
    opts.signal?.throwIfAborted();
    if (!won) {
      const e = failed[0]!.err;
      if (e.code === ERROR_CODES.INTERRUPTED || (e as Error).name === 'AbortError') throw e;
      const which = opts.version ? `version ${first.cid.slice(0, 16)}` : `the newest version (${tied.map((v) => v.cid.slice(0, 16)).join(', ')})`;
      const offer = versions.filter((v) => !tied.includes(v) && !isLegacyCid(v.cid));
      const hint = offer.length ? `; other versions: ${describeVersions(offer)}: fetch one with swarm get ${JSON.stringify(name)} --version CID` : '';
      throw new SwarmError(e.code ?? ERROR_CODES.NO_PEERS, `no holder of ${which} of ${name} gave a valid manifest: ${e.message}${hint}`, { versions: offer.map((v) => v.cid) });
    }
    const { chosen, manifest, failures } = won;
    // holders that failed before one answered (a manifest that lies, an error, a refused
    // connection) are left out; those still on their way then are kept
    const leftOut = new Set(failures.map((f) => f.peer));
    for (const f of failures) skipped.push({ peer: f.peer, reason: f.reason });
    for (const { v, err } of failed) skipped.push({ peer: source, reason: `version ${v.cid.slice(0, 16)} (same modification time, no valid manifest): ${err.message}` });
    if (manifest.size !== chosen.size && chosen.size >= 0) skipped.push({ peer: source, reason: `announced ${chosen.size} bytes, the manifest says ${manifest.size}` });
    const holders = [...chosen.holders, ...chosen.partial].filter((h) => !leftOut.has(addr(h)));
    return { name, mtime: chosen.mtime, manifest, holders, source, skipped, others: versions.filter((v) => v !== chosen) };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    asking.abort();
  }
}

/**
 * A place to find holders of a name besides the tracker and named peers: the overlay, the LAN
 * (discovery/). Its versions are merged with the others' by content id.
 */
export interface VersionFinder {
  label: string;
  versions(name: string, signal?: AbortSignal): Promise<Version[]>;
}

/** Versions from several sources as one list, merged by content id (the first source's mtime wins), newest first. */
export function mergeVersions(lists: Version[][]): Version[] {
  const byCid = new Map<string, Version>();
  const key = (a: PeerAddress) => `${a.ip}|${a.port}`;
  for (const list of lists) {
    for (const v of list) {
      const m = byCid.get(v.cid);
      if (!m) {
        byCid.set(v.cid, { cid: v.cid, size: v.size, mtime: v.mtime, holders: [...v.holders], partial: [...v.partial] });
        continue;
      }
      const have = new Set([...m.holders, ...m.partial].map(key));
      for (const h of v.holders) if (!have.has(key(h))) (have.add(key(h)), m.holders.push(h));
      for (const h of v.partial) if (!have.has(key(h))) (have.add(key(h)), m.partial.push(h));
    }
  }
  return [...byCid.values()].sort((x, y) => y.mtime - x.mtime || y.holders.length + y.partial.length - (x.holders.length + x.partial.length));
}

async function namedPeerVersions(name: string, peers: string[], timeoutMs: number, opts: ResolveOptions, skipped: Target['skipped']): Promise<Version[]> {
  const addrs = peers.map((p) => parseHostPort(p, DEFAULT_PEER_PORT)).map(({ host, port }) => ({ ip: host, port }));
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
    if (allNotFound) throw new SwarmError(ERROR_CODES.NOT_FOUND, `no named peer has ${name}`);
    // every named peer an older swarm: say so with its own code (exit 7), not "no peers"
    const allOld = answers.every((x) => x.code === ERROR_CODES.VERSION);
    throw new SwarmError(allOld ? ERROR_CODES.VERSION : ERROR_CODES.NO_PEERS, `no named peer could serve ${name}: ${skipped.map((s) => `${s.peer}: ${s.reason}`).join('; ')}`);
  }
  const byCid = new Map<string, Version>();
  for (const { a, f } of good) {
    const v = byCid.get(f!.cid);
    if (v) v.holders.push(a);
    else byCid.set(f!.cid, { cid: f!.cid, size: f!.size, mtime: f!.mtime, holders: [a], partial: [] });
  }
  return [...byCid.values()].sort((x, y) => y.mtime - x.mtime || y.holders.length - x.holders.length);
}

/**
 * Every enabled source is asked at once: named peers (`--peer`), the tracker (unless there are
 * named peers and no tracker was named, or `noTracker`), and the host's finders (overlay, LAN).
 * Their answers are merged by content id. A source that fails while another answers is a warning
 * (in `skipped`); when all fail, the first one's error is the download's.
 */
export async function resolveTarget(name: string, opts: ResolveOptions): Promise<Target | StockTarget> {
  const skipped: Target['skipped'] = [];
  if (opts.known) return resolveVersion(name, [opts.known], { ...opts, version: opts.known.cid }, 'the peers that have it', skipped);
  const timeoutMs = opts.timeoutMs ?? MANIFEST_TIMEOUT_MS;
  const named = opts.peers && opts.peers.length > 0 ? opts.peers : null;
  const tracker = opts.noTracker || (named && !opts.tracker) ? null : defaultTracker(opts.tracker);
  // the local default tracker that is not running is no news when other sources answered
  const quiet = new Set<string>();
  const asks: { label: string; versions: Promise<Version[]> }[] = [];
  if (named) asks.push({ label: 'the named peers', versions: namedPeerVersions(name, named, timeoutMs, opts, skipped) });
  if (tracker) {
    if (!trackerNamed(opts.tracker) && (opts.finders?.length ?? 0) > 0) quiet.add(`tracker ${tracker}`);
    asks.push({
      label: `tracker ${tracker}`,
      versions: trackerVersions(tracker, name).then((r) => {
        if (r.versions.length === 0) throw new SwarmError(ERROR_CODES.NOT_FOUND, `no peer in the swarm of ${tracker} has ${name}`);
        return r.versions;
      }),
    });
  }
  for (const f of opts.finders ?? []) {
    asks.push({
      label: f.label,
      versions: f.versions(name, opts.signal).then((v) => {
        if (v.length === 0) throw new SwarmError(ERROR_CODES.NOT_FOUND, `${f.label} found no peer that has ${name}`);
        return v;
      }),
    });
  }
  if (asks.length === 0) throw new SwarmError(ERROR_CODES.NO_PEERS, `nowhere to look for ${name}: no tracker, no --peer, no --neighbor or --lan`);
  const settled = await Promise.allSettled(asks.map((a) => a.versions));
  opts.signal?.throwIfAborted();
  const lists: Version[][] = [];
  const used: string[] = [];
  const errors: SwarmError[] = [];
  settled.forEach((r, i) => {
    if (r.status === 'fulfilled') {
      lists.push(r.value);
      used.push(asks[i]!.label);
    } else errors.push(r.reason as SwarmError);
  });
  if (lists.length === 0) {
    // all failed: "not found" only when every source said so; otherwise the first failure that was not
    const notFound = errors.every((e) => e.code === ERROR_CODES.NOT_FOUND);
    throw notFound ? errors[0]! : errors.find((e) => e.code !== ERROR_CODES.NOT_FOUND)!;
  }
  settled.forEach((r, i) => {
    if (r.status === 'rejected' && (r.reason as SwarmError).code !== ERROR_CODES.NOT_FOUND && !quiet.has(asks[i]!.label)) skipped.push({ peer: asks[i]!.label, reason: (r.reason as Error).message });
  });
  return resolveVersion(name, mergeVersions(lists), opts, used.join(' and '), skipped);
}
