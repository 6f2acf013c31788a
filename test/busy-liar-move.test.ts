/**
 * Hostile review of MOVE_WAITING_AFTER_MS = 300 ms (requests.ts moveWaiting): a request an honest
 * but contended seeder keeps waiting moves, once, to an idle holder; a liar that claims every chunk
 * and answers `busy` for ever is such a holder, and a moved request never moves back (only the
 * endgame duplicates it). Two honest downloaders share one rate-limited seeder, with and without
 * the liar. All on 127.0.0.1; servers and fakes close at teardown.
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { serve } from '../lib/index.js';
import { InlineChunkPool } from '../lib/pool.js';
import { get } from '../lib/download/get.js';
import { makeManifest } from '../lib/manifest.js';
import { chunkHash } from '../lib/hashing.js';
import { tempDir } from './helpers/tmp.js';
import { startFakePeer } from './helpers/fake-peer.js';

const MiB = 1 << 20;

async function round(t: Test, liar: boolean): Promise<{ ms: number[]; ok: boolean }> {
  const dir = tempDir(t);
  const data = Buffer.alloc(16 * MiB);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2246822519) >>> 0, i);
  const file = path.join(dir, 'f.bin');
  writeFileSync(file, data);
  const hashes: Buffer[] = [];
  for (let at = 0; at < data.length; at += MiB) hashes.push(chunkHash(data.subarray(at, at + MiB)));
  const m = makeManifest(data.length, MiB, Buffer.concat(hashes));
  const h = await serve(dir, { port: 0, noTracker: true, pool: new InlineChunkPool(), watch: false, maxUploadBytesPerSec: 16 * MiB });
  t.teardown(() => h.close({ graceful: false }));
  const peers = [`127.0.0.1:${h.port}`];
  if (liar) {
    const { statSync } = await import('node:fs');
    const f = await startFakePeer(file, m, 'busy', { mtime: Math.floor(statSync(file).mtimeMs / 1000) });
    t.teardown(() => f.close());
    peers.push(`127.0.0.1:${f.port}`);
  }
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error('bound')), 20_000);
  t.teardown(() => clearTimeout(timer));
  const started = Date.now();
  const one = () => get('f.bin', { peers, outDir: tempDir(t), threads: 0, peerThreads: 0, signal: ac.signal }).then(() => Date.now() - started, (e: Error) => -1 * (Date.now() - started) + 0 * e.message.length);
  const ms = await Promise.all([one(), one()]);
  return { ms, ok: ms.every((x) => x > 0) };
}

t.test('a busy liar beside a contended honest seeder: both downloads finish about as fast (held up)', async (t) => {
  const a = await round(t, false);
  const b = await round(t, true);
  t.comment(`two downloads of 16 MiB from a 16 MiB/s seeder: alone ${a.ms.join(' / ')} ms; with a busy liar ${b.ms.join(' / ')} ms (negative: failed)`);
  t.ok(a.ok, 'baseline finished');
  t.ok(b.ok, 'with the liar both finished');
  // (stuck behind the liar, a request would wait for its timeout: seconds more; the slack is for a loaded machine)
  t.ok(Math.max(...b.ms) < 1.5 * Math.max(...a.ms) + 2_000, `the liar costs less than half again (${Math.max(...b.ms)} ms against ${Math.max(...a.ms)} ms)`);
});
