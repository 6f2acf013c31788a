/**
 * What `swarm get` shows while it runs: live bars on a terminal (a total line with bytes, rate and
 * ETA; an upload line; one line per peer), NDJSON events with `--json`, nothing with `--quiet`.
 * Both directions: a download that shares shows what it uploads and to how many peers.
 */
import type { MultiBar, SingleBar } from 'cli-progress';
import type { DoneEvent, PeerView, Download } from '../../lib/index.js';
import { statSync } from 'node:fs';
import { chunkBytesFor } from '../../lib/chunking.js';
import { count, humanBytes, humanRate, isAddress, ndjson, peerAddress, printable } from '../format.js';

const PROGRESS_JSON_MS = 1000;

export interface Upload {
  /** Bytes uploaded so far, and peers being sent to now. */
  stats(): { bytes: number; peers: number };
}

export interface GetView {
  done(r: DoneEvent, uploaded: number): void;
  stop(): void;
}

/** Upload rate from successive byte counts (smoothed). */
function uploadMeter(up: Upload | null): () => { bytes: number; rate: number; peers: number } {
  let last = up?.stats().bytes ?? 0;
  let at = Date.now();
  let rate = 0;
  return () => {
    const s = up?.stats() ?? { bytes: 0, peers: 0 };
    const now = Date.now();
    const inst = ((s.bytes - last) * 1000) / Math.max(1, now - at);
    rate = rate === 0 ? inst : 0.3 * inst + 0.7 * rate;
    last = s.bytes;
    at = now;
    return { bytes: s.bytes, rate, peers: s.peers };
  };
}

/**
 * Where `start` says the holders came from: the library gives prose ("tracker 127.0.0.1:7077 and
 * the overlay"); --json gives the same words as `search`'s `sources` (and `peer` for --peer), and
 * the tracker's address on its own.
 */
export function sourcesOf(prose: string): { sources: string[]; tracker: string | null } {
  const sources: string[] = [];
  const t = /\btracker (\S+)/.exec(prose);
  if (/named peers|peers that have it/.test(prose)) sources.push('peer');
  if (t) sources.push('tracker');
  if (/\boverlay\b/.test(prose)) sources.push('overlay');
  if (/\bLAN\b/.test(prose)) sources.push('lan');
  return { sources, tracker: t ? t[1]! : null };
}

/** A download's events as NDJSON, in the shared shape (README "JSON output"). */
export function jsonView(d: Download, up: Upload | null): GetView {
  let last = 0;
  let started = false;
  const meter = uploadMeter(up);
  d.on('start', (e) => {
    started = true;
    const { sources, tracker } = sourcesOf(e.source);
    // a stock seed-002 version's directory entry has no size: null, not a made-up value
    ndjson({ event: 'start', name: e.name, path: e.path, size: e.size >= 0 ? e.size : null, mtime: e.mtime, cid: e.cid, chunks: e.chunks, chunkBytes: e.chunkBytes, peers: e.peers.map(peerAddress), resumedChunks: e.resumedChunks, sources, tracker });
  });
  d.on('progress', (e) => {
    const now = Date.now();
    if (now - last < PROGRESS_JSON_MS) return;
    last = now;
    const u = meter();
    ndjson({
      event: 'progress',
      bytes: e.bytes,
      total: e.total,
      rate: Math.round(e.rate),
      uploaded: u.bytes,
      uploadRate: Math.round(u.rate),
      peersServed: u.peers,
      peers: e.peers.map((p) => ({ ...peerAddress(p.address), state: p.state, rate: Math.round(p.rate), chunks: p.chunks, inflight: p.inflight, strikes: p.strikes, complete: p.complete })),
    });
  });
  d.on('warning', (e) => {
    // `peer` is a peer's address; a source that is not one (a tracker, "the overlay") goes into the message
    const isPeer = e.peer !== undefined && isAddress(e.peer);
    const message = e.peer !== undefined && !isPeer ? `${e.peer}: ${e.message}` : e.message;
    ndjson({ event: 'warning', message, ...(isPeer ? { peer: e.peer } : {}), ...(e.code ? { code: e.code } : {}) });
  });
  d.on('peer-dropped', (e) => ndjson({ event: 'peer-dropped', peer: e.peer, reason: e.reason, code: e.code }));
  return {
    done: (r, uploaded) => {
      const { breakdown, ...rest } = r;
      // a file already up to date fetched nothing, but a script still gets its `start` first
      if (!started && r.upToDate) {
        const chunkBytes = chunkBytesFor(r.size);
        let mtime = 0;
        try {
          mtime = Math.floor(statSync(r.path).mtimeMs / 1000);
        } catch {
          // gone again: 0 rather than a guess
        }
        ndjson({ event: 'start', name: r.name, path: r.path, size: r.size, mtime, cid: r.cid, chunks: Math.ceil(r.size / chunkBytes), chunkBytes, peers: [], resumedChunks: 0, sources: [], tracker: null });
      }
      ndjson({ event: 'done', ...rest, seconds: Math.round(r.seconds * 1000) / 1000, rate: Math.round(r.rate), uploaded, ...(breakdown ? { breakdown } : {}) });
    },
    stop: () => {},
  };
}

/** A peer's line. Rates are shown once a peer has delivered something (not "0 B/s" while it starts). */
function peerLine(p: PeerView, final = false): string {
  const state = final ? (p.state === 'dropped' ? 'dropped' : 'done') : p.state === 'active' ? (p.inflight > 0 ? 'fetching' : 'idle') : p.state;
  const rate = p.chunks > 0 && !final ? humanRate(p.rate) : '';
  return `${rate.padStart(12)}  ${String(p.chunks).padStart(6)} chunks  ${p.complete ? 'seeder ' : 'partial'}  ${state}${p.strikes ? `  ${p.strikes} strikes` : ''}`;
}

/** "1m 05s", "42s": the time left at the current rate; "--" while there is no rate yet. */
export function etaText(bytesLeft: number, rate: number): string {
  if (!(rate > 0) || !Number.isFinite(bytesLeft / rate)) return '--';
  const s = Math.ceil(bytesLeft / rate);
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return s >= 60 ? `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/**
 * `s` cut to `width` columns with an ellipsis. A peer address keeps its port (peers on one host
 * differ only there): the host is shortened in the middle, `  127.0…1:21003`.
 */
export function shorten(s: string, width: number): string {
  if (s.length <= width) return s;
  const m = /^(.*)(:\d{1,5})$/.exec(s);
  if (m && m[2]!.length + 4 <= width) {
    const room = width - m[2]!.length - 1;
    const head = Math.ceil(room / 2);
    return m[1]!.slice(0, head) + '…' + m[1]!.slice(m[1]!.length - (room - head)) + m[2];
  }
  return s.slice(0, width - 1) + '…';
}

/** Label column and bar width for a terminal of `columns`: everything fits, the ETA included. */
export function barLayout(columns: number): { label: number; bar: number } {
  const label = columns >= 100 ? 21 : 16;
  // after the bar: " 100% 12345/12345 MiB  123.4 MiB/s  ETA 59m 59s" is at most 48 columns
  const bar = Math.max(8, Math.min(40, columns - label - 2 - 48 - 1));
  return { label, bar };
}

export interface BarViewOptions {
  /** Where the bars, the start line and warnings go (tests give a fake terminal); default stderr. */
  stream?: NodeJS.WriteStream;
  /**
   * Where the result goes (`saved …`, `… is already up to date`): it is what the command produced,
   * so stdout by default, apart from the diagnostics; with only `stream` given, that stream.
   */
  result?: NodeJS.WritableStream;
}

export async function barView(d: Download, up: Upload | null, o: BarViewOptions = {}): Promise<GetView> {
  const out = o.stream ?? process.stderr;
  const result = o.result ?? o.stream ?? process.stdout;
  const tty = !!out.isTTY;
  // the bars library is loaded only where bars are drawn
  const cliProgress = tty ? (await import('cli-progress')).default : null;
  let multi: MultiBar | null = null;
  let total: SingleBar | null = null;
  let upBar: SingleBar | null = null;
  let lastPeers: PeerView[] = [];
  const peerBars = new Map<string, SingleBar>();
  const meter = uploadMeter(up);
  const layout = barLayout(out.columns || 80);
  const cut = (s: string) => (s.length > layout.label ? shorten(s, layout.label) : s.padEnd(layout.label));
  const write = (s: string) => (multi ? multi.log(s + '\n') : out.write(s + '\n'));
  // the same warning again and again (a peer that keeps failing) is said once, then counted
  const said = new Map<string, number>();
  const log = (s: string) => {
    const n = (said.get(s) ?? 0) + 1;
    if (said.size < 1000 || said.has(s)) said.set(s, n);
    if (n === 1) write(s);
  };
  d.on('start', (e) => {
    const resumed = e.resumedChunks ? `, resuming with ${e.resumedChunks}/${e.chunks} chunks` : '';
    out.write(`${printable(e.name)}: ${humanBytes(e.size)} from ${count(e.peers.length, 'peer')} via ${e.source}${resumed}\n`);
    if (!cliProgress) return;
    multi = new cliProgress.MultiBar(
      { stream: out, hideCursor: true, clearOnComplete: false, linewrap: false, format: '{label} |{bar}| {percentage}% {value}/{total} MiB  {rate}  ETA {left}', barsize: layout.bar },
      cliProgress.Presets.shades_classic,
    );
    total = multi.create(Math.max(1, Math.ceil(e.size / 2 ** 20)), Math.floor((e.resumedChunks * e.chunkBytes) / 2 ** 20), { label: cut('total'), rate: '', left: '--' });
    if (up) upBar = multi.create(1, 0, { label: cut('upload'), line: '' }, { format: '{label} {line}' });
  });
  d.on('progress', (e) => {
    lastPeers = e.peers;
    total?.update(Math.floor(e.bytes / 2 ** 20), { rate: e.bytes > 0 ? humanRate(e.rate) : '', left: etaText(e.total - e.bytes, e.rate) });
    const u = meter();
    upBar?.update(0, { line: `${(u.bytes > 0 ? humanRate(u.rate) : '').padStart(12)}  to ${count(u.peers, 'peer')}, ${humanBytes(u.bytes)} sent` });
    for (const p of e.peers) {
      let bar = peerBars.get(p.address);
      if (!bar && multi && p.state !== 'dropped') {
        bar = multi.create(1, 0, { label: cut(`  ${p.address}`), line: '' }, { format: '{label} {line}' });
        peerBars.set(p.address, bar);
      }
      bar?.update(0, { line: peerLine(p) });
    }
  });
  d.on('warning', (e) => log(`warning: ${e.peer ? e.peer + ': ' : ''}${printable(e.message)}`));
  d.on('peer-dropped', (e) => log(`dropped ${e.peer}: ${printable(e.reason)}`));
  const repeats = () => {
    const more = [...said.entries()].filter(([, n]) => n > 1);
    for (const [line, n] of more.slice(0, 10)) out.write(`(${n}× in all) ${line}\n`);
  };
  const stop = () => {
    (multi as MultiBar | null)?.stop();
    multi = null;
  };
  return {
    done(r, uploaded) {
      // the last frame is the true end: every byte, no rate or ETA left, no peer still "fetching"
      const t = total as SingleBar | null;
      t?.update(t.getTotal(), { rate: humanRate(r.rate), left: '0s' });
      for (const p of lastPeers) peerBars.get(p.address)?.update(0, { line: peerLine(p, true) });
      stop();
      repeats();
      if (r.upToDate) {
        result.write(`${printable(r.path)} is already up to date\n`);
        return;
      }
      result.write(
        `saved ${printable(r.path)}: ${humanBytes(r.size)} in ${r.seconds.toFixed(1)} s (${humanRate(r.rate)}), ${count(r.peersUsed, 'peer')} used` +
          `${r.resumedChunks ? `, ${r.resumedChunks} chunks resumed` : ''}` +
          `${r.peersDropped ? `, ${r.peersDropped} dropped` : ''}` +
          `${uploaded ? `, ${humanBytes(uploaded)} uploaded` : ''}` +
          `${r.badPackets || r.badChunks ? `, bad data dropped: ${r.badPackets} packets, ${r.badChunks} chunks` : ''}\n`,
      );
    },
    stop() {
      stop();
      repeats();
    },
  };
}
