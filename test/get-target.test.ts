/**
 * The download's target: nothing wrong or half-written ever sits under the final name, and a
 * user's own files are never lost (issue 9, "one writer per target").
 *
 * - Two downloads of one file into one folder at every interleaving the test can force: one is held
 *   at each step of the sequence (GetOptions.onStep, a test hook) while the other runs to each of
 *   its steps, released in both orders; the outcome of each is predicted by a model of the lock.
 *   Also on the 'start' and first 'progress' events of a rate-limited download, and two CLI
 *   processes started together. Meanwhile the final name is sampled: absent, or complete and exact.
 * - Locks left by a process that is gone are taken over; a live one names its holder's pid.
 * - What is already at NAME: another file (kept unless --overwrite, refused before any data is
 *   asked for), the same bytes with another mtime, a folder, a file that appears mid-download.
 * - Folders that can never be made (/proc/x); SIGINT/SIGTERM at resolve and during transfer;
 *   `abort()` at every step; ticket saves that fail (folder removed, no inode left on a tmpfs);
 *   temp files left by a kill -9.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statfsSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { serve } from '../lib/serve.js';
import { get, type GetOptions, type GetStep } from '../lib/download/get.js';
import type { DoneEvent } from '../lib/download/events.js';
import { InlineChunkPool } from '../lib/pool.js';
import { MIN_CHUNK_BYTES, LOCK_SUFFIX, PART_SUFFIX, TICKET_SUFFIX, TEMP_MARK } from '../lib/constants.js';
import { SwarmError } from '../lib/errors.js';
import { Ticket } from '../lib/storage/ticket.js';
import { TargetLock } from '../lib/storage/lock.js';
import { chunksOf } from '../lib/manifest.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import { swarm } from './helpers/procs.js';
import { startFakePeer, type FakePeer } from './helpers/fake-peer.js';

const MiB = MIN_CHUNK_BYTES;
const NAME = 'f.bin';
const MTIME = 1_650_000_000;
type T = { teardown(fn: () => unknown): void };

// Any rejection nobody handled fails the last test (a failed ticket save once was one).
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);
process.on('unhandledRejection', onUnhandled);

/** A seeder of `data` as NAME, in this process; `rate` (bytes/s) makes the download last. */
async function seeder(t: T, data: Buffer, rate?: number) {
  const src = tempDir(t);
  writeFileSync(path.join(src, NAME), data);
  utimesSync(path.join(src, NAME), MTIME, MTIME);
  const h = await serve(src, { port: 0, noTracker: true, pool: new InlineChunkPool(), watch: false, ...(rate ? { maxUploadBytesPerSec: rate } : {}) });
  t.teardown(() => h.close({ graceful: false }));
  return { peer: `127.0.0.1:${h.port}`, src, m: h.library.manifest(NAME)!, file: path.join(src, NAME) };
}

/**
 * A seeder behind a gate: a proxy that passes each connection's first `freeBytes` from the seeder
 * (enough for hello, stat and manifest, and for a first chunk), then holds the rest until `more()`
 * lets some more through or `open()` all of it. A download through it is certainly still running
 * until the test says so, however loaded the machine is: no timing assumption.
 */
async function gatedSeeder(t: T, data: Buffer, freeBytes = MiB + MiB / 2) {
  const s = await seeder(t, data);
  const upstreamPort = Number(s.peer.split(':')[1]);
  let opened = false;
  let allowance = freeBytes;
  const held: net.Socket[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    for (const x of [client, upstream]) {
      sockets.add(x);
      x.on('error', () => {});
      x.on('close', () => sockets.delete(x));
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    let passed = 0;
    upstream.on('data', (d: Buffer) => {
      passed += d.length;
      client.write(d);
      if (!opened && passed >= allowance) {
        upstream.pause();
        held.push(upstream);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const x of sockets) x.destroy();
        server.close(() => r());
      }),
  );
  return {
    ...s,
    peer: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    open() {
      opened = true;
      for (const u of held.splice(0)) u.resume();
    },
    /** Let about `bytes` more through on every connection (enough for a chunk: its ticket save). */
    more(bytes = MiB + MiB / 4) {
      allowance += bytes;
      for (const u of held.splice(0)) u.resume();
    },
  };
}

/** An honest fake peer that counts the data requests it gets (to see that none was made). */
async function countingPeer(t: T, s: Awaited<ReturnType<typeof seeder>>): Promise<FakePeer> {
  const f = await startFakePeer(s.file, s.m, 'honest', { name: NAME, mtime: MTIME });
  t.teardown(() => f.close());
  return f;
}

type Outcome = { ok: true; upToDate: boolean; r: DoneEvent } | { ok: false; code: string; message: string };
function settle(p: Promise<DoneEvent>): Promise<Outcome> {
  return p.then(
    (r) => ({ ok: true as const, upToDate: r.upToDate, r }),
    (e: unknown) => ({ ok: false as const, code: e instanceof SwarmError ? e.code : `not a SwarmError: ${String(e)}`, message: (e as Error).message }),
  );
}

/**
 * Samples the final name every 10 ms (and when asked) while downloads run: it must be absent or hold exactly
 * `data`. Reads the whole file each time (a few MiB), so a torn or foreign file is seen.
 */
function sampler(file: string, data: Buffer) {
  let samples = 0;
  let present = 0;
  const bad: string[] = [];
  const look = () => {
    samples++;
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') bad.push(String(err));
      return;
    }
    present++;
    if (!bytes.equals(data)) bad.push(`${bytes.length} bytes, not the right ones`);
  };
  const timer = setInterval(look, 10);
  return {
    look,
    stop() {
      clearInterval(timer);
      look();
      return { samples, present, bad };
    },
  };
}

/**
 * A temp folder in memory where there is one (/dev/shm): the many short downloads of the
 * interleaving test then spend no time in fsync, which their outcome does not depend on.
 */
function memDir(t: T): string {
  let root = tmpdir();
  try {
    const probe = mkdtempSync('/dev/shm/swarm-probe-');
    rmSync(probe, { recursive: true });
    root = '/dev/shm';
  } catch {
    // no /dev/shm here: the disk it is
  }
  const dir = mkdtempSync(path.join(root, 'swarm-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Paths under `dir` that this process holds open (from /proc/self/fd). */
function openFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir + '/')) out.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Files in `dir` other than NAME (leftovers). */
function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((n) => n !== NAME);
}

/** Resolves when `pred` holds (polled; for states that raise no event), or fails after `ms`. */
async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Resolves once the download into `out` has a verified chunk on disk (its ticket says so): sooner
 * than the CLI's progress lines, which come once a second.
 */
async function untilFetching(out: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const loaded = await Ticket.load(path.join(out, NAME + TICKET_SUFFIX));
    if (loaded.ticket && Buffer.from(loaded.ticket.verified, 'base64').some((b) => b !== 0)) return;
    if (Date.now() > end) throw new Error(`timed out waiting for a verified chunk in ${out}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Holds a download at `step`: `reached` resolves when it got there, `release` lets it go on. */
function holdAt(step: GetStep | null) {
  let reached!: () => void;
  let release!: () => void;
  const r = new Promise<void>((res) => (reached = res));
  const go = new Promise<void>((res) => (release = res));
  return {
    reached: r,
    release: () => release(),
    onStep: (s: GetStep) => {
      if (s !== step) return;
      reached();
      return go;
    },
  };
}

const STEPS: GetStep[] = ['resolved', 'locked', 'checked', 'prepared', 'transferred', 'finished'];
type Expect = 'fetched' | 'upToDate' | 'locked';

/**
 * The model: A runs to its step and is held there; B starts and runs to its own; then `first` is
 * released and runs to its end, then the other. The lock is taken between 'resolved' and
 * 'locked'; what is at NAME is looked at between 'locked' and 'checked' (same content: up to
 * date, done); NAME holds the file from 'finished' on; the lock is let go at the end.
 */
function model(stepA: GetStep, stepB: GetStep, first: 'A' | 'B'): Record<'A' | 'B', Expect> {
  let lock: 'A' | 'B' | null = null;
  let file = false;
  const at = { A: -1, B: -1 };
  const out: Partial<Record<'A' | 'B', Expect>> = {};
  const run = (x: 'A' | 'B', to: number) => {
    while (out[x] === undefined && at[x] < to) {
      const next = at[x] + 1;
      if (next === 1) {
        if (lock) {
          out[x] = 'locked';
          return;
        }
        lock = x;
      }
      if (next === 2 && file) {
        out[x] = 'upToDate';
        lock = null;
        return;
      }
      if (next === 5) file = true;
      at[x] = next;
      if (next === 6) {
        out[x] = 'fetched';
        lock = null;
      }
    }
  };
  run('A', STEPS.indexOf(stepA));
  run('B', STEPS.indexOf(stepB));
  const second = first === 'A' ? 'B' : 'A';
  run(first, 6);
  run(second, 6);
  return out as Record<'A' | 'B', Expect>;
}

function kind(o: Outcome): Expect | string {
  if (o.ok) return o.upToDate ? 'upToDate' : 'fetched';
  return o.code === 'SWARM_ERR_LOCKED' ? 'locked' : `${o.code}: ${o.message}`;
}

t.test('two gets of one target at every forced interleaving: NAME only ever holds the right bytes', async (t) => {
  const data = randomBytes(prng(901), MiB + 777);
  const s = await seeder(t, data);
  const fast: GetOptions = { peers: [s.peer], threads: 0, peerThreads: 0 };
  let runs = 0;
  let sampled = 0;
  let seenPresent = 0;
  for (const stepA of STEPS) {
    for (const stepB of STEPS) {
      for (const first of ['A', 'B'] as const) {
        // A holds the lock and B goes for it: B is refused at once, the order of release is moot
        if (first === 'B' && STEPS.indexOf(stepA) >= 1 && stepB !== 'resolved') continue;
        const label = `A held at ${stepA}, B at ${stepB}, ${first} released first`;
        const out = memDir(t);
        const finalPath = path.join(out, NAME);
        const watch = sampler(finalPath, data);
        const ha = holdAt(stepA);
        const ra = settle(get(NAME, { ...fast, outDir: out, onStep: ha.onStep }));
        await Promise.race([ha.reached, ra]);
        watch.look(); // at every hold, besides the timer's samples
        const hb = holdAt(stepB);
        const rb = settle(get(NAME, { ...fast, outDir: out, onStep: hb.onStep }));
        await Promise.race([hb.reached, rb]);
        watch.look();
        let oa: Outcome;
        let ob: Outcome;
        if (first === 'A') {
          ha.release();
          oa = await ra;
          watch.look();
          hb.release();
          ob = await rb;
        } else {
          hb.release();
          ob = await rb;
          watch.look();
          ha.release();
          oa = await ra;
        }
        const seen = watch.stop();
        sampled += seen.samples;
        seenPresent += seen.present;
        runs++;
        const want = model(stepA, stepB, first);
        const got = { A: kind(oa), B: kind(ob) };
        if (got.A !== want.A || got.B !== want.B) t.same(got, want, label);
        if (seen.bad.length) t.same(seen.bad, [], `${label}: NAME held something wrong`);
        for (const o of [oa, ob]) if (!o.ok && o.code === 'SWARM_ERR_LOCKED' && !o.message.includes(`pid ${process.pid}`)) t.fail(`${label}: the LOCKED message names the holder: ${o.message}`);
        if (!readFileSync(finalPath).equals(data)) t.fail(`${label}: final bytes`);
        const left = leftovers(out);
        if (left.length) t.same(left, [], `${label}: leftovers`);
        const open = openFilesUnder(out);
        if (open.length) t.same(open, [], `${label}: descriptors left open`);
      }
    }
  }
  t.equal(runs, STEPS.length * STEPS.length * 2 - (STEPS.length - 1) ** 2, `${runs} interleavings, each outcome as the model says`);
  t.ok(sampled > runs && seenPresent > 0, `NAME sampled ${sampled} times while downloads ran (${seenPresent} times present), never wrong`);
});

t.test('B started on A\'s start event and on its first progress: LOCKED at once, A unharmed', async (t) => {
  const data = randomBytes(prng(902), 3 * MiB + 5);
  // both cases at once, each with its own gated seeder: A cannot finish before B has tried
  const one = async (when: 'start' | 'progress') => {
    const s = await gatedSeeder(t, data);
    const out = tempDir(t);
    const watch = sampler(path.join(out, NAME), data);
    const pa = get(NAME, { peers: [s.peer], outDir: out, threads: 0, peerThreads: 0 });
    const ra = settle(pa);
    let aDone = false;
    void ra.then(() => (aDone = true));
    const rb = await new Promise<Outcome>((resolve) => {
      const go = () => resolve(settle(get(NAME, { peers: [s.peer], outDir: out, threads: 0, peerThreads: 0 })));
      if (when === 'start') pa.download.once('start', go);
      else pa.download.on('progress', (e) => e.bytes > 0 && go());
    });
    t.notOk(aDone, `${when}: B settled while A was still downloading`);
    t.equal(kind(rb), 'locked', `${when}: B is refused`);
    t.match(!rb.ok && rb.message, new RegExp(`pid ${process.pid}.*${NAME}`), 'the message names the holder and the target');
    s.open();
    t.equal(kind(await ra), 'fetched', `${when}: A completes`);
    t.same(watch.stop().bad, []);
    t.ok(readFileSync(path.join(out, NAME)).equals(data), 'byte-identical');
    t.same(leftovers(out), [], 'no lock, part, ticket or temp file left');
  };
  await Promise.all([one('start'), one('progress')]);
});

t.test('two CLI gets started together: one saves, the other exits 8 naming its pid; no leftovers', async (t) => {
  const data = randomBytes(prng(903), 3 * MiB + 11);
  const s = await gatedSeeder(t, data); // the winner is held until the loser has exited
  const out = tempDir(t);
  const watch = sampler(path.join(out, NAME), data);
  const args = ['get', NAME, '--peer', s.peer, '-o', out, '--json'];
  const procs = [swarm(t, args), swarm(t, args)];
  await Promise.race(procs.map((p) => p.exit));
  s.open();
  const exits = await Promise.all(procs.map((p) => p.exit));
  const seen = watch.stop();
  t.same(seen.bad, [], `NAME sampled ${seen.samples} times, never wrong`);
  t.same(exits.map((e) => e.code).sort(), [0, 8], `one saved, one refused; said: ${procs.map((p) => p.lines.filter((l) => !l.includes('"progress"')).join(' | ')).join(' || ')}`);
  const loser = exits[0]!.code === 8 ? 0 : 1;
  const text = procs[loser]!.lines.join('\n');
  t.match(text, /SWARM_ERR_LOCKED/);
  t.match(text, new RegExp(`pid ${procs[1 - loser]!.child.pid}\\b`), 'the message names the other process');
  t.ok(readFileSync(path.join(out, NAME)).equals(data), 'byte-identical');
  t.same(leftovers(out), []);
});

t.test('a lock left by a killed get is taken over and the download resumes; a live holder is named', async (t) => {
  const data = randomBytes(prng(904), 4 * MiB + 3);
  const s = await gatedSeeder(t, data);
  const out = tempDir(t);
  const args = ['get', NAME, '--peer', s.peer, '-o', out, '--json'];
  const first = swarm(t, args);
  await untilFetching(out);
  first.kill('SIGKILL');
  await first.exit;
  const lockFile = path.join(out, NAME + LOCK_SUFFIX);
  t.ok(existsSync(lockFile), 'the killed get left its lock');
  t.equal(JSON.parse(readFileSync(lockFile, 'utf8')).pid, first.child.pid);
  s.open();
  const done = await get(NAME, { peers: [s.peer], outDir: out, threads: 0, peerThreads: 0 });
  t.ok(done.resumedChunks > 0, `resumed ${done.resumedChunks} chunks`);
  t.ok(readFileSync(path.join(out, NAME)).equals(data), 'byte-identical');
  t.same(leftovers(out), [], 'the stale lock is gone too');

  // a lock written by hand: a dead pid on this host is stale; a live one (pid 1) is not
  const fast = await seeder(t, data);
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  const out2 = tempDir(t);
  writeFileSync(path.join(out2, NAME + LOCK_SUFFIX), JSON.stringify({ pid: dead, host: hostname(), started: new Date().toISOString() }));
  const r = await get(NAME, { peers: [fast.peer], outDir: out2, threads: 0, peerThreads: 0 });
  t.notOk(r.upToDate);
  t.same(leftovers(out2), [], 'dead pid: taken over and released');
  const out3 = tempDir(t);
  writeFileSync(path.join(out3, NAME + LOCK_SUFFIX), JSON.stringify({ pid: 1, host: hostname(), started: new Date().toISOString() }));
  const locked = await settle(get(NAME, { peers: [fast.peer], outDir: out3, threads: 0, peerThreads: 0 }));
  t.equal(kind(locked), 'locked');
  t.match(!locked.ok && locked.message, /pid 1\b/);
  t.same(leftovers(out3), [NAME + LOCK_SUFFIX], 'a live lock is left alone, nothing else made');
  // an empty lock (a process killed between creating and writing it) is stale once old
  const out4 = tempDir(t);
  writeFileSync(path.join(out4, NAME + LOCK_SUFFIX), '');
  utimesSync(path.join(out4, NAME + LOCK_SUFFIX), MTIME, MTIME);
  t.notOk((await get(NAME, { peers: [fast.peer], outDir: out4, threads: 0, peerThreads: 0 })).upToDate);
  t.same(leftovers(out4), []);

  // a live pid that belongs to another process than the one that locked (pid reused), or a lock
  // from before a reboot: stale. What killed contenders left beside a lock is swept.
  const lockAt = (dir: string) => path.join(dir, NAME + LOCK_SUFFIX);
  for (const [label, holder] of [
    ['pid reused', { pid: process.pid, host: hostname(), started: 'x', since: '1' }],
    ['another boot', { pid: process.pid, host: hostname(), started: 'x', boot: 'not-this-boot' }],
  ] as const) {
    const dir = tempDir(t);
    writeFileSync(lockAt(dir), JSON.stringify(holder));
    writeFileSync(`${lockAt(dir)}${TEMP_MARK}${dead}-00ff00ff`, '{}');
    writeFileSync(`${lockAt(dir)}.stale-${dead}`, '{}');
    const o = await settle(get(NAME, { peers: [fast.peer], outDir: dir, threads: 0, peerThreads: 0 }));
    t.equal(kind(o), 'fetched', `${label}: taken over`);
    t.same(leftovers(dir), [], `${label}: nothing left`);
  }
  const remote = tempDir(t);
  writeFileSync(lockAt(remote), JSON.stringify({ pid: dead, host: 'another-machine', started: 'x' }));
  const far = await settle(get(NAME, { peers: [fast.peer], outDir: remote, threads: 0, peerThreads: 0 }));
  t.match(!far.ok && far.message, /pid \d+ on another-machine/, 'a lock from another host cannot be judged: refused, naming it');
});

t.test('a stale lock seen by many contenders at once: exactly one takes it over, every time', async (t) => {
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  const dir = tempDir(t);
  const target = path.join(dir, NAME);
  let trials = 0;
  const bad: string[] = [];
  for (; trials < 20; trials++) {
    // alternately a dead holder and an old unreadable (empty) lock
    writeFileSync(target + LOCK_SUFFIX, trials % 2 ? '' : JSON.stringify({ pid: dead, host: hostname(), started: 'x' }));
    if (trials % 2) utimesSync(target + LOCK_SUFFIX, MTIME, MTIME);
    // staggered by 0-3 ms, so some contenders read the lock while another is taking it over
    const rs = await Promise.allSettled(Array.from({ length: 16 }, (_, k) => new Promise((r) => setTimeout(r, k % 4)).then(() => TargetLock.acquire(target))));
    const won = rs.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refusals = rs.flatMap((r) => (r.status === 'rejected' ? [r.reason as SwarmError] : []));
    if (won.length !== 1) bad.push(`trial ${trials}: ${won.length} holders at once`);
    for (const e of refusals) if (e.code !== 'SWARM_ERR_LOCKED' || !e.message.includes(`pid ${process.pid}`)) bad.push(`trial ${trials}: ${e.code} ${e.message}`);
    for (const w of won) await w.release();
    const left = readdirSync(dir);
    if (left.length) bad.push(`trial ${trials}: left ${left.join(', ')}`);
    for (const n of left) rmSync(path.join(dir, n), { force: true });
  }
  t.same(bad, [], `${trials} trials of 16 contenders`);
});

t.test('a different file at NAME: refused before any data is asked for, replaced only with --overwrite', async (t) => {
  const data = randomBytes(prng(905), 2 * MiB + 9);
  const s = await seeder(t, data);
  const peer = await countingPeer(t, s);
  const out = tempDir(t);
  const finalPath = path.join(out, NAME);
  const notes = Buffer.from('my own notes, not from the swarm\n');
  writeFileSync(finalPath, notes);
  utimesSync(finalPath, 1_500_000_000, 1_500_000_000);
  const args = ['get', NAME, '--peer', `127.0.0.1:${peer.port}`, '-o', out, '--json'];
  const refused = swarm(t, args);
  t.equal((await refused.exit).code, 8);
  t.match(refused.lines.join('\n'), /SWARM_ERR_EXISTS.*already exists with other content.*--overwrite/);
  t.ok(readFileSync(finalPath).equals(notes), 'the notes are intact');
  t.equal(statSync(finalPath).mtimeMs, 1_500_000_000_000, 'and their mtime');
  t.same(leftovers(out), [], 'no part file, ticket or lock was made');
  t.equal(peer.requests, 0, 'no peer was asked for data');

  // the same bytes under another mtime: recognised, nothing fetched, mtime set
  writeFileSync(finalPath, data);
  const same = await get(NAME, { peers: [`127.0.0.1:${peer.port}`], outDir: out, threads: 0, peerThreads: 0 });
  t.ok(same.upToDate, 'recognised as this content');
  t.equal(statSync(finalPath).mtimeMs, MTIME * 1000, 'mtime set to the swarm\'s');
  t.equal(peer.requests, 0, 'nothing fetched');

  writeFileSync(finalPath, notes);
  const over = await get(NAME, { peers: [`127.0.0.1:${peer.port}`], outDir: out, overwrite: true, threads: 0, peerThreads: 0 });
  t.notOk(over.upToDate);
  t.ok(readFileSync(finalPath).equals(data), '--overwrite replaced it');
  t.equal(statSync(finalPath).mtimeMs, MTIME * 1000);
  t.same(leftovers(out), []);
});

t.test('a folder at NAME is refused before fetching (exit 8), and left as it is', async (t) => {
  const data = randomBytes(prng(906), MiB + 1);
  const s = await seeder(t, data);
  const peer = await countingPeer(t, s);
  const out = tempDir(t);
  mkdirSync(path.join(out, NAME));
  writeFileSync(path.join(out, NAME, 'inside.txt'), 'x');
  const run = swarm(t, ['get', NAME, '--peer', `127.0.0.1:${peer.port}`, '-o', out, '--json']);
  t.equal((await run.exit).code, 8);
  t.match(run.lines.join('\n'), /SWARM_ERR_EXISTS.*is a folder/);
  t.equal(peer.requests, 0, 'no peer was asked for data');
  t.same(leftovers(out), [], 'no part file');
  t.same(readdirSync(path.join(out, NAME)), ['inside.txt']);
  // even with --overwrite a folder is not replaced
  const over = await settle(get(NAME, { peers: [`127.0.0.1:${peer.port}`], outDir: out, overwrite: true, threads: 0, peerThreads: 0 }));
  t.equal(!over.ok && over.code, 'SWARM_ERR_EXISTS');
  t.equal(peer.requests, 0);
});

t.test('a file that appears at NAME during the download is not replaced; the download stays in the part file', async (t) => {
  const data = randomBytes(prng(907), 3 * MiB + 21);
  const s = await gatedSeeder(t, data);
  const out = tempDir(t);
  const finalPath = path.join(out, NAME);
  const notes = Buffer.from('written by the user while swarm ran\n');
  const p = get(NAME, { peers: [s.peer], outDir: out, threads: 0, peerThreads: 0 });
  p.download.on('progress', (e) => {
    if (e.bytes > 0 && !existsSync(finalPath)) {
      writeFileSync(finalPath, notes);
      s.open();
    }
  });
  const o = await settle(p);
  t.equal(!o.ok && o.code, 'SWARM_ERR_EXISTS');
  t.match(!o.ok && o.message, /appeared while downloading.*left alone.*complete in .*\.swarm-part/);
  t.ok(readFileSync(finalPath).equals(notes), 'the user\'s file is intact');
  t.ok(readFileSync(finalPath + PART_SUFFIX).equals(data), 'the finished download is in the part file');
  t.same(leftovers(out).sort(), [NAME + PART_SUFFIX, NAME + TICKET_SUFFIX].sort(), 'part and ticket kept, lock released');
  t.same(openFilesUnder(out), [], 'the part file is closed');

  const again = await settle(get(NAME, { peers: [s.peer], outDir: out, threads: 0, peerThreads: 0 }));
  t.equal(!again.ok && again.code, 'SWARM_ERR_EXISTS', 'still refused without --overwrite');
  const over = await get(NAME, { peers: [s.peer], outDir: out, overwrite: true, threads: 0, peerThreads: 0 });
  t.equal(over.resumedChunks, chunksOf(s.m), 'with --overwrite: every chunk from the part file');
  t.equal(over.fetchedChunks, 0);
  t.ok(readFileSync(finalPath).equals(data));
  t.same(leftovers(out), []);
});

t.test('-o /proc/x: a clear I/O error at once (exit 6), no spinning', async (t) => {
  const s = await seeder(t, randomBytes(prng(908), 1000));
  await Promise.all(
    ['/proc/x', '/proc/x/y/z'].map(async (dir) => {
      const began = Date.now();
      const run = swarm(t, ['get', NAME, '--peer', s.peer, '-o', dir, '--json']);
      const { code } = await run.exit;
      t.equal(code, 6, `${dir}: exit 6`);
      t.match(run.lines.join('\n'), new RegExp(`SWARM_ERR_IO.*cannot create the folder /proc/x`));
      t.ok(Date.now() - began < 5000, `${dir}: failed in ${Date.now() - began} ms`);
    }),
  );
  // in this process too: no CPU spent spinning while it fails
  const cpu = process.cpuUsage();
  const began = Date.now();
  const proc = await settle(get(NAME, { peers: [s.peer], outDir: '/proc/x/y', threads: 0, peerThreads: 0 }));
  const used = process.cpuUsage(cpu);
  t.equal(!proc.ok && proc.code, 'SWARM_ERR_IO');
  t.ok(Date.now() - began < 2000 && (used.user + used.system) / 1000 < 1000, `failed in ${Date.now() - began} ms, ${((used.user + used.system) / 1000).toFixed(0)} ms of CPU`);
  // a file where a folder of the path should be
  const out = tempDir(t);
  writeFileSync(path.join(out, 'plain'), 'x');
  const blocked = await settle(get(NAME, { peers: [s.peer], outDir: path.join(out, 'plain', 'sub'), threads: 0, peerThreads: 0 }));
  t.match(!blocked.ok && blocked.message, /plain is a file, not a folder/);
});

t.test('SIGINT and SIGTERM stop a get within 2 s with exit 130: while resolving against a silent peer, and during the transfer', async (t) => {
  const data = randomBytes(prng(909), 4 * MiB);
  const s = await seeder(t, data);
  const silent = await startFakePeer(s.file, s.m, 'silent', { name: NAME });
  t.teardown(() => silent.close());
  // the two signals at once, each to its own get; sent once both are connected to the silent peer
  const before = silent.connections;
  const resolving = (['SIGINT', 'SIGTERM'] as const).map((sig) => {
    const out = tempDir(t);
    return { sig, out, run: swarm(t, ['get', NAME, '--peer', `127.0.0.1:${silent.port}`, '-o', out, '--json']) };
  });
  await until(() => silent.connections >= before + 2, 10_000, 'both gets to connect');
  await Promise.all(
    resolving.map(async ({ sig, out, run }) => {
      const sent = Date.now();
      run.kill(sig);
      const { code } = await run.exit;
      t.equal(code, 130, `${sig} while resolving: exit 130`);
      t.ok(Date.now() - sent < 2000, `${sig} while resolving: stopped in ${Date.now() - sent} ms`);
      t.same(leftovers(out), [], 'nothing left');
    }),
  );
  await Promise.all(
    (['SIGINT', 'SIGTERM'] as const).map(async (sig) => {
      const own = await gatedSeeder(t, data); // held mid-transfer until the end of the test
      const out = tempDir(t);
      const run = swarm(t, ['get', NAME, '--peer', own.peer, '-o', out, '--json']);
      await untilFetching(out);
      const sent = Date.now();
      run.kill(sig);
      const { code } = await run.exit;
      t.equal(code, 130, `${sig} during the transfer: exit 130`);
      t.ok(Date.now() - sent < 2000, `${sig} during the transfer: stopped in ${Date.now() - sent} ms`);
      t.match(run.lines.join('\n'), /SWARM_ERR_INTERRUPTED/);
      t.notOk(existsSync(path.join(out, NAME)), 'nothing under NAME');
      t.same(leftovers(out).sort(), [NAME + PART_SUFFIX, NAME + TICKET_SUFFIX].sort(), 'part and ticket kept for resuming, lock released');
    }),
  );
});

t.test('abort() at every step, in the start handler and right away settles with INTERRUPTED promptly', async (t) => {
  const data = randomBytes(prng(910), 2 * MiB + 1);
  const s = await seeder(t, data);
  const opts = (out: string): GetOptions => ({ peers: [s.peer], outDir: out, threads: 0, peerThreads: 0 });
  const check = async (label: string, p: Promise<DoneEvent>, out: string, aborted: () => number) => {
    const o = await settle(p);
    const after = Date.now() - aborted();
    t.equal(kind(o), 'SWARM_ERR_INTERRUPTED: interrupted', `${label}: interrupted`);
    t.ok(after < 2000, `${label}: settled ${after} ms after the abort`);
    t.notOk(existsSync(path.join(out, NAME)), `${label}: nothing under NAME`);
    t.notOk(existsSync(path.join(out, NAME + LOCK_SUFFIX)), `${label}: lock released`);
    t.same(openFilesUnder(out), [], `${label}: no descriptor left open`);
  };
  {
    const out = tempDir(t);
    const p = get(NAME, opts(out));
    const at = Date.now();
    p.download.abort();
    await check('right away', p, out, () => at);
  }
  {
    const out = tempDir(t);
    const p = get(NAME, opts(out));
    let at = 0;
    p.download.once('start', () => {
      at = Date.now();
      p.download.abort();
    });
    await check('in the start handler', p, out, () => at);
  }
  {
    const out = tempDir(t);
    const ac = new AbortController();
    const p = get(NAME, { ...opts(out), signal: ac.signal });
    let at = 0;
    p.download.once('start', () => {
      at = Date.now();
      ac.abort();
    });
    await check('by the caller\'s signal in the start handler', p, out, () => at);
  }
  for (const step of STEPS.filter((x) => x !== 'finished')) {
    // aborted while held at the step (the hook never lets go: only the abort can end it)
    const out = tempDir(t);
    let at = 0;
    const p = get(NAME, {
      ...opts(out),
      onStep: (x) => {
        if (x !== step) return;
        at = Date.now();
        p.download.abort();
        return new Promise<void>(() => {});
      },
    });
    await check(`held at ${step}`, p, out, () => at);
    t.notOk(existsSync(path.join(out, NAME + TICKET_SUFFIX + TEMP_MARK)), 'no temp file');
  }
  {
    // once NAME holds the file an abort is too late to matter: the download succeeds
    const out = tempDir(t);
    const p = get(NAME, { ...opts(out), onStep: (x) => void (x === 'finished' && p.download.abort()) });
    t.equal(kind(await settle(p)), 'fetched');
    t.same(leftovers(out), []);
  }
});

t.test('the output folder removed mid-download: the failed ticket save ends it with SWARM_ERR_IO (exit 6), no stack', async (t) => {
  const data = randomBytes(prng(911), 4 * MiB);
  // in this process and by the CLI at once, each with its own seeder
  const inProcess = async () => {
    const s = await gatedSeeder(t, data);
    const out = path.join(tempDir(t), 'out');
    const p = get(NAME, { peers: [s.peer], outDir: out, threads: 0, peerThreads: 0 });
    p.download.on('progress', (e) => {
      if (e.bytes > 0 && existsSync(out)) {
        rmSync(out, { recursive: true, force: true });
        s.more(); // one more chunk while others are still held: its ticket save fails
      }
    });
    const o = await settle(p);
    t.equal(!o.ok && o.code, 'SWARM_ERR_IO', `in-process: ${!o.ok && o.message}`);
    t.match(!o.ok && o.message, /ticket/);
    t.same(openFilesUnder(path.dirname(out)), [], 'the (removed) part file is closed');
  };
  const cli = async () => {
    const s = await gatedSeeder(t, data);
    const out = path.join(tempDir(t), 'out');
    const run = swarm(t, ['get', NAME, '--peer', s.peer, '-o', out, '--json']);
    await untilFetching(out);
    rmSync(out, { recursive: true, force: true });
    s.more();
    const { code } = await run.exit;
    t.equal(code, 6, 'CLI: exit 6');
    t.match(run.lines.join('\n'), /"code":"SWARM_ERR_IO"/);
    t.notMatch(run.lines.join('\n'), /internal error|\n\s+at /);
  };
  await Promise.all([inProcess(), cli()]);
});

/** A small tmpfs with few inodes, or null where mounting is not allowed (needs root). */
function smallDisk(t: T, inodes: number): string | null {
  const dir = mkdtempSync(path.join(tmpdir(), 'swarm-inodes-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=64m,nr_inodes=${inodes}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
  t.teardown(() => {
    spawnSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}
const canMount = (() => {
  const probe = mkdtempSync(path.join(tmpdir(), 'swarm-probe-'));
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe]).status === 0;
  if (ok) spawnSync('umount', [probe]);
  rmSync(probe, { recursive: true, force: true });
  return ok;
})();

t.test(
  'no inode left for the ticket\'s first save: DISK_FULL (exit 6), cleaned up; later saves need none (written in place), so a download under way finishes',
  { skip: canMount ? false : 'cannot mount a tmpfs here (needs root)' },
  async (t) => {
    const data = randomBytes(prng(912), 4 * MiB);
    const s = await gatedSeeder(t, data);
    const disk = smallDisk(t, 64)!;

    // First in this process, with inodes for the lock and the part file but none for the ticket's
    // first save: DISK_FULL, and the part file's descriptor is closed (not left to the GC).
    const fill = (keep: number) => {
      let n = 0;
      while (statfsSync(disk).ffree > keep) writeFileSync(path.join(disk, `filler-${n++}`), '');
      return n;
    };
    const filled = fill(2);
    const early = await settle(get(NAME, { peers: [s.peer], outDir: disk, threads: 0, peerThreads: 0 }));
    t.equal(!early.ok && early.code, 'SWARM_ERR_DISK_FULL', `before the transfer: ${!early.ok && early.message}`);
    t.match(!early.ok && early.message, /cannot save the ticket/, 'it was the ticket\'s first save that failed');
    t.same(openFilesUnder(disk), [], 'no descriptor left open on the disk');
    t.notOk(existsSync(path.join(disk, NAME + LOCK_SUFFIX)), 'lock released');
    for (let i = 0; i < filled; i++) rmSync(path.join(disk, `filler-${i}`));
    rmSync(path.join(disk, NAME + PART_SUFFIX), { force: true });

    const run = swarm(t, ['get', NAME, '--peer', s.peer, '-o', disk, '--json']);
    await untilFetching(disk);
    // take every inode left: the next ticket save cannot create its temp file (chunk writes go on)
    let fillers = 0;
    for (;;) {
      try {
        writeFileSync(path.join(disk, `filler-${fillers}`), '');
        fillers++;
      } catch (err) {
        t.equal((err as NodeJS.ErrnoException).code, 'ENOSPC', `${fillers} inodes taken`);
        break;
      }
    }
    s.open(); // the rest of the file: every later ticket save overwrites a slot in place, no inode needed
    const { code } = await run.exit;
    t.notMatch(run.lines.join('\n'), /internal error/);
    const names = readdirSync(disk).filter((n) => !n.startsWith('filler-'));
    t.notOk(names.includes(NAME + LOCK_SUFFIX), 'lock released');
    t.same(names.filter((n) => n.includes(TEMP_MARK)), [], 'no temp file left');
    if (code === 0) {
      t.ok(readFileSync(path.join(disk, NAME)).equals(data), 'the transfer ran to the end; byte-identical');
    } else {
      // tmpfs counts a hard link against its inodes: the final name cannot be made; every chunk is
      // in the part file (nothing lost) and the error says why
      t.equal(code, 6, 'exit 6 at the final name');
      t.match(run.lines.join('\n'), /"code":"SWARM_ERR_DISK_FULL".*cannot name/);
      t.ok(readFileSync(path.join(disk, NAME + PART_SUFFIX)).equals(data), 'the transfer ran to the end: the part file holds every byte');
    }
  },
);

t.test('temp files of a ticket save cut by kill -9 are removed when a download of NAME starts', async (t) => {
  const data = randomBytes(prng(913), MiB + 5);
  const s = await seeder(t, data);
  const out = tempDir(t);
  const stale = path.join(out, `${NAME}${TICKET_SUFFIX}${TEMP_MARK}4242-abc123`);
  writeFileSync(stale, '{"version":2');
  const other = path.join(out, `other.bin${TICKET_SUFFIX}${TEMP_MARK}4242-abc123`);
  writeFileSync(other, 'x');
  const p = get(NAME, { peers: [s.peer], outDir: out, threads: 0, peerThreads: 0 });
  const warnings: string[] = [];
  p.download.on('warning', (w) => warnings.push(w.message));
  await p;
  t.notOk(existsSync(stale), 'removed');
  t.ok(existsSync(other), 'another target\'s temp file is not ours to remove');
  t.match(warnings.join('\n'), /removed 1 temporary file/);
  rmSync(other);
  t.same(leftovers(out), [], 'none left after a normal finish');

  // killed after NAME got its bytes but before the cleanup: the next get (up to date) tidies up
  const { part, ticket } = { part: path.join(out, NAME + PART_SUFFIX), ticket: path.join(out, NAME + TICKET_SUFFIX) };
  linkSync(path.join(out, NAME), part);
  const tk = new Ticket(ticket, { name: NAME, cid: s.m.cid, size: s.m.size, chunkBytes: s.m.chunkBytes, mtime: MTIME }, chunksOf(s.m));
  for (let i = 0; i < chunksOf(s.m); i++) tk.mark(i);
  await tk.flush();
  writeFileSync(stale, '{"version":2');
  const r = await get(NAME, { peers: [s.peer], outDir: out, threads: 0, peerThreads: 0 });
  t.ok(r.upToDate);
  t.same(leftovers(out), [], 'the part link, the finished ticket and the temp file are removed');
  t.ok(readFileSync(path.join(out, NAME)).equals(data));
});

t.test('a ticket removed while a save waits its turn: removed at once, never written again', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, NAME + TICKET_SUFFIX);
  const tk = new Ticket(file, { name: NAME, cid: 'ab'.repeat(32), size: 10 * MiB, chunkBytes: MiB, mtime: MTIME }, 10);
  tk.mark(0); // saved at once
  tk.mark(1); // waits its turn (SAVE_INTERVAL_MS after the first)
  const began = Date.now();
  await tk.remove();
  const took = Date.now() - began;
  tk.mark(2); // a late mark: nothing may write the ticket again
  await new Promise((r) => setTimeout(r, 120));
  t.same(readdirSync(dir), [], `gone, and stays gone (remove took ${took} ms)`);
});

t.test('no unhandled rejection in any of the above', async (t) => {
  process.off('unhandledRejection', onUnhandled);
  t.same(unhandled.map(String), []);
});
