/**
 * `swarm get` as a swarm peer, through the CLI (issue 10): `--seed` keeps serving after `done`
 * (until Ctrl-C, or for SECONDS), `--no-share` neither listens nor registers, progress shows
 * `uploaded`, `--seed --no-share` is a usage error, and a `swarm serve DIR` process adopts what a
 * separate `swarm get -o DIR` finished there without hashing it. The seeding peers and the tracker
 * run in this process; only the commands under test are child processes. Everything on 127.0.0.1.
 * Whether a process listens is read from /proc (its sockets in LISTEN state), not guessed.
 */
import t, { type Test } from 'tap';
import { writeFileSync, readFileSync, readdirSync, readlinkSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { serve, type ServeHandle } from '../lib/serve.js';
import { TrackerServer } from '../lib/tracker/server.js';
import { trackerVersions } from '../lib/tracker/client.js';
import { resolveTarget } from '../lib/download/resolve.js';
import { MIN_CHUNK_BYTES, STATE_DIR_NAME } from '../lib/constants.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import { swarm, type Proc } from './helpers/procs.js';

const MiB = MIN_CHUNK_BYTES;
type T = { teardown(fn: () => unknown): void };
/** Threads off: one core's worth of work per process on this 2-core machine. */
const LEAN = ['--threads', '0', '--peer-threads', '0'];

async function startTracker(t: T): Promise<{ tr: TrackerServer; address: string }> {
  const tr = new TrackerServer({ port: 0, host: '127.0.0.1' });
  await tr.listen();
  t.teardown(() => tr.close());
  return { tr, address: `127.0.0.1:${tr.port}` };
}

/** An in-process seed of `files`, rate-limited so downloads last long enough to be watched. */
async function seed(t: T, files: Record<string, Buffer>, opts: { tracker?: string; bytesPerSec?: number } = {}): Promise<ServeHandle> {
  const dir = tempDir(t);
  for (const [name, data] of Object.entries(files)) writeFileSync(path.join(dir, name), data);
  const h = await serve(dir, {
    port: 0,
    host: '127.0.0.1',
    threads: 0,
    watch: false,
    ...(opts.tracker ? { tracker: opts.tracker } : { noTracker: true }),
    ...(opts.bytesPerSec ? { maxUploadBytesPerSec: opts.bytesPerSec } : {}),
  });
  t.teardown(() => h.close({ graceful: false }));
  return h;
}

/** The process exited and every line of its output was read ('exit' can come before the last lines). */
async function ended(p: Proc): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const exit = await p.exit;
  const out = p.child.stdout!;
  if (!out.readableEnded) await once(out, 'end');
  return exit;
}

/** All NDJSON events of a process, parsed. */
function events(p: Proc): Record<string, unknown>[] {
  return p.lines.flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

/** TCP ports a process listens on, from /proc (its socket inodes matched against LISTEN sockets). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9]!)) ports.push(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports.sort((a, b) => a - b);
}

/** Poll `check` every 50 ms until it holds (false after `ms`): for states no event reports. */
async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

const key = (a: { ip: string; port: number }) => `${a.ip}:${a.port}`;

t.test('get --seed serves after done, until SIGINT (exit 0, `stopped`); another get fetches from it alone', async (t) => {
  const name = 'seeded.bin';
  const data = randomBytes(prng(501), 6 * MiB + 3);
  const { address: tracker } = await startTracker(t);
  // about a second: a token bucket lets one second's worth through at once
  const s = await seed(t, { [name]: data }, { tracker, bytesPerSec: 3 * MiB });
  const out1 = tempDir(t);
  const g1 = swarm(t, ['get', name, '--tracker', tracker, '--host', '127.0.0.1', '--seed', '--json', '-o', out1, ...LEAN]);
  const progress = await g1.waitFor((o) => o.event === 'progress');
  t.equal(typeof progress.uploaded, 'number', 'progress carries uploaded');
  t.equal(typeof progress.uploadRate, 'number', 'and uploadRate');
  t.equal(typeof progress.peersServed, 'number', 'and peersServed');
  const done = await g1.waitFor((o) => o.event === 'done');
  t.equal(typeof done.uploaded, 'number', 'done carries uploaded');
  t.ok(readFileSync(path.join(out1, name)).equals(data), 'byte-identical');
  const seeding = await g1.waitFor((o) => o.event === 'seeding');
  t.equal(seeding.host, '127.0.0.1', 'seeding on --host');
  t.equal(seeding.seconds, null, 'until Ctrl-C');
  const port = seeding.port as number;
  t.ok(port > 0, `seeding event names its port (${port})`);
  t.ok(g1.child.exitCode === null, 'still running after done');
  t.same(listeningPorts(g1.child.pid!), [port], 'and listening on that port, only');
  // the tracker lists it as a complete holder once it has finished
  t.ok(await until(async () => (await trackerVersions(tracker, name)).versions[0]?.holders.some((h) => h.port === port) ?? false), 'the tracker lists it as a complete holder');
  const who = swarm(t, ['who', name, '--tracker', tracker, '--json']);
  t.equal((await ended(who)).code, 0);
  const listed = JSON.parse(who.lines.join('')) as { versions: { holders: { ip: string; port: number }[]; partial: unknown[] }[] };
  t.ok(listed.versions[0]!.holders.some((h) => key(h) === `127.0.0.1:${port}`), 'swarm who --json shows it among the holders');

  // the seed leaves: the seeding get is the only holder left (a named peer's peer exchange would
  // otherwise point the second get at the seed too)
  await s.close({ graceful: false });
  const out2 = tempDir(t);
  const g2 = swarm(t, ['get', name, '--peer', `127.0.0.1:${port}`, '-o', out2, '--json', '--no-share', ...LEAN]);
  const start2 = await g2.waitFor((o) => o.event === 'start');
  t.match(start2.peers, [{ ip: '127.0.0.1', port }], 'the second get asks the seeding get');
  t.equal((start2.peers as unknown[]).length, 1, 'and only it');
  t.equal((await g2.exit).code, 0, 'the second get succeeds');
  t.ok(readFileSync(path.join(out2, name)).equals(data), 'fetched byte-identical from the seeding get');

  g1.kill('SIGINT');
  const exit = await ended(g1);
  t.same(exit, { code: 0, signal: null }, 'SIGINT: exit 0');
  const stopped = events(g1).find((e) => e.event === 'stopped');
  t.ok(stopped, 'a stopped event');
  t.ok((stopped?.uploaded as number) >= data.length, `it uploaded the whole file (${String(stopped?.uploaded)} bytes)`);
});

t.test('get --seed 1 stops by itself after about a second', async (t) => {
  const name = 'brief.bin';
  const data = randomBytes(prng(502), 2 * MiB + 1);
  const s = await seed(t, { [name]: data });
  const out = tempDir(t);
  const g = swarm(t, ['get', name, '--peer', `127.0.0.1:${s.port}`, '--seed', '1', '--json', '-o', out, ...LEAN]);
  const seeding = await g.waitFor((o) => o.event === 'seeding');
  const at = Date.now();
  t.equal(seeding.seconds, 1, 'for 1 second');
  t.ok(listeningPorts(g.child.pid!).includes(seeding.port as number), 'listening while it seeds');
  const exit = await g.exit;
  const after = Date.now() - at;
  await ended(g);
  t.same(exit, { code: 0, signal: null }, 'exit 0 without a signal');
  t.ok(after >= 900 && after < 5_000, `stopped ${after} ms after it said seeding`);
  t.ok(events(g).some((e) => e.event === 'stopped'), 'a stopped event');
  t.ok(readFileSync(path.join(out, name)).equals(data));
});

t.test('get --no-share neither listens nor registers: for a newcomer the holders are the seed and the sharing get', async (t) => {
  const name = 'crowd.bin';
  const data = randomBytes(prng(503), 6 * MiB + 11);
  const { tr, address: tracker } = await startTracker(t);
  const s = await seed(t, { [name]: data }, { tracker, bytesPerSec: 3 * MiB });
  const outN = tempDir(t);
  const outS = tempDir(t);
  const taker = swarm(t, ['get', name, '--tracker', tracker, '--no-share', '--json', '-o', outN, ...LEAN]);
  const sharer = swarm(t, ['get', name, '--tracker', tracker, '--json', '-o', outS, ...LEAN]);
  // both mid-download
  await taker.waitFor((o) => o.event === 'progress');
  await sharer.waitFor((o) => o.event === 'progress');
  t.same(listeningPorts(taker.child.pid!), [], '--no-share: no listening socket');
  const sharing = listeningPorts(sharer.child.pid!);
  t.equal(sharing.length, 1, `the sharing get listens (${sharing.join(', ')})`);
  t.ok(await until(() => (tr.registry.whoHas(name)?.partial.length ?? 0) > 0), 'the sharing get is registered as a partial holder');
  const v = tr.registry.whoHas(name)!;
  t.same(v.partial.map(key), [`127.0.0.1:${sharing[0]}`], 'the only partial holder is the sharing get');
  t.same(v.holders.map(key), [`127.0.0.1:${s.port}`], 'the only complete holder is the seed');
  const target = await resolveTarget(name, { tracker });
  t.same(target.holders.map(key).sort(), [`127.0.0.1:${s.port}`, `127.0.0.1:${sharing[0]}`].sort(), 'a newcomer is offered the seed and the sharing get, never the --no-share get');
  t.equal((await ended(taker)).code, 0);
  t.equal((await ended(sharer)).code, 0);
  t.ok(readFileSync(path.join(outN, name)).equals(data), '--no-share: byte-identical');
  t.ok(readFileSync(path.join(outS, name)).equals(data), 'sharing: byte-identical');
  for (const [what, p] of [['--no-share', taker], ['sharing', sharer]] as const) {
    const ps = events(p).filter((e) => e.event === 'progress');
    t.ok(ps.length > 0 && ps.every((e) => typeof e.uploaded === 'number'), `${what}: every progress event carries uploaded`);
  }
  t.equal(events(taker).find((e) => e.event === 'done')?.uploaded, 0, '--no-share uploaded nothing');
});

t.test('get --seed --no-share is a usage error (exit 2)', async (t) => {
  const out = tempDir(t);
  const g = swarm(t, ['get', 'x.bin', '--peer', '127.0.0.1:9', '--seed', '--no-share', '-o', out]);
  t.same(await g.exit, { code: 2, signal: null });
});

/** `swarm serve DIR` as a child, with its NDJSON events; its port from the serving event. */
async function serveChild(t: T, dir: string): Promise<{ proc: Proc; port: number }> {
  const proc = swarm(t, ['serve', dir, '--port', '0', '--no-tracker', '--json', '--threads', '0']);
  const ev = await proc.waitFor((o) => o.event === 'serving');
  return { proc, port: ev.port as number };
}

async function adoptAcrossProcesses(t: Test, share: string, todo?: string) {
  const name = 'landed.bin';
  const data = randomBytes(prng(504), 4 * MiB + 5);
  const s = await seed(t, { [name]: data });
  const cid = s.library.stat(name)!.cid;
  const served = await serveChild(t, share);
  const before = served.proc.lines.length;
  const g = swarm(t, ['get', name, '--peer', `127.0.0.1:${s.port}`, '-o', share, '--json', '--no-share', ...LEAN]);
  t.equal((await g.exit).code, 0, 'get -o DIR succeeded');
  t.ok(readFileSync(path.join(share, name)).equals(data), 'the file landed in the share');
  const change = await served.proc.waitFor((o) => o.event === 'change' && (o.added as string[]).includes(name), 15_000).catch(() => null);
  t.ok(change, 'the serve process noticed the file');
  const ls = swarm(t, ['ls', '--peer', `127.0.0.1:${served.port}`, '--json']);
  t.equal((await ended(ls)).code, 0);
  const files = JSON.parse(ls.lines.join('')) as { name: string; cid: string }[];
  t.same(files.find((f) => f.name === name)?.cid, cid, 'swarm ls --peer lists it with the content id of the download');
  const hashing = events({ ...served.proc, lines: served.proc.lines.slice(before) }).filter((e) => e.event === 'hashing');
  const opts = todo ? { todo } : {};
  t.same(hashing, [], 'the serve process hashed nothing: it adopted the manifest (its NDJSON has no hashing event)', opts);
  t.same(existsSync(path.join(share, STATE_DIR_NAME, 'adopt')) ? readdirSync(path.join(share, STATE_DIR_NAME, 'adopt')) : [], [], 'the adoption record was consumed', opts);
}

t.test('a `swarm serve DIR` process adopts what a `swarm get -o DIR` finished there, without hashing it', async (t) => {
  const share = tempDir(t);
  // a share that already holds a file (so its state folder exists)
  writeFileSync(path.join(share, 'old.txt'), 'already shared\n');
  await adoptAcrossProcesses(t, share);
});

t.test('the same with a share that was empty when serve started', async (t) => {
  const share = tempDir(t);
  mkdirSync(path.join(share, 'sub'));
  await adoptAcrossProcesses(t, share);
});
