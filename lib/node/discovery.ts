/**
 * How a node finds peers and files without (or beside) a tracker: its peer book filled from
 * `--neighbor`, the LAN (seed 004's announcements), the tracker and DISCOVER answers; searches
 * over the overlay merged with the tracker's directory; the overlay as a holder finder for `get`.
 * Every source that fails is a warning, never the command's failure while another answers.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { ERROR_CODES, SwarmError } from '../errors.js';
import { parseHostPort } from '../net/framed-client.js';
import { PeerClient } from '../peer/client.js';
import { DEFAULT_PEER_PORT } from '../constants.js';
import { trackerDirectory, trackerVersions } from '../tracker/client.js';
import { kindOf } from '../share/kinds.js';
import { LanDiscovery, type LanPeer } from '../discovery/lan.js';
import { matcher, MAX_PATTERN_CHARS } from '../discovery/flood.js';
import { overlayFinder, searchOverlay, unreachableText, ResultSet, DEFAULT_SEARCH_TTL, DEFAULT_SEARCH_WAIT_MS, SEARCH_QUIET_MS, type SearchResult } from '../discovery/search.js';
import type { KnownPeer, PeerBook } from '../discovery/peer-book.js';
import type { Overlay, Pong } from '../discovery/overlay.js';
import type { VersionFinder } from '../download/resolve.js';
import type { HelloFields } from '../protocol/messages.js';
import type { Log } from '../log.js';
import type { PeerAddress } from '../types.js';
/** Names with older versions whose every version a search asks the tracker for (one connection each). */
const MAX_VERSION_QUERIES = 16;

export interface LanSettings {
  /** UDP port of the announcements (default 7071). */
  port?: number;
  /** Where announcements are sent (default 255.255.255.255; tests: 127.255.255.255). */
  broadcast?: string;
  /** Local address of the UDP socket (default 0.0.0.0). */
  bind?: string;
  /** Re-announce period (default 5 s). */
  intervalMs?: number;
}

/** What discovery needs of its node (node.ts implements it). */
export interface DiscoveryHost {
  readonly book: PeerBook;
  readonly overlay: Overlay;
  readonly peerId: string;
  readonly hello: HelloFields;
  lan: LanDiscovery | null;
  port: number;
  /** The tracker this node talks to, or null (none, or --no-tracker). */
  trackerAddress(): string | null;
  /** Where this node serves (for the LAN: is it reachable from other machines?). */
  host: string;
  /** Tell the user something is off (the node's warning event). */
  warn(message: string): void;
}

/** A LAN peer's `stop` is believed only if it no longer answers as itself within this long. */
const STOP_PROBE_MS = 1_500;
/** With --lan and no peer known yet, how long `get` and `search` wait to hear the LAN first. */
export const LAN_FIRST_WAIT_MS = 1_500;
/** After the first LAN peer is heard, how long the others answering the same question get too. */
export const LAN_SETTLE_MS = 200;

/** `host:port` strings as addresses, names looked up (a neighbour is kept by IP). */
export async function resolveAddresses(list: string[]): Promise<PeerAddress[]> {
  const out: PeerAddress[] = [];
  for (const s of list) {
    const { host, port } = parseHostPort(s, DEFAULT_PEER_PORT);
    if (isIP(host)) {
      out.push({ ip: host, port });
      continue;
    }
    try {
      out.push({ ip: (await lookup(host)).address, port });
    } catch (err) {
      throw new SwarmError(ERROR_CODES.USAGE, `cannot resolve ${host} (from ${s}): ${(err as Error).message}`);
    }
  }
  return out;
}

export interface SearchOptions {
  ttl?: number;
  waitMs?: number;
  /** Ask the tracker's directory too (default: when the node has one). */
  tracker?: boolean;
  /** No warning when the tracker cannot be reached and the overlay is asked (it was only the default). */
  quietTracker?: boolean;
  signal?: AbortSignal;
}

/** Named neighbours whose link is down are tried again this often (they learn of us when it opens). */
const RELINK_MS = 30_000;

export class NodeDiscovery {
  private lanHeard: (() => void)[] = [];
  private relink: NodeJS.Timeout | null = null;

  constructor(
    private readonly node: DiscoveryHost,
    private readonly log: Log,
  ) {}

  /**
   * Open links to the named neighbours now, and again every RELINK_MS while one is down: a
   * neighbour learns of us from our hello (links are two-way), before anyone searches.
   */
  linkNeighbours(): void {
    const n = this.node;
    const named = () => n.book.list().filter((k) => k.sources.includes('neighbor'));
    for (const k of named()) n.overlay.connect(k);
    if (this.relink || named().length === 0) return;
    this.relink = setInterval(() => {
      for (const k of named()) if (n.overlay.linkState(k).state !== 'up') n.overlay.connect(k);
    }, RELINK_MS);
    this.relink.unref();
  }

  stop(): void {
    if (this.relink) clearInterval(this.relink);
    this.relink = null;
  }

  /** Join the LAN: announce our transfer port (when we serve) and add the peers we hear. */
  async startLan(s: LanSettings): Promise<void> {
    const n = this.node;
    const loopbackHost = /^127\.|^::1$|^localhost$/.test(n.host);
    const loopbackBroadcast = /^127\./.test(s.broadcast ?? '255.255.255.255');
    if (n.port && loopbackHost && !loopbackBroadcast) {
      n.warn(`--lan announces port ${n.port}, but this peer listens on ${n.host} only: other machines will hear of it and cannot connect (listen with --host 0.0.0.0)`);
    }
    const lan = await LanDiscovery.start({
      peerId: n.peerId,
      transferPort: n.port,
      ...(s.port !== undefined ? { port: s.port } : {}),
      ...(s.broadcast !== undefined ? { broadcast: s.broadcast } : {}),
      ...(s.bind !== undefined ? { bind: s.bind } : {}),
      ...(s.intervalMs !== undefined ? { intervalMs: s.intervalMs } : {}),
      verifyStop: (p) => stillThere(p, n.hello),
      log: this.log,
    });
    n.lan = lan;
    // the address each LAN peer id was last heard at: a peer that moves to another port is
    // announced `up` again with no `down` for the old address, which is forgotten here
    const at = new Map<string, PeerAddress>();
    lan.on('up', (p: LanPeer) => {
      const old = at.get(p.peer);
      if (old && (old.ip !== p.ip || old.port !== p.port)) n.book.remove(old, 'lan');
      at.set(p.peer, { ip: p.ip, port: p.port });
      n.book.add({ ip: p.ip, port: p.port }, 'lan', p.peer);
      for (const f of this.lanHeard.splice(0)) f();
    });
    // a LAN peer pushed out of a full book comes back with its next announcement
    lan.on('seen', (p: LanPeer) => {
      if (!n.book.has({ ip: p.ip, port: p.port })) n.book.add({ ip: p.ip, port: p.port }, 'lan', p.peer);
    });
    lan.on('down', (p: LanPeer) => {
      at.delete(p.peer);
      n.book.remove({ ip: p.ip, port: p.port }, 'lan');
    });
  }

  /** With the LAN on and no peer known, wait a moment for the first announcement (and the others right behind it). */
  private async lanFirst(signal?: AbortSignal): Promise<void> {
    if (!this.node.lan || this.node.book.size > 0) return;
    await new Promise<void>((resolve) => {
      let settle: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(t);
        clearTimeout(settle);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, LAN_FIRST_WAIT_MS);
      signal?.addEventListener('abort', done, { once: true });
      // the LAN's peers answer our question within moments of each other: asking as soon as the
      // first was heard asked it alone ("1 of 1 neighbour" with two peers there)
      this.lanHeard.push(() => {
        clearTimeout(t);
        settle ??= setTimeout(done, LAN_SETTLE_MS);
      });
    });
  }

  /** The overlay as a holder finder for `get`, when this node has neighbours or the LAN. */
  finders(): VersionFinder[] {
    const n = this.node;
    if (n.book.size === 0 && !n.lan) return [];
    const inner = overlayFinder(n.overlay);
    return [
      {
        label: n.lan ? 'the overlay and LAN' : 'the overlay',
        versions: async (name, signal) => {
          await this.lanFirst(signal);
          return inner.versions(name, signal);
        },
      },
    ];
  }

  /**
   * Files whose name matches `pattern` (case-insensitive substring, or a glob with * and ?), from
   * the overlay (SEARCH within `ttl` hops) and the tracker's directory, merged by name and content id.
   */
  async search(pattern: string, o: SearchOptions = {}): Promise<{ results: SearchResult[]; asked: string[]; warnings: string[] }> {
    if (pattern.length === 0 || pattern.length > MAX_PATTERN_CHARS) throw new SwarmError(ERROR_CODES.USAGE, `a search pattern has 1 to ${MAX_PATTERN_CHARS} characters`);
    const n = this.node;
    const set = new ResultSet();
    const asked: string[] = [];
    const warnings: string[] = [];
    const tracker = o.tracker === false ? null : n.trackerAddress();
    const jobs: Promise<void>[] = [];
    let trackerFailed: string | null = null;
    if (tracker) {
      const match = matcher(pattern);
      jobs.push(
        trackerDirectory(tracker).then(
          async ({ entries }) => {
            asked.push(`tracker ${tracker}`);
            const older: string[] = [];
            for (const [name, e] of entries) {
              if (!match(name)) continue;
              set.add({ name, kind: kindOf(name), size: e.size, mtime: e.mtime, cid: e.cid }, [...e.holders, ...e.partial], 'tracker');
              if (e.versions > 1 && older.length < MAX_VERSION_QUERIES) older.push(name);
            }
            // the directory lists the newest version of each name; a search lists every version
            await Promise.all(
              older.map((name) =>
                trackerVersions(tracker, name).then(
                  ({ versions }) => {
                    for (const v of versions) set.add({ name, kind: kindOf(name), size: v.size, mtime: v.mtime, cid: v.cid }, [...v.holders, ...v.partial], 'tracker');
                  },
                  () => undefined,
                ),
              ),
            );
          },
          (err: Error) => {
            trackerFailed = err.message.includes(tracker) ? err.message : `tracker ${tracker}: ${err.message}`;
            // the local default tracker not running is no news when the overlay was asked too
            if (o.quietTracker && (n.book.size > 0 || n.lan)) return;
            warnings.push(trackerFailed);
          },
        ),
      );
    }
    let overlayFailed: string | null = null;
    if (n.book.size > 0 || n.lan) {
      jobs.push(
        (async () => {
          await this.lanFirst(o.signal);
          const ttl = o.ttl ?? DEFAULT_SEARCH_TTL;
          const r = await searchOverlay(n.overlay, pattern, { ttl, waitMs: o.waitMs ?? DEFAULT_SEARCH_WAIT_MS, ...(o.signal ? { signal: o.signal } : {}) });
          const lan = new Set((n.lan?.peers() ?? []).map((p) => `${p.ip}|${p.port}`));
          set.addHits(r.hits, (a) => lan.has(`${a.ip}|${a.port}`));
          const up = r.asked - r.unreachable.length;
          if (r.asked > 0 && up === 0) overlayFailed = `no neighbour answered: ${unreachableText(r.unreachable)}`;
          else {
            asked.push(`${n.lan ? 'the overlay and LAN' : 'the overlay'} [${up} of ${r.asked} ${r.asked === 1 ? 'neighbour' : 'neighbours'}, TTL ${ttl}]`);
            if (r.unreachable.length) warnings.push(`${r.unreachable.length === 1 ? 'a neighbour' : `${r.unreachable.length} neighbours`} did not answer: ${unreachableText(r.unreachable)}`);
          }
          if (r.asked === 0) overlayFailed = n.lan ? 'no peer heard on the LAN yet' : 'no neighbour to ask';
          if (r.capped) warnings.push(`some peers sent as many matches as one answer holds (50 each); there may be more: narrow the pattern`);
        })(),
      );
    }
    if (jobs.length === 0) throw new SwarmError(ERROR_CODES.NO_PEERS, 'nowhere to search: no tracker, no --neighbor, no --lan');
    await Promise.all(jobs);
    // nothing answered at all: that is "no peers" (exit 4), not "nothing matches" (exit 3)
    if (overlayFailed && asked.length === 0) throw new SwarmError(ERROR_CODES.NO_PEERS, trackerFailed ? `${overlayFailed}; ${trackerFailed}` : overlayFailed);
    // the tracker was the only source and it did not answer: nobody was asked
    if (trackerFailed && asked.length === 0) throw new SwarmError(ERROR_CODES.TRACKER_UNREACHABLE, trackerFailed);
    if (overlayFailed) warnings.push(overlayFailed);
    return { results: set.results(), asked, warnings };
  }

  /** Seed 001's DISCOVER: learn the peers within `ttl` hops; resolves with those that answered. */
  async discoverPeers(ttl: number, waitMs = DEFAULT_SEARCH_WAIT_MS, signal?: AbortSignal): Promise<Pong[]> {
    await this.lanFirst(signal);
    const n = this.node;
    const pongs: Pong[] = [];
    await new Promise<void>((resolve) => {
      let quiet: NodeJS.Timeout | null = null;
      const d = n.overlay.discover(ttl, (p) => {
        if (pongs.length >= 4096) return;
        pongs.push(p);
        n.book.add(p.addr, 'discover', p.peer);
        // like a search: done a moment after the last answer, not at the end of the wait
        if (quiet) quiet.refresh();
        else quiet = setTimeout(done, SEARCH_QUIET_MS);
      });
      const done = () => {
        d.stop();
        clearTimeout(t);
        if (quiet) clearTimeout(quiet);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, d.neighbours === 0 ? 0 : waitMs);
      signal?.addEventListener('abort', done, { once: true });
    });
    return pongs;
  }

  /** Every known peer, with where it came from and when it was last seen. */
  peers(): KnownPeer[] {
    return this.node.book.list();
  }

  /** Seed 001's RESET: forget every known peer; returns how many were forgotten. */
  reset(): number {
    return this.node.book.reset();
  }
}

/** Does the peer still answer as itself? (A LAN `stop` for it is then spoofed.) */
function stillThere(p: LanPeer, hello: HelloFields): Promise<boolean> {
  let c: PeerClient | null = null;
  return new Promise<boolean>((resolve) => {
    c = new PeerClient(p.ip, p.port, { timeoutMs: STOP_PROBE_MS, hello, handler: { onHello: (h) => resolve(h.peer === p.peer), onClose: () => resolve(false) } });
    c.connect().catch(() => resolve(false));
    setTimeout(() => resolve(false), STOP_PROBE_MS).unref();
  }).finally(() => c?.destroy());
}
