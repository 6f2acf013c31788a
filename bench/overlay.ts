/**
 * Overlay search benchmark (issue "bench/overlay", seed 001's SEARCH): N peers (64 and 256 by
 * default) started as SwarmNodes in this one process on loopback, no tracker, joined in a random
 * graph of `--degree` neighbours each (a ring plus random pairings: connected). One peer holds
 * one small file; searches for it start at random other peers, one at a time, with each TTL.
 *
 * Per search it measures the time from `overlay.search()` to the first hit (performance.now()),
 * and, once the flood has settled (every message sent has been received: each peer handles a
 * message synchronously, so equal sums of `sent` and `received` over all peers mean nothing is in
 * flight), the counters' deltas over all peers:
 * - messages sent, against the flood's bound: the origin's degree plus, for every peer closer
 *   than TTL hops (by BFS), its degree minus one (what a flood that forwards each id at most once
 *   per peer can send), and against the edges within TTL (edges with an end closer than TTL hops);
 * - at-most-once: a peer that handled the id (received − duplicates − rate-limited) more than
 *   once, or sent more than its degree (minus the sender), is a violation;
 * - hits that name a wrong holder or file, messages refused by the rate limits, messages lost.
 *
 * Links between peers open on first use, so the very first search of a network is timed on its
 * own ("cold"); then every peer sends a TTL-1 search so every link is open, and the counted
 * searches measure an overlay in use. Searches are spaced (`--gap-ms`) and never overlap, so
 * the per-connection (20/s) and per-peer forward (200/s) limits are not what is measured.
 * All peers share one event loop (and the machine's cores): a hop costs what every peer's work
 * queued before it costs, so the latencies are an upper bound of what separate hosts would see.
 * Exit 1 when a check fails: a wrong hit, an at-most-once violation, a lost message, or a holder
 * next to the origin not found. The latency goal is printed in the verdict, not the exit code
 * (timings on a shared machine are noisy).
 *
 *   node dist/bench/overlay.js [--peers 64,256] [--degree 4] [--searches 50] [--ttls 3,5,7] [--seed 1]
 */
import { prng } from './lib/prng.js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SwarmNode } from '../lib/node/node.js';
import { DEFAULT_MAX_NEIGHBORS, type Hit, type OverlayCounters } from '../lib/discovery/overlay.js';
import { MAX_TTL, matcher } from '../lib/discovery/flood.js';
import { fmt, median, table } from './lib/stats.js';
import { isMain, num, nums, parseOptions, str, type Values } from './lib/options.js';
import { runMain } from './lib/procs.js';
import { DEFAULT_RESULTS_DIR, machine, shownPath, writeResults } from './lib/report.js';
import { Aborted, checkAborted, sleep, waitUntil, within } from './lib/wait.js';

const USAGE = 'node dist/bench/overlay.js [options]: SEARCH over the overlay, N peers on loopback in one process';
const OPTIONS = {
  peers: nums([64, 256], 'peers per network (one network per value)'),
  degree: num(4, 'neighbours per peer (ring plus random pairings; a few peers may have one less)'),
  searches: num(50, 'counted searches per network and TTL (the same origins for every TTL)'),
  ttls: nums([3, 5, 7], `TTLs searched with (at most ${MAX_TTL})`),
  seed: num(1, 'seed of the graphs, the holder and the origins'),
  'wait-ms': num(2000, 'a search with no hit this long after it started did not find'),
  'gap-ms': num(60, 'pause between one search settling and the next starting'),
  results: str(DEFAULT_RESULTS_DIR, 'folder for the JSON record of the run'),
};
type Options = Values<typeof OPTIONS>;

const FILE = 'bench-overlay/needle.bin';
const PATTERN = 'needle';
/** File descriptors a peer may hold: its listener, a link to each neighbour, each neighbour's link to it. */
const FDS_PER_PEER = (degree: number) => 1 + 2 * degree;
/** The latency goal of the issue, at 256 peers. */
const GOAL_MS = 200;
const GOAL_PEERS = 256;


function shuffle<T>(xs: T[], rand: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/**
 * A connected graph of about `degree` neighbours per peer: a ring (so it is connected), then each
 * peer's remaining degree − 2 stubs paired at random (configuration model); a pairing that would
 * be a loop or repeat an edge is re-drawn, and the few stubs left unpaired are dropped.
 */
export function randomGraph(n: number, degree: number, rand: () => number): number[][] {
  const adj = Array.from({ length: n }, (_, i) => new Set(n > 1 ? [(i + 1) % n, (i + n - 1) % n] : []));
  const extra = Math.max(0, Math.min(degree, n - 1) - 2);
  let best: Set<number>[] = adj;
  let bestLeft = Infinity;
  for (let attempt = 0; attempt < 50 && bestLeft > 0; attempt++) {
    const g = adj.map((s) => new Set(s));
    const stubs = shuffle(Array.from({ length: n * extra }, (_, k) => Math.floor(k / extra)), rand);
    let left = 0;
    while (stubs.length > 1) {
      const a = stubs.pop()!;
      const k = stubs.findIndex((b) => b !== a && !g[a]!.has(b));
      if (k < 0) {
        left++;
        continue;
      }
      const b = stubs.splice(k, 1)[0]!;
      g[a]!.add(b);
      g[b]!.add(a);
    }
    left += stubs.length;
    if (left < bestLeft) [best, bestLeft] = [g, left];
  }
  return best.map((s) => [...s]);
}

export function distances(adj: number[][], from: number): number[] {
  const d = adj.map(() => Infinity);
  d[from] = 0;
  const q = [from];
  for (let i = 0; i < q.length; i++) {
    const x = q[i]!;
    for (const y of adj[x]!) if (d[y] === Infinity) (d[y] = d[x]! + 1), q.push(y);
  }
  return d;
}

/**
 * What a flood from `origin` with `ttl` may cost, by BFS distance d: the origin sends to all its
 * neighbours, a peer with 1 ≤ d < ttl forwards at most once, to all but the sender (a peer whose
 * first copy came a longer way forwards with less TTL, or not at all, so this is an upper bound);
 * and the edges such a flood can cross (an end closer than ttl hops).
 */
export function floodBound(adj: number[][], d: number[], origin: number, ttl: number): { messages: number; edges: number } {
  let messages = adj[origin]!.length;
  let edges = 0;
  adj.forEach((ns, x) => {
    if (x !== origin && d[x]! >= 1 && d[x]! < ttl) messages += ns.length - 1;
    for (const y of ns) if (x < y && Math.min(d[x]!, d[y]!) < ttl) edges++;
  });
  return { messages, edges };
}

function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
}

/** The process's open-file limit, as `ulimit -n` in a child (it inherits it); null if unknown. */
function fdLimit(): number | null {
  try {
    const out = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8', timeout: 5_000 }).trim();
    return out === 'unlimited' ? Infinity : Number(out) || null;
  } catch {
    return null;
  }
}

interface SearchRecord {
  ttl: number;
  origin: number;
  /** BFS hops from the origin to the holder */
  distance: number;
  found: boolean;
  /** ms to the first hit (null: none within --wait-ms) */
  ms: number | null;
  /** search messages sent by all peers, and the flood's bound and edges within TTL */
  messages: number;
  bound: number;
  edges: number;
  /** hits messages (answer + each hop back): the length of the path the answer took */
  hitMessages: number;
  violations: number;
  limited: number;
  lost: number;
  wrongHits: number;
  /** CPU time of the whole process (all peers) from the search to its settling, in µs */
  cpuMicros: number;
}

interface NetworkResult {
  peers: number;
  edges: number;
  degreeMin: number;
  degreeMax: number;
  diameterFromHolder: number;
  startSeconds: number;
  cold: SearchRecord | null;
  linksAfterWarmUp: number;
  directedEdges: number;
  searches: SearchRecord[];
  rssMiB: number;
}

const sumOf = (nodes: SwarmNode[], k: keyof OverlayCounters) => nodes.reduce((a, n) => a + n.overlay.counters[k], 0);

/** One search from `origin`, waited out: first hit, then the flood settled; counters compared. */
async function searchOnce(nodes: SwarmNode[], adj: number[][], holder: number, origin: number, ttl: number, waitMs: number, signal: AbortSignal): Promise<SearchRecord> {
  const before = nodes.map((n) => ({ ...n.overlay.counters }));
  const sent0 = sumOf(nodes, 'sent');
  const received0 = sumOf(nodes, 'received');
  const holderPort = nodes[holder]!.port;
  let first: number | null = null;
  let hits: Hit[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const s = nodes[origin]!.overlay.search(PATTERN, ttl, (h) => {
    if (first === null) first = performance.now() - t0;
    hits = hits.concat(h);
  });
  // nothing in flight: every message sent was received (a peer forwards within the call that handles)
  const settled = () => sumOf(nodes, 'sent') - sent0 === sumOf(nodes, 'received') - received0;
  await waitUntil(settled, { timeoutMs: waitMs, intervalMs: 2, signal });
  const holderHandled = () => {
    const c = nodes[holder]!.overlay.counters;
    const b = before[holder]!;
    return c.received - b.received - (c.duplicates - b.duplicates) - (c.limited - b.limited) > 0;
  };
  // the holder answered: the hit is on its way back (bounded by --wait-ms from the start)
  if (holderHandled()) await waitUntil(() => first !== null, { timeoutMs: Math.max(0, waitMs - (performance.now() - t0)), intervalMs: 2, signal });
  s.stop();
  const cpu = process.cpuUsage(cpu0);
  const d = distances(adj, origin);
  const bound = floodBound(adj, d, origin, ttl);
  let violations = 0;
  nodes.forEach((n, i) => {
    const c = n.overlay.counters;
    const b = before[i]!;
    const handled = c.received - b.received - (c.duplicates - b.duplicates) - (c.limited - b.limited);
    const sent = c.sent - b.sent;
    const allowed = i === origin ? adj[i]!.length : Math.min(handled, 1) * (adj[i]!.length - 1);
    if (handled > (i === origin ? 0 : 1) || sent > allowed) violations++;
  });
  const delta = (k: keyof OverlayCounters) => sumOf(nodes, k) - before.reduce((a, c) => a + c[k], 0);
  const ms = first !== null && first <= waitMs ? (first as number) : null;
  return {
    ttl,
    origin,
    distance: d[holder]!,
    found: ms !== null,
    ms,
    messages: delta('sent'),
    bound: bound.messages,
    edges: bound.edges,
    hitMessages: delta('answered') + delta('routedBack'),
    violations,
    limited: delta('limited'),
    lost: delta('sent') - delta('received'),
    cpuMicros: cpu.user + cpu.system,
    wrongHits: hits.filter((h) => h.file.name !== FILE || h.holder.ip !== '127.0.0.1' || h.holder.port !== holderPort).length + Math.max(0, hits.length - 1),
  };
}

async function network(n: number, o: Options, signal: AbortSignal, say: (s: string) => void): Promise<NetworkResult> {
  const rand = prng(o.seed * 1_000_003 + n);
  const degree = Math.round(o.degree);
  const adj = randomGraph(n, degree, rand);
  const holder = Math.floor(rand() * n);
  const pick = () => {
    for (;;) {
      const i = Math.floor(rand() * n);
      if (i !== holder) return i;
    }
  };
  const origins = Array.from({ length: Math.round(o.searches) }, pick);
  const dHolder = distances(adj, holder);
  if (dHolder.some((x) => x === Infinity)) throw new Error(`the graph of ${n} peers is not connected (bug in randomGraph)`);
  // the cold search starts at a peer as far from the holder as the largest TTL reaches: its links
  // open one after the other along the whole way, the worst a first search meets
  const maxTtl = Math.max(...o.ttls);
  const coldHops = Math.min(maxTtl, Math.max(...dHolder));
  const coldOrigin = dHolder.findIndex((x) => x === coldHops);

  const share = mkdtempSync(path.join(os.tmpdir(), 'swarm-bench-overlay-'));
  const nodes: SwarmNode[] = [];
  try {
    mkdirSync(path.join(share, path.dirname(FILE)), { recursive: true });
    writeFileSync(path.join(share, FILE), 'the one file searched for\n'.repeat(100));
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      checkAborted(signal);
      const common = { port: 0, host: '127.0.0.1', noTracker: true, threads: 0 } as const;
      nodes.push(await SwarmNode.start(i === holder ? { ...common, share, watch: false } : common));
    }
    const startSeconds = (performance.now() - t0) / 1000;
    const held = nodes[holder]!.sources.find(matcher(PATTERN), 10);
    if (held.length !== 1 || held[0]!.name !== FILE) throw new Error(`the holder shares ${JSON.stringify(held.map((f) => f.name))}, expected [${FILE}]`);
    adj.forEach((ns, i) => ns.forEach((j) => nodes[i]!.book.add({ ip: '127.0.0.1', port: nodes[j]!.port }, 'neighbor')));
    say(`${n} peers started in ${fmt(startSeconds, 2)} s; holder ${holder}, up to ${Math.max(...dHolder)} hops from the farthest peer`);

    // cold: the first search of this network opens its links as it goes
    const cold = await searchOnce(nodes, adj, holder, coldOrigin, maxTtl, o['wait-ms'], signal);
    say(`cold search (TTL ${maxTtl}, ${cold.distance} hops): ${cold.found ? `hit in ${fmt(cold.ms, 1)} ms` : 'no hit'}`);
    await sleep(o['gap-ms'], signal);

    // warm-up: every peer sends one TTL-1 search, so every link (one per neighbour and direction) is open
    const s0 = sumOf(nodes, 'sent');
    const r0 = sumOf(nodes, 'received');
    const stops = nodes.map((node) => node.overlay.search('warm-up-matches-nothing', 1, () => {}).stop);
    await waitUntil(() => sumOf(nodes, 'sent') - s0 === sumOf(nodes, 'received') - r0, { timeoutMs: 10_000, intervalMs: 10, signal });
    stops.forEach((stop) => stop());
    const linksAfterWarmUp = nodes.reduce((a, node) => a + node.overlay.linkCount, 0);
    const directedEdges = adj.reduce((a, ns) => a + ns.length, 0);
    await sleep(o['gap-ms'], signal);

    const searches: SearchRecord[] = [];
    const total = origins.length * o.ttls.length;
    try {
      for (const origin of origins) {
        for (const ttl of o.ttls) {
          searches.push(await searchOnce(nodes, adj, holder, origin, ttl, o['wait-ms'], signal));
          if (searches.length % 25 === 0 || searches.length === total) say(`${n} peers: ${searches.length}/${total} searches`);
          await sleep(o['gap-ms'], signal);
        }
      }
    } catch (e) {
      // Ctrl-C: what was measured so far is printed
      if (!(e instanceof Aborted)) throw e;
    }
    const degrees = adj.map((ns) => ns.length);
    return {
      peers: n,
      edges: directedEdges / 2,
      degreeMin: Math.min(...degrees),
      degreeMax: Math.max(...degrees),
      diameterFromHolder: Math.max(...dHolder),
      startSeconds,
      cold,
      linksAfterWarmUp,
      directedEdges,
      searches,
      rssMiB: process.resourceUsage().maxRSS / 1024,
    };
  } finally {
    const closed = await within(
      Promise.allSettled(nodes.map((node) => node.close({ graceful: false }))).then(() => true),
      10_000,
      false,
    );
    if (!closed) say(`${n} peers: some did not close within 10 s`);
    rmSync(share, { recursive: true, force: true });
  }
}

interface Summary {
  failures: string[];
  text: string;
}

function summarize(results: NetworkResult[], o: Options): Summary {
  const failures: string[] = [];
  const out: string[] = [];
  for (const r of results) {
    const rows = o.ttls.map((ttl) => {
      const s = r.searches.filter((x) => x.ttl === ttl);
      const found = s.filter((x) => x.found);
      const ms = found.map((x) => x.ms!);
      const inReach = s.filter((x) => x.distance <= ttl);
      const msgs = median(s.map((x) => x.messages));
      const bound = median(s.map((x) => x.bound));
      const edges = median(s.map((x) => x.edges));
      // the path a hit came back by, against the shortest path (a flood keeps the first copy, not the shortest)
      const stretch = median(found.map((x) => x.hitMessages / Math.max(1, x.distance)));
      const cpuPerMessage = median(s.filter((x) => x.messages > 0).map((x) => x.cpuMicros / x.messages));
      return [
        r.peers,
        ttl,
        s.length,
        `${fmt((100 * inReach.length) / Math.max(1, s.length), 0)}%`,
        `${fmt((100 * found.length) / Math.max(1, s.length), 0)}%`,
        fmt(median(found.map((x) => x.distance)), 0),
        fmt(median(ms), 1),
        fmt(quantile(ms, 0.9), 1),
        fmt(ms.length ? Math.max(...ms) : NaN, 1),
        fmt(msgs, 0),
        fmt(bound, 0),
        fmt(edges, 0),
        fmt(msgs / bound, 2),
        fmt(msgs / edges, 2),
        fmt(stretch, 2),
        fmt(cpuPerMessage, 0),
        s.reduce((a, x) => a + x.limited, 0),
        s.reduce((a, x) => a + x.lost, 0),
        s.reduce((a, x) => a + x.violations, 0),
      ];
    });
    out.push(
      `${r.peers} peers, ${r.edges} edges (degree ${r.degreeMin === r.degreeMax ? r.degreeMin : `${r.degreeMin}-${r.degreeMax}`}), holder up to ${r.diameterFromHolder} hops away; ms to the first hit of found searches; messages are medians per search`,
      table(
        ['peers', 'TTL', 'searches', 'in reach', 'found', 'hops', 'median ms', 'p90 ms', 'worst ms', 'msgs', 'flood bound', 'edges in TTL', 'msgs/bound', 'msgs/edge', 'hit path/shortest', 'CPU µs/msg', 'rate-limited', 'lost', 'violations'],
        rows,
      ),
      `cold first search (links open on first use, from a peer as far as TTL reaches): TTL ${r.cold?.ttl}, holder ${r.cold?.distance} hops away, ${r.cold?.found ? `hit in ${fmt(r.cold.ms, 1)} ms` : 'no hit'}, ${r.cold?.messages} messages, ` +
        `CPU ${fmt((r.cold?.cpuMicros ?? NaN) / 1000, 0)} ms (every peer opening its links in this one process); ` +
        `links open after warm-up ${r.linksAfterWarmUp}/${r.directedEdges}; peers started in ${fmt(r.startSeconds, 2)} s; peak RSS ${fmt(r.rssMiB, 0)} MiB (whole process so far)`,
      '',
    );
    const all = r.cold ? [r.cold, ...r.searches] : r.searches;
    const wrong = all.reduce((a, x) => a + x.wrongHits, 0);
    const violations = all.reduce((a, x) => a + x.violations, 0);
    const lost = all.reduce((a, x) => a + x.lost, 0);
    const missed = r.searches.filter((x) => !x.found && x.distance <= x.ttl && x.distance <= 1).length;
    if (wrong) failures.push(`${r.peers} peers: ${wrong} hit(s) named a wrong holder or file, or came twice`);
    if (violations) failures.push(`${r.peers} peers: ${violations} at-most-once violation(s) (a peer handled or forwarded one id more than once)`);
    if (lost) failures.push(`${r.peers} peers: ${lost} message(s) sent and never received`);
    if (missed) failures.push(`${r.peers} peers: ${missed} search(es) missed a holder that is a neighbour of the origin`);
  }
  const violations = results.reduce((a, r) => a + r.searches.reduce((b, x) => b + x.violations, 0) + (r.cold?.violations ?? 0), 0);
  const limited = results.reduce((a, r) => a + r.searches.reduce((b, x) => b + x.limited, 0), 0);
  const big = results.find((r) => r.peers === GOAL_PEERS);
  let latency: string;
  if (!big) latency = `hit < ${GOAL_MS} ms at ${GOAL_PEERS} peers: not measured (${o.peers.includes(GOAL_PEERS) ? 'interrupted' : `no --peers ${GOAL_PEERS}`})`;
  else {
    const ms = big.searches.filter((x) => x.found).map((x) => x.ms!);
    const med = median(ms);
    const worst = ms.length ? Math.max(...ms) : NaN;
    const ok = ms.length > 0 && med < GOAL_MS && worst < GOAL_MS;
    latency = `hit < ${GOAL_MS} ms at ${GOAL_PEERS} peers: ${ok ? 'met' : 'NOT met'} (median ${fmt(med, 1)} ms, worst ${fmt(worst, 1)} ms over ${ms.length} found searches; cold ${big.cold?.found ? `${fmt(big.cold.ms, 1)} ms` : 'no hit'})`;
  }
  out.push(`verdict: at most once per peer: ${violations === 0 ? 'met' : `NOT met (${violations} violations)`}; ${latency}; rate-limited messages: ${limited}`);
  if (failures.length) out.push(`FAILED: ${failures.join('; ')}`);
  return { failures, text: out.join('\n') };
}

if (isMain(import.meta.url)) {
  const o = parseOptions(USAGE, OPTIONS);
  runMain('overlay', async ({ signal }) => {
    const started = new Date();
    const say = (s: string) => process.stderr.write(`overlay: ${s}\n`);
    // values parseOptions cannot judge alone: a usage error (exit 2), as a bad option is
    const bad = [
      o.ttls.length === 0 || o.ttls.some((t) => t < 1 || t > MAX_TTL || !Number.isInteger(t)) ? `--ttls: whole numbers from 1 to ${MAX_TTL}` : '',
      o.peers.length === 0 || o.peers.some((n) => n < 2 || !Number.isInteger(n)) ? '--peers: whole numbers, 2 or more' : '',
      o.degree < 2 || o.degree > DEFAULT_MAX_NEIGHBORS ? `--degree: 2 (the ring) to ${DEFAULT_MAX_NEIGHBORS} (the overlay floods to at most ${DEFAULT_MAX_NEIGHBORS} neighbours)` : '',
    ].filter(Boolean);
    if (bad.length) {
      console.error(`overlay: ${bad.join('; ')}`);
      return 2;
    }
    const need = Math.max(...o.peers) * FDS_PER_PEER(Math.round(o.degree)) + 100;
    const limit = fdLimit();
    if (limit !== null && limit < need) {
      console.error(`overlay: ${Math.max(...o.peers)} peers of degree ${o.degree} need about ${need} open files, and this process may open ${limit}: raise it (ulimit -n ${need * 2}) or use fewer --peers`);
      return 2;
    }
    console.log(`overlay search — ${machine()}`);
    console.log(`one process, loopback, no tracker; degree ${o.degree}, seed ${o.seed}, ${o.searches} searches per network and TTL, ${o['gap-ms']} ms between searches, a search finds if a hit comes within ${o['wait-ms']} ms\n`);
    const results: NetworkResult[] = [];
    for (const n of o.peers) {
      if (signal.aborted) break;
      try {
        results.push(await network(n, o, signal, say));
      } catch (e) {
        // Ctrl-C while a network starts or warms up: the networks measured before are printed
        if (!(e instanceof Aborted)) throw e;
      }
    }
    const s = summarize(results, o);
    console.log(s.text);
    const file = writeResults(o.results, 'overlay', started, { options: o, results, failures: s.failures });
    console.log(`results: ${shownPath(file)}`);
    return s.failures.length ? 1 : 0;
  });
}
