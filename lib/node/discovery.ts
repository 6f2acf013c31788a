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
import { trackerDirectory } from '../tracker/client.js';
import { kindOf } from '../share/kinds.js';
import { LanDiscovery, type LanPeer } from '../discovery/lan.js';
import { matcher, MAX_PATTERN_CHARS } from '../discovery/flood.js';
import { overlayFinder, overlaySearch, ResultSet, DEFAULT_SEARCH_TTL, DEFAULT_SEARCH_WAIT_MS, type SearchResult } from '../discovery/search.js';
import type { KnownPeer, PeerBook } from '../discovery/peer-book.js';
import type { Overlay, Pong } from '../discovery/overlay.js';
import type { VersionFinder } from '../download/resolve.js';
import type { HelloFields } from '../protocol/messages.js';
import type { Log } from '../log.js';
import type { PeerAddress } from '../types.js';

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
}

/** A LAN peer's `stop` is believed only if it no longer answers as itself within this long. */
const STOP_PROBE_MS = 1_500;
/** With --lan and no peer known yet, how long `get` and `search` wait to hear the LAN first. */
export const LAN_FIRST_WAIT_MS = 1_500;

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

export class NodeDiscovery {
  private lanHeard: (() => void)[] = [];

  constructor(
    private readonly node: DiscoveryHost,
    private readonly log: Log,
  ) {}

  /** Join the LAN: announce our transfer port (when we serve) and add the peers we hear. */
  async startLan(s: LanSettings): Promise<void> {
    const n = this.node;
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
    lan.on('down', (p: LanPeer) => {
      at.delete(p.peer);
      n.book.remove({ ip: p.ip, port: p.port }, 'lan');
    });
  }

  /** With the LAN on and no peer known, wait a moment for the first announcement. */
  private async lanFirst(signal?: AbortSignal): Promise<void> {
    if (!this.node.lan || this.node.book.size > 0) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, LAN_FIRST_WAIT_MS);
      signal?.addEventListener('abort', done, { once: true });
      this.lanHeard.push(done);
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
    if (tracker) {
      asked.push(`tracker ${tracker}`);
      const match = matcher(pattern);
      jobs.push(
        trackerDirectory(tracker).then(
          ({ entries }) => {
            for (const [name, e] of entries) if (match(name)) set.add({ name, kind: kindOf(name), size: e.size, mtime: e.mtime, cid: e.cid }, [...e.holders, ...e.partial], 'tracker');
          },
          (err: Error) => {
            // the local default tracker not running is no news when the overlay was asked too
            if (o.quietTracker && (n.book.size > 0 || n.lan)) return;
            warnings.push(err.message.includes(tracker) ? err.message : `tracker ${tracker}: ${err.message}`);
          },
        ),
      );
    }
    if (n.book.size > 0 || n.lan) {
      jobs.push(
        (async () => {
          await this.lanFirst(o.signal);
          const neighbours = Math.min(n.book.size, 8);
          asked.push(`the overlay (${neighbours} ${neighbours === 1 ? 'neighbour' : 'neighbours'}, TTL ${o.ttl ?? DEFAULT_SEARCH_TTL})`);
          const hits = await overlaySearch(n.overlay, pattern, { ttl: o.ttl ?? DEFAULT_SEARCH_TTL, waitMs: o.waitMs ?? DEFAULT_SEARCH_WAIT_MS, ...(o.signal ? { signal: o.signal } : {}) });
          set.addHits(hits);
        })(),
      );
    }
    if (jobs.length === 0) throw new SwarmError(ERROR_CODES.NO_PEERS, 'nowhere to search: no tracker, no --neighbor, no --lan');
    await Promise.all(jobs);
    return { results: set.results(), asked, warnings };
  }

  /** Seed 001's DISCOVER: learn the peers within `ttl` hops; resolves with those that answered. */
  async discoverPeers(ttl: number, waitMs = DEFAULT_SEARCH_WAIT_MS, signal?: AbortSignal): Promise<Pong[]> {
    await this.lanFirst(signal);
    const n = this.node;
    const pongs: Pong[] = [];
    await new Promise<void>((resolve) => {
      const d = n.overlay.discover(ttl, (p) => {
        if (pongs.length >= 4096) return;
        pongs.push(p);
        n.book.add(p.addr, 'discover', p.peer);
      });
      const done = () => {
        d.stop();
        clearTimeout(t);
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
