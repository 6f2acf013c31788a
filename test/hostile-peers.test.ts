/**
 * Hostile peers and trackers, written after reading swarm's code (issue 9, "Trust nothing a peer
 * says"): chunks forged to match xxhash64, manifests and `stat` answers that lie, peers that evade
 * stall detection (empty `done`s, a junk flood with a real chunk now and then, a trickle of real
 * bytes), holders that never answer, a tracker that answers with poison (invalid ports, huge
 * mtimes, duplicate holders, a bogus newer version, hostile names), and names built to take over
 * a terminal. Each test states the promise it checks: nothing wrong under the final name, the
 * honest peers keep serving, bounded time, the right exit code, and no raw control or bidi
 * character in what the CLI prints.
 *
 * Where exit codes or CLI output matter the CLI runs as a child process (its raw stdout and stderr
 * bytes are checked); elsewhere `get()` runs in process. Files are a few MiB; all on 127.0.0.1.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import xxhash from 'xxhash-wasm';
import { serve } from '../lib/serve.js';
import { get } from '../lib/download/get.js';
import { InlineChunkPool } from '../lib/pool.js';
import { TrackerServer } from '../lib/tracker/server.js';
import { FramedClient } from '../lib/net/framed-client.js';
import { MIN_CHUNK_BYTES } from '../lib/constants.js';
import { makeManifest, type Manifest } from '../lib/manifest.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import { SWARM_BIN } from './helpers/procs.js';
import { registerFake, startFakePeer, startFakeTracker, type FakeMode, type FakeOptions, type FakePeer } from './helpers/fake-peer.js';
import { forgeXxh64 } from './helpers/xxh64-forge.js';
import { freePort } from '../bench/lib/ports.js';

const MiB = MIN_CHUNK_BYTES;
/**
 * In-process downloads hash and receive on the main thread: under tap, worker threads boot with
 * its loaders (a second or more each on a busy machine), which would swamp what the tests time.
 */
const INLINE = { threads: 0, peerThreads: 0 } as const;
const MTIME = 1_700_000_000;
type T = Test;

/** A source folder with f.bin (seeded bytes, fixed mtime). */
function source(t: T, seed: number, size: number, name = 'f.bin'): { dir: string; file: string; data: Buffer } {
  const dir = tempDir(t);
  const data = randomBytes(prng(seed), size);
  const file = path.join(dir, name);
  writeFileSync(file, data);
  utimesSync(file, MTIME, MTIME);
  return { dir, file, data };
}

/**
 * An honest peer (in process), optionally rate-limited; closed at teardown. With `tracker` it is
 * registered from 127.0.0.2 (where it listens), so that the tracker, which sorts holders by
 * address, lists the attackers on 127.0.0.1 before it.
 */
async function honestPeer(t: T, dir: string, opts: { maxUploadBytesPerSec?: number; tracker?: number } = {}) {
  const host = opts.tracker ? '127.0.0.2' : '127.0.0.1';
  const h = await serve(dir, { port: 0, host, noTracker: true, pool: new InlineChunkPool(), watch: false, ...(opts.maxUploadBytesPerSec ? { maxUploadBytesPerSec: opts.maxUploadBytesPerSec } : {}) });
  t.teardown(() => h.close({ graceful: false }));
  const manifest = (name = 'f.bin') => h.library.manifest(name)!;
  if (opts.tracker) {
    const m = manifest();
    const reg = await registerFake(opts.tracker, h.port, [{ name: 'f.bin', mtime: h.library.stat('f.bin')!.mtime, size: m.size, cid: m.cid }], host);
    t.teardown(() => reg.close());
  }
  return { handle: h, port: h.port, address: `${host}:${h.port}`, manifest };
}

async function fake(t: T, file: string, m: Manifest, mode: FakeMode, o: FakeOptions = {}): Promise<FakePeer & { address: string }> {
  const f = await startFakePeer(file, m, mode, { mtime: MTIME, ...o });
  t.teardown(() => f.close());
  return Object.assign(f, { address: `127.0.0.1:${f.port}` });
}

async function tracker(t: T): Promise<TrackerServer> {
  const tr = new TrackerServer({ port: 0 });
  await tr.listen();
  t.teardown(() => tr.close());
  return tr;
}

interface CliResult {
  code: number | null;
  stdout: Buffer;
  stderr: Buffer;
  ms: number;
  /** stdout lines parsed as JSON where they are. */
  events: Record<string, unknown>[];
}

/** Run the CLI; its raw output bytes are kept. Killed (code null) after `limitMs`: never hangs the suite. */
function cli(t: T, args: string[], limitMs = 20_000): Promise<CliResult> {
  const started = Date.now();
  const child = spawn(process.execPath, [SWARM_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  t.teardown(() => {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return exited;
  });
  return exited.then((code) => {
    clearTimeout(timer);
    const stdout = Buffer.concat(out);
    const events: Record<string, unknown>[] = [];
    for (const line of stdout.toString().split('\n')) {
      try {
        events.push(JSON.parse(line));
      } catch {
        // not JSON
      }
    }
    return { code, stdout, stderr: Buffer.concat(err), ms: Date.now() - started, events };
  });
}

/**
 * Characters that must never reach a terminal raw: C0 controls but tab and newline (ESC, BEL,
 * CR, backspace...), DEL, C1 controls (CSI 0x9b, OSC 0x9d), bidi embeddings, overrides and
 * isolates, zero-width and other invisible format characters, BOM.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/u;

/**
 * Text for a test message or pattern: everything outside printable ASCII (but newlines, when
 * `lines`) as \u{N}. Raw controls and separators in a message would break TAP itself.
 */
const ascii = (s: string, lines = false) => s.replace(lines ? /[^\x20-\x7e\n]/gu : /[^\x20-\x7e]/gu, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);

function assertTerminalSafe(t: T, r: CliResult, what: string): void {
  for (const [stream, bytes] of [['stdout', r.stdout], ['stderr', r.stderr]] as const) {
    if (bytes.includes(0x1b)) t.fail(`${what}: raw ESC on ${stream}`);
    if (bytes.includes(0x07)) t.fail(`${what}: raw BEL on ${stream}`);
    const text = bytes.toString('utf8');
    const m = UNSAFE.exec(text);
    t.notOk(m, `${what}: ${stream} has no raw control/bidi/invisible character${m ? ` (found U+${m[0].codePointAt(0)!.toString(16).padStart(4, '0')} in "${ascii(text.slice(Math.max(0, m.index - 40), m.index + 40))}")` : ''}`);
  }
}

function finalNameAbsent(t: T, out: string, name = 'f.bin'): void {
  t.notOk(existsSync(path.join(out, name)), `nothing under the final name (folder holds: ${readdirSync(out).join(', ') || 'nothing'})`);
}

// ---------------------------------------------------------------------------------------------
// 1, 3a, 6. Forged chunks; liars alone

/** A forger's bytes for a chunk: its own text at the start, one solved stripe, the rest kept. */
const EVIL = Buffer.from('this chunk was replaced by a forger; xxhash64 cannot tell. ');

t.test('the xxhash64 forger: other bytes, same h64 (checked with xxhash-wasm), for short and whole chunks', async (t) => {
  const { h64Raw } = await xxhash();
  const rand = prng(90);
  for (const n of [64, 100, 4096, MiB]) {
    const real = randomBytes(rand, n);
    const fixes = [1, Math.floor(n / 32) - 1]; // a forged prefix of one stripe, and of all but the tail
    for (const fix of fixes) {
      const forged = forgeXxh64(real, EVIL, fix);
      t.equal(forged.length, real.length);
      t.notOk(forged.equals(real), `${n} bytes, fix ${fix}: the bytes differ`);
      t.ok(forged.subarray(0, 32).equals(Buffer.concat([EVIL, EVIL]).subarray(0, 32)), 'the forger chose the first stripe');
      t.equal(h64Raw(forged), h64Raw(real), `${n} bytes, fix ${fix}: same xxhash64`);
    }
  }
});

/** A forge function for the fake peer, and a record that every chunk it sent had the real xxhash64. */
async function forger() {
  const { h64Raw } = await xxhash();
  const sent = new Map<number, { sameXxh64: boolean; differs: boolean }>();
  const forge = (chunk: number, real: Buffer) => {
    if (real.length < 64) return real; // too short to forge this way: the forger sends it as it is
    const forged = forgeXxh64(real, EVIL, 1);
    sent.set(chunk, { sameXxh64: h64Raw(forged) === h64Raw(real), differs: !forged.equals(real) });
    return forged;
  };
  return { forge, sent };
}


t.test('liars alone (a forger, empty done + junk, wrong bytes with valid checksums, a forger that hangs up): exit 5 SWARM_ERR_HASH_MISMATCH within seconds, nothing under the final name', async (t) => {
  // whole chunks only: the first chunk a liar sends is picked at random, and a chunk shorter than
  // two xxhash64 stripes cannot be forged (the forger would send it as it is)
  const src = source(t, 1, 3 * MiB);
  const honest = await honestPeer(t, src.dir);
  const m = honest.manifest();
  await honest.handle.close({ graceful: false }); // it only lent its manifest
  const f = await forger();
  const forgerPeer = await fake(t, src.file, m, 'forge', { forge: f.forge });
  const emptyDone = await fake(t, src.file, m, 'empty-done');
  const wrong = await fake(t, src.file, m, 'wrong-bytes');
  // one forged chunk, then it hangs up before its strikes add up (in process)
  const f2 = await forger();
  const quitter = await fake(t, src.file, m, 'forge', { forge: f2.forge, closeAfterChunks: 1 });
  const outs = [tempDir(t), tempDir(t), tempDir(t), tempDir(t)] as const;
  const alone = (peer: { address: string }, out: string) => cli(t, ['get', 'f.bin', '--peer', peer.address, '-o', out, '--json'], 30_000);
  const [forged, empty, wrongBytes, quit] = await Promise.all([
    alone(forgerPeer, outs[0]),
    alone(emptyDone, outs[1]),
    alone(wrong, outs[2]),
    get('f.bin', { peers: [quitter.address], outDir: outs[3], ...INLINE }).catch((e: { code?: string; message?: string }) => e),
  ]);
  const cases = [
    ['forger', forged],
    ['empty done + junk', empty],
    ['wrong bytes with valid checksums', wrongBytes],
  ] as const;
  for (const [label, r] of cases) {
    const err = r.events.find((e) => e.event === 'error');
    t.equal(r.code, 5, `${label}: exit 5, not 4 (${err?.message})`);
    t.equal(err?.code, 'SWARM_ERR_HASH_MISMATCH', `${label}: SWARM_ERR_HASH_MISMATCH`);
    t.ok(r.ms < 10_000, `${label}: ended in ${r.ms} ms, not forever`);
  }
  t.ok(f.sent.size > 0, `the forger sent ${f.sent.size} forged chunk(s)`);
  t.ok([...f.sent.values()].every((s) => s.sameXxh64 && s.differs), 'every forged chunk had the real xxhash64 and other bytes');
  t.ok(emptyDone.requests < 100, `empty done was asked ${emptyDone.requests} times, not thousands`);
  t.equal(f2.sent.size, 1, 'the quitter sent one forged chunk');
  t.equal((quit as { code?: string }).code, 'SWARM_ERR_HASH_MISMATCH', `lied, then hung up: an integrity failure (${(quit as { message?: string }).message})`);
  for (const out of outs) finalNameAbsent(t, out);
});

t.test('a forger beside an honest peer, via --peer and via a tracker: byte-identical, the forger dropped', async (t) => {
  const src = source(t, 2, 5 * MiB + 77);
  // both routes at once (each with its own peers): nothing here is timed
  const route = async (via: 'peer' | 'tracker') => {
    const tr = via === 'tracker' ? await tracker(t) : null;
    const f = await forger();
    // the honest peer is slow, so the forger certainly gets work
    const probe = await honestPeer(t, src.dir);
    const evil = await fake(t, src.file, probe.manifest(), 'forge', { forge: f.forge });
    if (tr) await registerFake(tr.port, evil.port, [{ name: 'f.bin', mtime: MTIME, size: src.data.length, cid: probe.manifest().cid }]).then((r) => t.teardown(() => r.close()));
    const honest = await honestPeer(t, src.dir, { maxUploadBytesPerSec: 4 * MiB, ...(tr ? { tracker: tr.port } : {}) });
    if (tr) t.same(tr.registry.whoHas('f.bin')?.holders.map((h) => `${h.ip}:${h.port}`), [evil.address, honest.address], 'the forger is listed first');
    const out = tempDir(t);
    const p = get('f.bin', { ...(tr ? { tracker: `127.0.0.1:${tr.port}` } : { peers: [evil.address, honest.address] }), outDir: out, ...INLINE });
    const dropped: { peer: string; code: string }[] = [];
    p.download.on('peer-dropped', (e) => dropped.push(e));
    const r = await p;
    t.ok(readFileSync(path.join(out, 'f.bin')).equals(src.data), `via ${via}: byte-identical`);
    t.ok(f.sent.size > 0 && [...f.sent.values()].every((s) => s.sameXxh64), `via ${via}: ${f.sent.size} forged chunk(s) with the real xxhash64 were sent`);
    t.same(dropped.map((d) => d.peer), [evil.address], `via ${via}: the forger, and only it, was dropped`);
    t.equal(dropped[0]?.code, 'SWARM_ERR_HASH_MISMATCH');
    t.ok(r.badChunks >= 3, `via ${via}: ${r.badChunks} chunks failed their hash`);
  };
  await Promise.all([route('peer'), route('tracker')]);
});

// ---------------------------------------------------------------------------------------------
// 2. Lying manifests and stat answers

t.test('lying manifests and stat answers: honest peers are kept and serve; liars alone get a clear error and code', async (t) => {
  const src = source(t, 3, 3 * MiB + 1);
  const honest = await honestPeer(t, src.dir);
  const m = honest.manifest();
  const otherHashes = Buffer.from(m.hashes);
  otherHashes[0] ^= 0xff;
  const lies: { label: string; mode?: FakeMode; o: FakeOptions }[] = [
    { label: 'manifest that does not hash to the content id', o: { manifestAs: makeManifest(m.size, m.chunkBytes, otherHashes) } },
    { label: 'stat for another name', o: { statAs: { name: 'no/such/file.bin' } } },
    { label: 'stat for ../../etc/passwd', o: { statAs: { name: '../../etc/passwd' } } },
    { label: 'stat with another content id', o: { statAs: { cid: 'cd'.repeat(32) } } },
    { label: 'stat with another content id and size', o: { statAs: { cid: 'cd'.repeat(32), size: 77 } } },
  ];
  // each lie with its own liar and output folder, all at once (and the liars alone, below): nothing
  // here is timed
  const beside = Promise.all(
    lies.map(async (lie) => {
      const liar = await fake(t, src.file, m, lie.mode ?? 'honest', lie.o);
      const out = tempDir(t);
      const p = get('f.bin', { peers: [liar.address, honest.address], outDir: out, ...INLINE });
      const dropped: string[] = [];
      const warnings: string[] = [];
      p.download.on('peer-dropped', (e) => dropped.push(e.peer));
      p.download.on('warning', (e) => warnings.push(`${e.peer ?? ''} ${e.message}`));
      const r = await p.catch((e: Error) => e);
      t.notOk(r instanceof Error, `${lie.label}: the download succeeds (${r instanceof Error ? r.message : 'ok'})`);
      t.ok(existsSync(path.join(out, 'f.bin')) && readFileSync(path.join(out, 'f.bin')).equals(src.data), `${lie.label}: byte-identical`);
      t.notOk(dropped.includes(honest.address), `${lie.label}: the honest peer was not dropped`);
      t.equal(liar.requests, 0, `${lie.label}: the liar was left out (asked for no chunk)`);
      t.ok(warnings.some((w) => w.includes(liar.address) || w.includes('cdcdcdcd')), `${lie.label}: a warning says what was left out`);
    }),
  );

  // only liars
  const cases: { label: string; o: FakeOptions; exit: number; code: string }[] = [
    { label: 'manifest liar', o: { manifestAs: makeManifest(m.size, m.chunkBytes, otherHashes) }, exit: 5, code: 'SWARM_ERR_MANIFEST_MISMATCH' },
    { label: 'stat liar (another content id)', o: { statAs: { cid: 'cd'.repeat(32) } }, exit: 5, code: 'SWARM_ERR_MANIFEST_MISMATCH' },
    { label: 'stat liar (another name)', o: { statAs: { name: '../../etc/passwd' } }, exit: 4, code: 'SWARM_ERR_NO_PEERS' },
  ];
  const alone = Promise.all(
    cases.map(async (c) => {
      const liar = await fake(t, src.file, m, 'honest', c.o);
      const out = tempDir(t);
      const r = await cli(t, ['get', 'f.bin', '--peer', liar.address, '-o', out, '--json']);
      const err = r.events.find((e) => e.event === 'error');
      t.equal(r.code, c.exit, `${c.label} alone: exit ${c.exit} (${err?.message})`);
      t.equal(err?.code, c.code, `${c.label} alone: ${c.code}`);
      t.match(String(err?.message), new RegExp(liar.address.replace(/\./g, '\\.')), `${c.label}: the error names the peer`);
      finalNameAbsent(t, out);
    }),
  );
  await Promise.all([beside, alone]);
});

// ---------------------------------------------------------------------------------------------
// 3. Stall evasion


t.test('stall evaders beside a rate-limited honest peer: about as fast as the honest peer alone, evaders dropped or starved', async (t) => {
  const src = source(t, 5, 7 * MiB);
  const RATE = 4 * MiB;
  const m = (await honestPeer(t, src.dir)).manifest();
  /** A fresh honest peer per run (a fresh upload bucket), listed after the evaders. */
  const run = async (label: string, evaders: (FakePeer & { address: string })[]) => {
    const honest = await honestPeer(t, src.dir, { maxUploadBytesPerSec: RATE });
    const out = tempDir(t);
    const started = Date.now();
    const p = get('f.bin', { peers: [...evaders.map((e) => e.address), honest.address], outDir: out, ...INLINE });
    const dropped: string[] = [];
    p.download.on('peer-dropped', (e) => dropped.push(e.peer));
    const r = await p;
    const ms = Date.now() - started;
    t.ok(readFileSync(path.join(out, 'f.bin')).equals(src.data), `${label}: byte-identical`);
    t.notOk(dropped.includes(honest.address), `${label}: the honest peer kept`);
    return { ms, dropped, r };
  };
  const alone = await run('honest alone', []);
  // empty done + junk; one real chunk per 15 s in a flood of packets for requests never made; real
  // bytes of live requests at 8 KiB/s (never junk, never quite stalled), twice, so that in the
  // endgame the two trickles hold each other's chunks: all at once, listed first
  const emptyDone = await fake(t, src.file, m, 'empty-done');
  const drip = await fake(t, src.file, m, 'junk-drip', { dripMs: 15_000 });
  const trickle = await fake(t, src.file, m, 'trickle', { trickleBytesPerSec: 8192 });
  const trickle2 = await fake(t, src.file, m, 'trickle', { trickleBytesPerSec: 8192 });
  const evaded = await run('with evaders', [emptyDone, drip, trickle, trickle2]);
  t.comment(`honest alone: ${alone.ms} ms; beside empty-done, junk-drip and two trickles: ${evaded.ms} ms`);
  t.ok(evaded.ms < alone.ms * 1.5 + 2_000, `about as fast as the honest peer alone (${evaded.ms} vs ${alone.ms} ms)`);
  // an empty done is a strike: dropped at the third, unless the download ended before it asked again
  // (a third ask whose empty answer arrives after the download ended is not counted as a strike)
  t.ok(evaded.dropped.includes(emptyDone.address) || emptyDone.requests <= 3, `empty-done dropped or starved (asked ${emptyDone.requests} times)`);
  t.equal(evaded.r.peersUsed, 1, 'no evader delivered a verified chunk: the honest peer did the work (drip and trickle starved)');
  const asked = [emptyDone, drip, trickle, trickle2].map((e) => e.requests);
  t.ok(asked.every((n) => n < 30), `the evaders were asked ${asked.join(', ')} times, not thousands`);
});

// ---------------------------------------------------------------------------------------------
// 4. Holders that never answer; a hostile tracker

t.test('holders that never answer (silent: not even hello; stall: hello, then nothing) listed first in the tracker: the download starts and ends within seconds', async (t) => {
  const src = source(t, 6, 4 * MiB + 9);
  const m = (await honestPeer(t, src.dir)).manifest();
  for (const mode of ['silent', 'stall'] as const) {
    const tr = await tracker(t);
    const mute = await Promise.all([0, 1, 2, 3].map(() => fake(t, src.file, m, mode)));
    for (const s of mute) await registerFake(tr.port, s.port, [{ name: 'f.bin', mtime: MTIME, size: m.size, cid: m.cid }]).then((r) => t.teardown(() => r.close()));
    const honest = await honestPeer(t, src.dir, { tracker: tr.port });
    const listed = tr.registry.whoHas('f.bin')?.holders.map((h) => `${h.ip}:${h.port}`) ?? [];
    t.same(listed.slice(0, mute.length).sort(), mute.map((s) => s.address).sort(), `${mode}: the mute holders are listed first`);
    t.equal(listed[mute.length], honest.address, `${mode}: the honest holder last`);
    const out = tempDir(t);
    const started = Date.now();
    let startedAt = 0;
    const p = get('f.bin', { tracker: `127.0.0.1:${tr.port}`, outDir: out, ...INLINE });
    p.download.on('start', () => (startedAt = Date.now()));
    const dropped: string[] = [];
    p.download.on('peer-dropped', (e) => dropped.push(e.peer));
    const r = await p;
    const ms = Date.now() - started;
    t.ok(readFileSync(path.join(out, 'f.bin')).equals(src.data), `${mode}: byte-identical`);
    t.ok(startedAt && startedAt - started < 2_000, `${mode}: the transfer started after ${startedAt - started} ms`);
    // silent holders never said hello, so they got no request; stalling ones got some, and an
    // idle honest peer took back what two of them held between them (endgame duplicates)
    t.ok(ms < 4_500, `${mode}: done in ${ms} ms (not 30 s per mute holder, nor a 5 s first-chunk deadline)`);
    t.equal(r.peersUsed, 1, `${mode}: the honest holder did all the work`);
    t.notOk(dropped.includes(honest.address), `${mode}: the honest holder was not dropped`);
  }
});

t.test('the tracker refuses a registration with port 70000', async (t) => {
  const tr = await tracker(t);
  const c = new FramedClient('127.0.0.1', tr.port, { side: 'trackerReply' });
  await c.connect();
  t.teardown(() => c.destroy());
  await t.rejects(c.request({ t: 'register', port: 70000, files: [{ name: 'x.bin', mtime: 1, size: 1, cid: 'ab'.repeat(32) }] }, 'ok'), { code: 'SWARM_ERR_BAD_MESSAGE' });
  t.notOk(tr.registry.whoHas('x.bin'), 'nothing registered');
});

t.test('a hostile tracker (invalid ports, huge mtime, 60 duplicate holders, a bogus newer version, hostile names): get never hangs', async (t) => {
  const src = source(t, 7, 2 * MiB + 3);
  const m = (await honestPeer(t, src.dir)).manifest();
  const honest = await fake(t, src.file, m, 'honest'); // counts its connections
  const liar = await fake(t, src.file, m, 'honest'); // hands out the real manifest for any content id
  const dead = await freePort();
  const bad = { ip: '127.0.0.1', port: 70000 };
  const h = (p: number) => ({ ip: '127.0.0.1', port: p });
  const bogusCid = 'ee'.repeat(32);
  const versions: Record<string, unknown[]> = {
    'f.bin': [
      { cid: bogusCid, size: m.size, mtime: MTIME + 100, holders: [h(liar.port)], partial: [] },
      { cid: 'dd'.repeat(32), size: m.size, mtime: 1e300, holders: [h(honest.port)], partial: [] },
      { cid: 'cc'.repeat(32), size: m.size, mtime: MTIME + 50, holders: [bad], partial: [] },
      { cid: m.cid, size: m.size, mtime: MTIME, holders: [bad, ...Array.from({ length: 60 }, () => h(honest.port))], partial: [bad] },
    ],
    'gone.bin': [{ cid: m.cid, size: m.size, mtime: MTIME, holders: [bad, h(dead)], partial: [] }],
    'invalid.bin': [{ cid: m.cid, size: m.size, mtime: MTIME, holders: [bad], partial: [] }],
  };
  const ft = await startFakeTracker({ versions: (name) => versions[name] ?? [] });
  t.teardown(() => ft.close());
  const tArg = `127.0.0.1:${ft.port}`;

  const out = tempDir(t);
  const [newest, gone, invalid] = await Promise.all([
    cli(t, ['get', 'f.bin', '-t', tArg, '-o', out]),
    cli(t, ['get', 'gone.bin', '-t', tArg, '-o', tempDir(t), '--json'], 25_000),
    cli(t, ['get', 'invalid.bin', '-t', tArg, '-o', tempDir(t), '--json'], 25_000),
  ]);
  const text = ascii(newest.stderr.toString());
  t.equal(newest.code, 5, `the newest version cannot be fetched: its only holder lies (exit ${newest.code}: ${text.trim()})`);
  t.match(text, bogusCid.slice(0, 16), 'the error names the version it tried');
  t.match(text, m.cid.slice(0, 16), 'the error names the version that remains');
  t.match(text, /--version/, 'and says how to fetch it');
  t.notMatch(text, /dddddddd|cccccccc/, 'versions with a huge mtime or no valid holder are not offered');
  assertTerminalSafe(t, newest, 'get (bogus newest version)');
  finalNameAbsent(t, out);

  const older = await cli(t, ['get', 'f.bin', '-t', tArg, '-o', out, '--version', m.cid.slice(0, 12), '--json']);
  t.equal(older.code, 0, `--version fetches the older version (${ascii(older.stderr.toString().trim())})`);
  t.ok(readFileSync(path.join(out, 'f.bin')).equals(src.data), 'byte-identical');
  t.ok(honest.connections <= 2, `60 duplicate holders are one peer: ${honest.connections} connection(s) to it`);

  t.equal(gone.code, 4, `holders on port 70000 and a dead port: exit 4 (${gone.events.find((e) => e.event === 'error')?.message})`);
  t.ok(gone.ms < 15_000, `gave up in ${gone.ms} ms`);
  t.ok(invalid.code === 3 || invalid.code === 4, `a version with no valid holder: not found or no peers, exit ${invalid.code}`);
  t.ok(invalid.ms < 15_000, `gave up in ${invalid.ms} ms`);
});

// ---------------------------------------------------------------------------------------------
// 5. Terminal injection

const BIDI_NAME = '\u202etxt.exe';
const HOSTILE_NAMES = [
  'red\u001b[31mALERT\u001b[0m.txt',
  'title\u001b]0;pwned\u0007.txt',
  '\u202etxt.exe',
  'zero\u200bwidth\u200d.txt',
  'c1\u009b31mcsi.txt',
  'isolate\u2066x\u2069.txt',
  'bell\u0007.txt',
  'back\bspace.txt',
  'line\u2028sep.txt',
];

t.test('hostile names from a peer and a tracker, and hostile peer messages: no raw control or bidi byte reaches the terminal', async (t) => {
  const src = source(t, 8, MiB + 1);
  const m = (await honestPeer(t, src.dir)).manifest();
  const entry = (name: string) => ({ name, size: 10, mtime: MTIME, kind: 'other', cid: m.cid });
  const lister = await fake(t, src.file, m, 'honest', { listAs: [...HOSTILE_NAMES.map(entry), entry('../../etc/passwd'), entry('plain.txt')] });
  const h = (p: number) => ({ ip: '127.0.0.1', port: p });
  const dirEntry = (extra: Record<string, unknown> = {}) => ({ cid: m.cid, size: 10, mtime: MTIME, holders: [h(lister.port)], partial: [], versions: 1, ...extra });
  const directory: Record<string, unknown> = Object.fromEntries(HOSTILE_NAMES.map((n) => [n, dirEntry()]));
  Object.assign(directory, {
    '../../etc/passwd': dirEntry(),
    'huge-mtime.bin': dirEntry({ mtime: 1e300 }),
    'bad-port.bin': dirEntry({ holders: [{ ip: '127.0.0.1', port: 70000 }] }),
    'dup.bin': dirEntry({ holders: Array.from({ length: 60 }, () => h(lister.port)) }),
  });
  const ft = await startFakeTracker({
    directory: [directory, { 'page2\u001b[2J.bin': dirEntry(), 'second-page.bin': dirEntry() }],
    // f.bin and the bidi name are served (any content id's manifest comes from the lister)
    versions: (name) => (name === 'f.bin' || name === BIDI_NAME ? [{ cid: m.cid, size: m.size, mtime: MTIME, holders: [h(lister.port)], partial: [] }] : []),
  });
  t.teardown(() => ft.close());
  const tArg = `127.0.0.1:${ft.port}`;
  const hostileError = { code: 'SWARM_ERR_BUSY', message: 'busy \u001b]0;pwned\u0007 \u001b[2J \u202eevil \u009b31m' };
  const statErr = await fake(t, src.file, m, 'honest', { statError: hostileError });
  const refuser = await fake(t, src.file, m, 'refuse', { getError: { code: 'SWARM_ERR_NOT_FOUND\u001b[31m', message: 'gone \u001b]0;pwned\u0007 \u202eevil' } });
  const out = tempDir(t);

  const bidiOut = tempDir(t);
  const [lsPeer, lsTracker, who, whoHostile, getStatErr, getRefused, getBidi, getRefusedJson] = await Promise.all([
    cli(t, ['ls', '--peer', lister.address]),
    cli(t, ['ls', '--tracker', tArg]),
    cli(t, ['who', 'f.bin', '--tracker', tArg]),
    cli(t, ['who', 'x\u001b[31m\u202e.bin', '--tracker', tArg]),
    cli(t, ['get', 'f.bin', '--peer', statErr.address, '-o', out]),
    cli(t, ['get', 'f.bin', '--peer', refuser.address, '--peer', lister.address, '-o', tempDir(t)]),
    cli(t, ['get', BIDI_NAME, '--tracker', tArg, '-o', bidiOut]),
    cli(t, ['get', 'f.bin', '--peer', refuser.address, '--peer', lister.address, '-o', tempDir(t), '--json']),
  ]);
  assertTerminalSafe(t, lsPeer, 'ls --peer');
  assertTerminalSafe(t, lsTracker, 'ls --tracker');
  assertTerminalSafe(t, who, 'who');
  assertTerminalSafe(t, whoHostile, 'who with a hostile name typed');
  assertTerminalSafe(t, getStatErr, 'get: a peer\'s hostile error message');
  assertTerminalSafe(t, getRefused, 'get: a peer\'s hostile get error');
  assertTerminalSafe(t, getBidi, 'get of a name with a bidi override');

  t.equal(lsPeer.code, 0);
  const peerOut = ascii(lsPeer.stdout.toString(), true);
  t.match(peerOut, /\\u\{202e\}txt\.exe/, 'ls --peer: the bidi override is shown escaped');
  t.match(peerOut, /zero\\u\{200b\}width/, 'ls --peer: zero-width characters are shown escaped');
  t.match(peerOut, /c1\\x9b31mcsi/, 'ls --peer: C1 CSI is shown escaped');
  t.match(peerOut, /plain\.txt/);
  t.notMatch(peerOut, /etc\/passwd/, 'ls --peer: ../../etc/passwd is left out');
  t.match(ascii(lsPeer.stderr.toString()), /left out as invalid/, 'ls --peer: says entries were left out');

  t.equal(lsTracker.code, 0, `ls --tracker works (${ascii(lsTracker.stderr.toString().trim())})`);
  const trOut = ascii(lsTracker.stdout.toString(), true);
  t.match(trOut, /\\u\{202e\}txt\.exe/, 'ls --tracker: the bidi override is shown escaped');
  t.match(trOut, /second-page\.bin/, 'ls --tracker: the second page is listed');
  t.notMatch(trOut, /huge-mtime|bad-port|etc\/passwd/, 'ls --tracker: entries with a huge mtime, an invalid port or an escaping name are left out');
  const dupLine = trOut.split('\n').find((l) => l.startsWith('dup.bin')) ?? '';
  t.equal(dupLine.split(`127.0.0.1:${lister.port}`).length - 1, 1, `ls --tracker: 60 duplicate holders shown once (${dupLine})`);
  t.match(ascii(lsTracker.stderr.toString()), /left out as invalid/);

  t.equal(who.code, 0);
  t.equal(whoHostile.code, 3);
  t.equal(getStatErr.code, 4, `get from a peer that answers with a hostile error: exit 4 (${ascii(getStatErr.stderr.toString().trim())})`);
  t.match(ascii(getStatErr.stderr.toString()), /busy \\x1b\]0;pwned\\x07/, 'the hostile message is shown escaped');
  t.equal(getRefused.code, 0, `get beside a refusing peer succeeds (${ascii(getRefused.stderr.toString().trim())})`);
  const codes = getRefusedJson.events.filter((e) => e.event === 'warning' || e.event === 'peer-dropped').map((e) => String(e.code));
  t.ok(codes.length > 0 && codes.every((c) => /^SWARM_ERR_[A-Z_]+$/.test(c)), `a peer's own error code is not passed on as it is (--json codes: ${ascii(codes.join(', '))})`);
  t.equal(getBidi.code, 0, `get of a bidi name succeeds (${ascii(getBidi.stderr.toString().trim())})`);
  t.match(ascii(getBidi.stderr.toString()), /\\u\{202e\}txt\.exe/, 'get shows the bidi name escaped');
  t.ok(readFileSync(path.join(bidiOut, BIDI_NAME)).equals(src.data), 'and saves it under its real name');
});
