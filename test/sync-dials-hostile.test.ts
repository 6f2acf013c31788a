/**
 * Hostile review 56 of the dial plan (dial-plan.ts, readers.ts): the 64 places of a round go to the
 * tiers in a fixed order, and the tracker's holders come in the directory's order (names sorted,
 * then addresses). Anyone registers at a tracker (64 registrations per ip): 64 junk holders of
 * names that sort first take every place of a round.
 */
import t from 'tap';
import net from 'node:net';
import { readFileSync, writeFileSync, utimesSync, existsSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './helpers/tmp.js';
import { fakeSyncMembers } from './helpers/fake-sync-member.js';
import { syncPeer as peer, stopPeer } from './helpers/sync-peers.js';
import { serve } from '../lib/serve.js';
import { registerFake } from './helpers/fake-peer.js';
import { swarm } from './helpers/procs.js';
import { TrackerServer } from '../lib/tracker/server.js';
import { trackerDirectory } from '../lib/tracker/client.js';
import { folderKey, newFolderKeySecret } from '../lib/sync/folder-key.js';
import { DialBackoff, MAX_SYNC_PEERS, OPEN_PLACES, RETRY_FIRST_MS, planRound } from '../lib/sync/dial-plan.js';

type T = { teardown(fn: () => unknown): void };
const JUNK_IP = '127.0.0.2';
const cid = (i: number) => i.toString(16).padStart(64, 'a');

async function startTracker(t: T): Promise<string> {
  const tracker = new TrackerServer({ port: 0, host: '127.0.0.1' });
  await tracker.listen();
  t.teardown(() => tracker.close());
  return `127.0.0.1:${tracker.port}`;
}

/** A port on JUNK_IP where nothing listens (a connection is refused at once). */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, JUNK_IP, r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** 64 registrations from one ip (the tracker's limit per ip), names that sort before the members'. */
async function junk(t: T, at: string, port: () => Promise<number>): Promise<void> {
  const trackerPort = Number(at.split(':')[1]);
  for (let i = 0; i < 64; i++) {
    const r = await registerFake(trackerPort, await port(), [{ name: `0-junk-${String(i).padStart(2, '0')}.txt`, mtime: 1_600_000_000, size: 5, cid: cid(i) }], JUNK_IP);
    t.teardown(() => r.close());
  }
}

async function listed(at: string, name: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const { entries } = await trackerDirectory(at);
    if (entries.some(([n]) => n === name)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

t.test('swarm sync --once: 64 junk registrations from one ip (names that sort first) do not keep it from reading the member the tracker lists', async (t) => {
  const at = await startTracker(t);
  const [da, db] = [tempDir(t), tempDir(t)];
  writeFileSync(path.join(db, 'from-b.txt'), 'b has it\n');
  utimesSync(path.join(db, 'from-b.txt'), 1_600_000_000, 1_600_000_000);
  await peer(t, db, { tracker: at });
  t.ok(await listed(at, 'from-b.txt'), 'the tracker lists b');
  await junk(t, at, deadPort);
  const once = swarm(t, ['sync', da, '--once', '--port', '0', '--tracker', at, '--threads', '0', '--open', '--json']);
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([once.exit, new Promise<null>((r) => (timer = setTimeout(() => r(null), 60_000)))]);
  clearTimeout(timer);
  if (exit === null) once.kill('SIGKILL');
  t.equal(exit?.code, 0, `in step (fails now: exit 4, "no other member of this folder was found": the 64 places of its one round went to the junk; before 6b67547 every holder was dialled) ${once.stderr().slice(0, 300)}`);
  t.ok(existsSync(path.join(da, 'from-b.txt')), 'and b\'s file fetched');
});

t.test('open: 64 junk "members" that answer an empty index keep every later member out, round after round, even one that reads us', async (t) => {
  const at = await startTracker(t);
  const [da, db] = [tempDir(t), tempDir(t)];
  const a = await peer(t, da, { tracker: at });
  await junk(t, at, async () => (await fakeSyncMembers(t, 1, { host: JUNK_IP })).ports[0]!);
  for (let i = 0; i < 2; i++) await a.sync.syncOnce(); // the junk is read: 64 "members" now
  writeFileSync(path.join(db, 'from-b.txt'), 'b has it\n');
  utimesSync(path.join(db, 'from-b.txt'), 1_600_000_000, 1_600_000_000);
  const b = await peer(t, db, { tracker: at });
  t.ok(await listed(at, 'from-b.txt'), 'the tracker lists b');
  b.node.book.add({ ip: '127.0.0.1', port: a.node.port }, 'neighbor');
  await b.sync.syncOnce(); // b reads a and watches it: a is told (watchedBy), and b is in a's book
  await new Promise((r) => setTimeout(r, 300));
  for (let i = 0; i < 3; i++) await a.sync.syncOnce();
  t.equal(existsSync(path.join(da, 'from-b.txt')) ? readFileSync(path.join(da, 'from-b.txt'), 'utf8') : null, 'b has it\n', 'a read b (fails now: the 64 places go to the members read first, forever)');
});

t.test('a member that restarts on the same port and is dialled before its sync is up (serve answers first: "does not sync") waits one round, not 1-5 min', async (t) => {
  const key = folderKey(newFolderKeySecret());
  const [da, db] = [tempDir(t), tempDir(t)];
  const a = await peer(t, da, { key });
  const b = await peer(t, db, { key });
  a.node.book.add({ ip: '127.0.0.1', port: b.node.port }, 'neighbor'); // a names b; b does not know a (a laptop, b a server)
  await a.sync.syncOnce();
  const port = b.node.port;
  await stopPeer(b);
  // b starts again: `swarm sync` listens (serve) before its Syncer is up (bin/commands/sync.ts)
  const node = await serve(db, { port, host: '127.0.0.1', noTracker: true, threads: 0, watch: false });
  t.teardown(() => node.close({ graceful: false }));
  await a.sync.syncOnce(); // lands in that window: "this peer does not sync a folder"
  const backoff = (a.sync as unknown as { readers: { rounds: { backoff: DialBackoff } } }).readers.rounds.backoff;
  t.notOk(backoff.waiting(`127.0.0.1|${port}`, Date.now() + RETRY_FIRST_MS + 1), `b is skipped ${RETRY_FIRST_MS / 1000} s at most, a round (fails now: taken for "no member", 60 s when named, 5 min when listed; before 6b67547 the next round read it)`);
});

t.test('planRound (pure): members read first cannot take every place; the rest is drawn at random whatever its order; `more` says some were left', async (t) => {
  const id = (s: string) => s;
  const members = Array.from({ length: 100 }, (_, i) => `m${i}`);
  const listed = [...Array.from({ length: 500 }, (_, i) => `junk${i}`), 'honest'];
  const r = planRound({ first: [['n1'], []], members, others: [[], listed] }, id, () => false);
  t.equal(r.peers.length, MAX_SYNC_PEERS);
  t.equal(r.peers[0], 'n1', 'named first');
  t.equal(r.peers.filter((p) => p.startsWith('m')).length >= MAX_SYNC_PEERS - OPEN_PLACES - 1, true, 'members keep their places');
  t.ok(r.more, 'more were left');
  let hits = 0;
  for (let i = 0; i < 2000; i++) if (planRound({ first: [], members: [], others: [[], listed] }, id, () => false).peers.includes('honest')) hits++;
  t.ok(hits > 150, `the last listed is drawn about 64/501 of the rounds (${hits} of 2000; never, in the directory's order)`);
  t.same(planRound({ first: [['a']], members: ['a', 'b'], others: [['b', 'c']] }, id, (k) => k === 'c').peers, ['a', 'b'], 'each once, skipped ones out');
  t.notOk(planRound({ first: [['a']], members: ['a', 'b'], others: [['b', 'c']] }, id, (k) => k === 'c').more, 'nothing left');
});
