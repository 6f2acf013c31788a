/**
 * A member that lies about a big sync file (more than one chunk: the chunked get): it announces a
 * version newer than ours (its index holds it, hashed honestly) but serves wrong bytes for some or
 * all of its chunks, with valid packet checksums (only the chunk hashes can tell). The wrong
 * chunks are refused, the version here stays at its name byte for byte (and in the index), no
 * part, ticket, lock or temp file takes a final name or an index entry, the ticket is tried again
 * later (1 s, then 2 s: tickets.ts), and once an honest holder of that version is back the file
 * converges (the liar beside it). The liar is an in-process member whose library hands the
 * server a wrapped ChunkSource (peer/source.ts) for that content id. All on 127.0.0.1.
 */
import t from 'tap';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { prng, randomBytes } from './helpers/prng.js';
import { syncPeer as peer, connect, converge, stopPeer, editAgo, type SyncPeer } from './helpers/sync-peers.js';
import { tempDir } from './helpers/tmp.js';
import { isOwnFile } from '../lib/share/names.js';
import type { ChunkSource, SourceReader } from '../lib/peer/source.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex').slice(0, 12);
const BIG = 3 * 1024 * 1024 + 17; // four chunks of 1 MiB: the chunked get
const NAME = 'big.bin';

/** Every byte of `bufs` (read from file offset `position`, `n` of them) that lies in a chunk of `bad` flipped. */
function spoil(bufs: Buffer[], position: number, n: number, chunkBytes: number, bad: Set<number>): void {
  let at = position;
  let left = n;
  for (const b of bufs) {
    const len = Math.min(b.length, left);
    for (let i = 0; i < len; i++) if (bad.has(Math.floor((at + i) / chunkBytes))) b[i] = b[i]! ^ 0x5a;
    at += len;
    left -= len;
    if (left <= 0) break;
  }
}

/** The source as a liar serves it: the real manifest and bitfield, wrong bytes for chunks `bad`, packet sums taken as sent (valid). */
function lyingSource(real: ChunkSource, bad: Set<number>, served: { bad: number }): ChunkSource {
  const cb = real.manifest.chunkBytes;
  return {
    manifest: real.manifest,
    complete: real.complete,
    has: (i) => real.has(i),
    bitfield: () => real.bitfield(),
    packetSums: () => null,
    async open(): Promise<SourceReader> {
      const r = await real.open();
      const count = (position: number, n: number) => {
        for (let c = Math.floor(position / cb); c * cb < position + n; c++) if (bad.has(c)) served.bad++;
      };
      return {
        async read(buf, at, length, position) {
          const n = await r.read(buf, at, length, position);
          spoil([buf.subarray(at, at + n)], position, n, cb, bad);
          count(position, n);
          return n;
        },
        async readv(bufs, position) {
          let n: number;
          if (r.readv) n = await r.readv(bufs, position);
          else {
            n = 0;
            for (const b of bufs) n += await r.read(b, 0, b.length, position + n);
          }
          spoil(bufs, position, n, cb, bad);
          count(position, n);
          return n;
        },
        checkUnchanged: () => r.checkUnchanged(),
        close: () => r.close(),
      };
    },
  };
}

/** From now on `p` serves content `cid` with wrong bytes in chunks `bad`. */
function makeLiar(p: SyncPeer, cid: string, bad: number[]): { bad: number } {
  const lib = p.node.library!;
  const byCid = lib.byCid.bind(lib);
  const served = { bad: 0 };
  lib.byCid = ((c: string) => {
    const s = byCid(c);
    return s && c === cid ? lyingSource(s, new Set(bad), served) : s;
  }) as never;
  return served;
}

/** The names in `dir` (its .swarm left out) and every file of its trash. */
function names(dir: string): string[] {
  return readdirSync(dir).filter((f) => f !== '.swarm').sort();
}
function trashed(dir: string): string[] {
  const trash = path.join(dir, '.swarm', 'trash');
  return existsSync(trash) ? readdirSync(trash).map((f) => sha(readFileSync(path.join(trash, f)))) : [];
}

// the two liars at once: each waits mostly on its ticket's backoff (1 s, 2 s, then 4 s), and each
// patches its own liar's library only
t.jobs = 2;

for (const [what, bad] of [
  ['every chunk', [0, 1, 2, 3]],
  ['some chunks (1 and 3 of 0-3)', [1, 3]],
] as const) {
  t.test(`a member that announces a newer big file and serves wrong bytes for ${what}`, async (t) => {
    // h, a and c agree on v0
    const [dh, da, dc] = [tempDir(t), tempDir(t), tempDir(t)];
    const v0 = randomBytes(prng(31), BIG);
    editAgo(dh, NAME, v0, 300);
    const h = await peer(t, dh);
    let a = await peer(t, da);
    let c = await peer(t, dc);
    connect([h, a, c]);
    await converge([h, a, c], 2);
    t.equal(sha(readFileSync(path.join(da, NAME))), sha(v0), 'a has v0');
    t.equal(sha(readFileSync(path.join(dc, NAME))), sha(v0), 'c has v0');
    const cid0 = a.sync.index.get(NAME)!.cid;
    // a goes away; h makes v1 and c takes it from h (still honest); c goes away
    await stopPeer(a);
    const v1 = randomBytes(prng(32), BIG);
    editAgo(dh, NAME, v1, 100);
    await converge([h, c], 2);
    t.equal(sha(readFileSync(path.join(dc, NAME))), sha(v1), 'c took v1 from h');
    const cid1 = h.sync.index.get(NAME)!.cid;
    t.not(cid1, cid0, 'h announces v1');
    await stopPeer(c);
    // h lies from now on about v1; a is back, and h is the only holder of v1 it can reach
    const served = makeLiar(h, cid1, [...bad]);
    const before = statSync(path.join(da, NAME));
    a = await peer(t, da);
    connect([h, a]);
    const tries: number[] = [];
    a.sync.on('fetching', (e) => e.name === NAME && tries.push(Date.now()));
    const started = Date.now();
    await a.sync.syncOnce(); // until the ticket failed ONCE_ATTEMPTS (3) times
    t.comment(`3 tries against the liar took ${Date.now() - started} ms; a warned: ${JSON.stringify(a.infos.filter((i) => i.name === NAME).map((i) => i.code))}`);
    t.ok(served.bad > 0, `h served wrong bytes (${served.bad} reads of bad chunks)`);
    t.equal(tries.length, 3, 'a tried the big file three times');
    t.ok(tries[1]! - tries[0]! >= 900, `then waited before the 2nd try (${tries[1]! - tries[0]!} ms; backoff 1 s)`);
    t.ok(tries[2]! - tries[1]! >= 1900, `and longer before the 3rd (${tries[2]! - tries[1]!} ms; backoff 2 s)`);
    const failures = a.infos.filter((i) => i.name === NAME && !i.message.startsWith(`${NAME}: dropped`));
    t.equal(failures.length, 3, 'each try failed with a warning');
    t.ok(failures.every((i) => i.code === 'SWARM_ERR_HASH_MISMATCH'), `... for bad data (${[...new Set(failures.map((i) => i.code))]})`);
    // the version here is untouched, at its name and in the index
    const after = statSync(path.join(da, NAME));
    t.equal(sha(readFileSync(path.join(da, NAME))), sha(v0), 'a still has v0 at the name, byte for byte');
    t.same([after.ino, after.mtimeMs, after.size], [before.ino, before.mtimeMs, before.size], 'the very same file (inode, mtime, size)');
    t.equal(a.sync.index.get(NAME)?.cid, cid0, "a's index still says v0");
    t.same(trashed(da), [], 'nothing went to the trash');
    t.notOk(names(da).some((n) => n.includes('sync-conflict')), 'no conflict copy');
    t.same(names(da).filter((n) => !isOwnFile(n)), [NAME], 'no other name than big.bin (bar swarm own files)');
    t.same(a.sync.index.all().filter((e) => isOwnFile(path.basename(e.name))).map((e) => e.name), [], 'no own file in the index');
    t.ok(a.sync.pending >= 1, 'the ticket is still there, waiting for its next try');
    // an honest holder of v1 is back: the waiting ticket is tried again (its backoff timer) and lands
    c = await peer(t, dc);
    connect([h, a, c]);
    const landed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 12_000);
      a.sync.on('fetched', (e) => {
        if (e.name !== NAME) return;
        clearTimeout(timer);
        resolve(true);
      });
    });
    await a.sync.syncOnce(); // reads c: v1 has an honest holder now
    t.ok(await landed, 'v1 landed on a, by the retry (within 12 s)');
    await converge([h, a, c], 1);
    for (const [who, dir] of [['a', da], ['c', dc], ['h', dh]] as const) {
      t.equal(sha(readFileSync(path.join(dir, NAME))), sha(v1), `${who}: v1 at the name`);
      t.same(names(dir), [NAME], `${who}: nothing else in the folder (no part, ticket, lock, temp, copy)`);
    }
    t.equal(a.sync.index.get(NAME)?.cid, cid1, "a's index says v1");
    t.ok(trashed(da).includes(sha(v0)), 'v0 is in the trash on a');
    t.same(a.sync.index.all().filter((e) => isOwnFile(path.basename(e.name))).map((e) => e.name), [], 'no own file in the index');
  });
}
