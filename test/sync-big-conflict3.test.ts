/**
 * One conflict over a big file (more than one chunk: the chunked get, its beforeReplace making
 * the conflict copy) fetched by two members at once, three members in all. Every member must end
 * with the same two names, the winner at NAME and the loser at NAME.sync-conflict-STAMP-DEV
 * (named after the member that made it: conflict-copy.ts), byte-identical across members, no
 * version lost and no swarm own file left. In-process sync peers on 127.0.0.1.
 *   1. a and c hold a's edit; b, away, made a newer one: a and c both lose, and fetch b's at once
 *   2. a and b each edited while apart (b's is newer); c still holds the common version: a fetches
 *      b's as a conflict it loses, c as a plain update, at once
 */
import t, { type Test } from 'tap';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { prng, randomBytes } from './helpers/prng.js';
import { syncPeer as peer, connect, converge, stopPeer, editAgo, agreeOn, type SyncPeer } from './helpers/sync-peers.js';
import { tempDir } from './helpers/tmp.js';
import { conflictName } from '../lib/sync/plan.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex').slice(0, 12);
const BIG = 2 * 1024 * 1024 + 17; // three chunks of 1 MiB: the chunked get
const NAME = 'big.bin';

/** name -> short sha of every file in the folder (.swarm left out). */
function listing(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir).sort()) if (f !== '.swarm') out[f] = sha(readFileSync(path.join(dir, f)));
  return out;
}
function trashed(dir: string): string[] {
  const trash = path.join(dir, '.swarm', 'trash');
  return existsSync(trash) ? readdirSync(trash).map((f) => sha(readFileSync(path.join(trash, f)))) : [];
}

/** a, b and c agree on v0 (big.bin, written 300 s ago). */
async function threeAgree(t: Test, v0: Buffer, bOpts: Parameters<typeof peer>[2] = {}): Promise<SyncPeer[]> {
  const dirs = [tempDir(t), tempDir(t), tempDir(t)];
  editAgo(dirs[0]!, NAME, v0, 300);
  const ps = [await peer(t, dirs[0]!), await peer(t, dirs[1]!, bOpts), await peer(t, dirs[2]!)];
  connect(ps);
  t.ok(await agreeOn(ps, NAME), 'a, b and c agree on v0');
  return ps;
}

/** Every member syncs at once (the two fetches of one conflict overlap), then rounds until settled. */
async function together(t: Test, ps: SyncPeer[], names: string[], staggerMs = 0): Promise<void> {
  const fetching = new Map<string, number>();
  ps.forEach((p, i) => p.sync.on('fetching', (e) => e.name === NAME && fetching.set(names[i]!, Date.now())));
  const fetched = new Map<string, number>();
  ps.forEach((p, i) => p.sync.on('fetched', (e) => e.name === NAME && !fetched.has(names[i]!) && fetched.set(names[i]!, Date.now())));
  for (const p of ps) await p.node.library.refresh();
  // (staggered: the later ones start while the first one's fetch runs, and hear its news meanwhile)
  await Promise.all(ps.map((p, i) => new Promise((r) => setTimeout(r, i * staggerMs)).then(() => p.sync.syncOnce())));
  t.comment('fetching', JSON.stringify([...fetching]), 'fetched', JSON.stringify([...fetched]));
  await converge(ps, 3);
  ps.forEach((p, i) => p.warnings.length && t.comment(`${names[i]} warned:`, JSON.stringify(p.warnings)));
}

for (const slow of [false, true]) {
t.test(`a and c hold the losing version of one big file and both fetch the winner at once${slow ? ' (b sends at 1 MiB/s, c starts 400 ms after a, b between: the fetches overlap longer)' : ''}`, async (t) => {
  const v0 = randomBytes(prng(41), BIG);
  const [a, b0, c] = await threeAgree(t, v0);
  await stopPeer(b0!);
  const vA = randomBytes(prng(42), BIG);
  const mA = editAgo(a!.dir, NAME, vA, 200);
  await converge([a!, c!], 2);
  t.equal(sha(readFileSync(path.join(c!.dir, NAME))), sha(vA), "c took a's edit");
  const vB = randomBytes(prng(43), BIG);
  editAgo(b0!.dir, NAME, vB, 100); // b's edit, made while away: newer, it wins
  const b = await peer(t, b0!.dir, slow ? { maxUploadBytesPerSec: 1 << 20 } : {});
  const ps = [a!, b, c!];
  connect(ps);
  const copies = new Map<string, string>();
  for (const [who, p] of [['a', a!], ['c', c!]] as const) p.sync.on('conflict', (e) => e.name === NAME && copies.set(who, e.copy));
  await together(t, ps, ['a', 'b', 'c'], slow ? 200 : 0);
  const copy = conflictName(NAME, mA, a!.sync.deviceId);
  t.equal(copies.get('a'), copy, "a kept its version as the copy named after a");
  t.equal(copies.get('c'), copy, 'c kept it under the same name');
  const want = { [NAME]: sha(vB), [copy]: sha(vA) };
  for (const [who, p] of [['a', a!], ['b', b], ['c', c!]] as const) {
    t.same(listing(p.dir), want, `${who}: b's edit at the name, a's as its one conflict copy, nothing else`);
    t.equal(p.sync.index.get(NAME)?.cid, b.sync.index.get(NAME)?.cid, `${who}: the index agrees on the winner`);
    t.equal(p.sync.index.get(copy)?.cid, a!.sync.index.get(copy)?.cid, `${who}: and on the copy`);
  }
});
}

t.test('a and b edited one big file while apart, c held the common version: all three end alike', async (t) => {
  const v0 = randomBytes(prng(51), BIG);
  const [a0, b0, c] = await threeAgree(t, v0);
  await stopPeer(a0!);
  await stopPeer(b0!);
  const vA = randomBytes(prng(52), BIG);
  const mA = editAgo(a0!.dir, NAME, vA, 200);
  const vB = randomBytes(prng(53), BIG);
  editAgo(b0!.dir, NAME, vB, 100); // newer: it wins
  const a = await peer(t, a0!.dir);
  const b = await peer(t, b0!.dir);
  const ps = [a, b, c!];
  connect(ps);
  await together(t, ps, ['a', 'b', 'c']);
  const copy = conflictName(NAME, mA, a.sync.deviceId);
  const want = { [NAME]: sha(vB), [copy]: sha(vA) };
  for (const [who, p] of [['a', a], ['b', b], ['c', c!]] as const) {
    t.same(listing(p.dir), want, `${who}: b's edit at the name, a's as its one conflict copy, nothing else`);
    t.equal(p.sync.index.get(NAME)?.cid, b.sync.index.get(NAME)?.cid, `${who}: the index agrees on the winner`);
  }
  t.ok(trashed(c!.dir).includes(sha(v0)), 'c: the common version it replaced is in its trash');
});
