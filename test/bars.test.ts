/**
 * The bars of `swarm get` on a terminal (bin/views/get-view.ts), rendered into a fake terminal of
 * 80 and 200 columns: the first frame says nothing false (no 0 B/s, no ETA 0s before any data),
 * every line fits the width with the ETA in it, a warning said again and again is printed once
 * and counted at the end, and the last frame is the true end (all bytes, ETA 0s, no peer still
 * "fetching").
 */
import t from 'tap';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { barView, barLayout, etaText, shorten } from '../bin/views/get-view.js';
import { syncView } from '../bin/views/sync-view.js';
import type { Download, PeerView } from '../lib/index.js';

const MiB = 2 ** 20;

function fakeTerminal(columns: number): { stream: NodeJS.WriteStream; text: () => string; lines: () => string[] } {
  let raw = '';
  const w = new Writable({
    write(chunk, _enc, cb) {
      raw += chunk.toString();
      cb();
    },
  }) as unknown as NodeJS.WriteStream;
  Object.assign(w, { isTTY: true, columns, rows: 40, cursorTo: () => true, moveCursor: () => true, clearLine: () => true, clearScreenDown: () => true, getWindowSize: () => [columns, 40] });
  // cursor movements and clears become line breaks: what is left are the texts drawn on the screen
  // eslint-disable-next-line no-control-regex
  const plain = () => raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '\n').replace(/\r/g, '\n');
  return { stream: w, text: plain, lines: () => plain().split('\n').filter((l) => l.trim() !== '') };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const peer = (over: Partial<PeerView> = {}): PeerView => ({ address: '127.0.0.9:7070', state: 'active', rate: 0, chunks: 0, inflight: 2, strikes: 0, complete: true, ...over }) as PeerView;

for (const columns of [80, 200]) {
  t.test(`bars in ${columns} columns: first frame, width, repeated warnings, last frame`, async (t) => {
    const term = fakeTerminal(columns);
    const d = new EventEmitter() as unknown as Download;
    const view = await barView(d, null, { stream: term.stream });
    const size = 300 * MiB;
    d.emit('start', { name: 'big.iso', path: '/x/big.iso', size, mtime: 0, cid: 'a'.repeat(64), chunks: 300, chunkBytes: MiB, peers: ['127.0.0.9:7070'], resumedChunks: 0, source: 'tracker' });
    d.emit('progress', { bytes: 0, total: size, rate: 0, peers: [peer()] });
    await sleep(250);
    const first = term.text();
    t.match(first, /0\/300 MiB/, 'first frame: nothing yet');
    t.match(first, /ETA --/, 'no ETA before there is a rate');
    t.notMatch(first, /ETA 0s/, 'never "ETA 0s" before data');
    t.notMatch(first, /0 B\/s/, 'no "0 B/s" for a peer that has not started');
    d.emit('progress', { bytes: 150 * MiB, total: size, rate: 10 * MiB, peers: [peer({ rate: 10 * MiB, chunks: 150 })] });
    for (let i = 0; i < 5; i++) d.emit('warning', { peer: '127.0.0.9:7070', message: 'chunk 7 does not match its hash' });
    await sleep(250);
    t.match(term.text(), /150\/300 MiB/);
    t.match(term.text(), /ETA 15s/, 'ETA from the bytes left and the rate');
    t.equal(term.text().split('chunk 7 does not match its hash').length - 1, 1, 'a repeated warning is printed once while it runs');
    view.done({ name: 'big.iso', path: '/x/big.iso', cid: 'a'.repeat(64), size, seconds: 30, rate: 10 * MiB, peersUsed: 1, peersDropped: 0, badPackets: 0, badChunks: 0, resumedChunks: 0, fetchedChunks: 300, upToDate: false }, 0);
    const all = term.text();
    const end = all.slice(all.lastIndexOf('total'));
    t.match(end, /300\/300 MiB/, 'last frame: every byte');
    t.match(end, /ETA 0s/, 'and nothing left');
    t.notMatch(end, /fetching/, 'no peer still "fetching" after the end');
    t.match(end, /done/, "the peer's line says done");
    t.match(all, /\(5× in all\) warning: 127\.0\.0\.9:7070: chunk 7/, 'the repeats counted at the end');
    t.match(all, /saved \/x\/big\.iso: 300\.0 MiB in 30\.0 s/, "the summary after the bars");
    const wide = term.lines().filter((l) => l.length > columns);
    t.same(wide, [], `every line fits ${columns} columns`);
    t.ok(term.lines().some((l) => /ETA \d+s/.test(l) && l.length <= columns), 'the total line with its ETA fits');
  });
}

t.test('layout and ETA text', async (t) => {
  t.ok(barLayout(80).label + barLayout(80).bar + 2 + 48 <= 80, '80 columns: label, bar and the rest fit');
  t.equal(barLayout(200).bar, 40, 'a wide terminal gets the widest bar');
  const label = shorten('  127.0.0.1:21003', 16);
  t.equal(label.length, 16, 'a peer label fits its column');
  t.match(label, /:21003$/, 'and keeps its port (peers on one host differ only there)');
  t.equal(shorten('a-very-long-file-name.iso', 10), 'a-very-lo…', 'other labels are cut at the end');
  t.equal(shorten('total', 16), 'total');
  t.equal(etaText(100, 0), '--');
  t.equal(etaText(100, 10), '10s');
  t.equal(etaText(65 * 10, 10), '1m 05s');
  t.equal(etaText(3 * 3600 * 10, 10), '3h 00m');
});

t.test('the summary says numbers as people write them: rounded rates, "1 peer", not "1 peers" or "peer(s)"', async (t) => {
  let text = '';
  const plain = new Writable({
    write(chunk, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  }) as unknown as NodeJS.WriteStream;
  const d = new EventEmitter() as unknown as Download;
  const view = await barView(d, null, { stream: plain });
  d.emit('start', { name: 'a', path: '/x/a', size: 1, mtime: 0, cid: 'a'.repeat(64), chunks: 1, chunkBytes: MiB, peers: ['127.0.0.9:7070'], resumedChunks: 0, source: 'tracker 127.0.0.1:7077' });
  view.done({ name: 'a', path: '/x/a', cid: 'a'.repeat(64), size: 1, seconds: 0.084, rate: 11.904761904761903, peersUsed: 1, peersDropped: 0, badPackets: 0, badChunks: 0, resumedChunks: 0, fetchedChunks: 1, upToDate: false }, 0);
  t.match(text, /a: 1 B from 1 peer via tracker/, 'the start line: 1 peer');
  t.match(text, /saved \/x\/a: 1 B in 0\.1 s \(12 B\/s\), 1 peer used\n/, 'the summary: a rounded rate, 1 peer');
  t.notMatch(text, /\d\.\d{4,}|peer\(s\)|1 peers/, 'no long fractions, no peer(s)');
  text = '';
  const d2 = new EventEmitter() as unknown as Download;
  const v2 = await barView(d2, null, { stream: plain });
  v2.done({ name: 'a', path: '/x/a', cid: 'a'.repeat(64), size: 3 * MiB, seconds: 2, rate: 1.5 * MiB, peersUsed: 2, peersDropped: 1, badPackets: 0, badChunks: 0, resumedChunks: 0, fetchedChunks: 3, upToDate: false }, 0);
  t.match(text, /3\.00 MiB in 2\.0 s \(1\.50 MiB\/s\), 2 peers used, 1 dropped/);
});

t.test('sync --json: a progress event when bytes move too (a big file moves no file count until it lands; newcomer 48)', async (t) => {
  const lines: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  try {
    const v = await syncView({ json: true });
    v.progress({ filesDone: 0, bytesDone: 0, filesToGo: 1, bytesToGo: 100 }, 1_000);
    v.progress({ filesDone: 0, bytesDone: 40, filesToGo: 1, bytesToGo: 60 }, 2_100);
    v.progress({ filesDone: 0, bytesDone: 60, filesToGo: 1, bytesToGo: 40 }, 2_500); // within the second: not yet
    v.progress({ filesDone: 0, bytesDone: 80, filesToGo: 1, bytesToGo: 20 }, 3_200);
    v.progress({ filesDone: 0, bytesDone: 80, filesToGo: 1, bytesToGo: 20 }, 4_300); // nothing moved
  } finally {
    process.stdout.write = write;
  }
  const said = lines.map((l) => JSON.parse(l) as { event: string; bytesDone: number }).filter((e) => e.event === 'progress');
  t.same(said.map((e) => e.bytesDone), [0, 40, 80], 'said at most once a second, whenever bytes moved');
});
