/**
 * What `swarm get` shows while it runs: live bars on a terminal (a total line with bytes, rate and
 * ETA; an upload line; one line per peer), NDJSON events with `--json`, nothing with `--quiet`.
 * Both directions: a download that shares shows what it uploads and to how many peers.
 */
import type { MultiBar, SingleBar } from 'cli-progress';
import type { DoneEvent, PeerView, Download } from '../../lib/index.js';
import { count, humanBytes, humanRate, ndjson, printable } from '../format.js';

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

export function jsonView(d: Download, up: Upload | null): GetView {
  let last = 0;
  const meter = uploadMeter(up);
  d.on('start', (e) => ndjson({ event: 'start', ...e }));
  d.on('progress', (e) => {
    const now = Date.now();
    if (now - last < PROGRESS_JSON_MS) return;
    last = now;
    const u = meter();
    ndjson({
      event: 'progress',
      ...e,
      rate: Math.round(e.rate),
      uploaded: u.bytes,
      uploadRate: Math.round(u.rate),
      peersServed: u.peers,
      peers: e.peers.map((p) => ({ ...p, rate: Math.round(p.rate) })),
    });
  });
  d.on('warning', (e) => ndjson({ event: 'warning', ...e }));
  d.on('peer-dropped', (e) => ndjson({ event: 'peer-dropped', ...e }));
  return { done: (r, uploaded) => ndjson({ event: 'done', ...r, rate: Math.round(r.rate), uploaded }), stop: () => {} };
}

function peerLine(p: PeerView): string {
  const state = p.state === 'active' ? (p.inflight > 0 ? 'fetching' : 'idle') : p.state;
  return `${humanRate(p.rate).padStart(12)}  ${String(p.chunks).padStart(6)} chunks  ${p.complete ? 'seeder ' : 'partial'}  ${state}${p.strikes ? `  ${p.strikes} strikes` : ''}`;
}

export async function barView(d: Download, up: Upload | null): Promise<GetView> {
  const tty = !!process.stderr.isTTY;
  // the bars library is loaded only where bars are drawn
  const cliProgress = tty ? (await import('cli-progress')).default : null;
  let multi: MultiBar | null = null;
  let total: SingleBar | null = null;
  let upBar: SingleBar | null = null;
  const peerBars = new Map<string, SingleBar>();
  const meter = uploadMeter(up);
  const log = (s: string) => (multi ? multi.log(s + '\n') : process.stderr.write(s + '\n'));
  d.on('start', (e) => {
    const resumed = e.resumedChunks ? `, resuming with ${e.resumedChunks}/${e.chunks} chunks` : '';
    process.stderr.write(`${printable(e.name)}: ${humanBytes(e.size)} from ${count(e.peers.length, 'peer')} via ${e.source}${resumed}\n`);
    if (!cliProgress) return;
    multi = new cliProgress.MultiBar(
      { stream: process.stderr, hideCursor: true, clearOnComplete: false, format: '{label} |{bar}| {percentage}% {value}/{total} MiB {rate} ETA {eta_formatted}', barsize: 30 },
      cliProgress.Presets.shades_classic,
    );
    total = multi.create(Math.max(1, Math.ceil(e.size / 2 ** 20)), Math.floor((e.resumedChunks * e.chunkBytes) / 2 ** 20), { label: 'total'.padEnd(21), rate: '' });
    if (up) upBar = multi.create(1, 0, { label: 'upload'.padEnd(21), line: '' }, { format: '{label} {line}' });
  });
  d.on('progress', (e) => {
    total?.update(Math.floor(e.bytes / 2 ** 20), { rate: humanRate(e.rate) });
    const u = meter();
    upBar?.update(0, { line: `${humanRate(u.rate).padStart(12)}  to ${count(u.peers, 'peer')}, ${humanBytes(u.bytes)} sent` });
    for (const p of e.peers) {
      let bar = peerBars.get(p.address);
      if (!bar && multi && p.state !== 'dropped') {
        bar = multi.create(1, 0, { label: `  ${p.address}`.padEnd(21), line: '' }, { format: '{label} {line}' });
        peerBars.set(p.address, bar);
      }
      bar?.update(0, { line: peerLine(p) });
    }
  });
  d.on('warning', (e) => log(`warning: ${e.peer ? e.peer + ': ' : ''}${printable(e.message)}`));
  d.on('peer-dropped', (e) => log(`dropped ${e.peer}: ${printable(e.reason)}`));
  const stop = () => {
    (multi as MultiBar | null)?.stop();
    multi = null;
  };
  return {
    done(r, uploaded) {
      const t = total as SingleBar | null;
      t?.update(t.getTotal(), { rate: '' }); // the last tick may predate the last chunk
      stop();
      if (r.upToDate) {
        process.stderr.write(`${printable(r.path)} is already up to date\n`);
        return;
      }
      process.stderr.write(
        `saved ${printable(r.path)}: ${humanBytes(r.size)} in ${r.seconds.toFixed(1)} s (${humanRate(r.rate)}), ${count(r.peersUsed, 'peer')} used` +
          `${r.resumedChunks ? `, ${r.resumedChunks} chunks resumed` : ''}` +
          `${r.peersDropped ? `, ${r.peersDropped} dropped` : ''}` +
          `${uploaded ? `, ${humanBytes(uploaded)} uploaded` : ''}` +
          `${r.badPackets || r.badChunks ? `, bad data dropped: ${r.badPackets} packets, ${r.badChunks} chunks` : ''}\n`,
      );
    },
    stop,
  };
}
