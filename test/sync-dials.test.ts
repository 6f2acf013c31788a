/**
 * Which peers a sync dials (dial-plan.ts, readers.ts): at most MAX_SYNC_PEERS a round, at most
 * DIALS_AT_ONCE at once, named neighbours and known members first, and a peer that did not answer
 * is skipped for a while. Before: every address in the book and the tracker's directory was
 * dialled at once, every round (10,000 listed addresses: 10,000 sockets and read buffers each 10 s).
 */
import t from 'tap';
import net from 'node:net';
import { existsSync, readFileSync, writeFileSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './helpers/tmp.js';
import { syncPeer as peer } from './helpers/sync-peers.js';
import {
  DialBackoff,
  DIALS_AT_ONCE,
  eachLimited,
  MAX_REMEMBERED,
  MAX_SYNC_PEERS,
  NAMED_RETRY_MAX_MS,
  NOT_MEMBER_MS,
  OPEN_PLACES,
  planRound,
  RETRY_FIRST_MS,
  RETRY_MAX_MS,
} from '../lib/sync/dial-plan.js';

t.test('DialBackoff (pure): failures wait longer each time up to a cap (sooner for a named peer); no members wait long; cleared at once; bounded', async (t) => {
  const b = new DialBackoff();
  const now = 1_000_000;
  t.notOk(b.waiting('p', now), 'a peer never tried is not skipped');
  b.failed('p', now);
  t.ok(b.waiting('p', now + RETRY_FIRST_MS - 1), 'skipped after a failure');
  t.notOk(b.waiting('p', now + RETRY_FIRST_MS), `for ${RETRY_FIRST_MS / 1000} s`);
  b.failed('p', now);
  t.ok(b.waiting('p', now + 2 * RETRY_FIRST_MS - 1), 'twice as long after the second');
  for (let i = 0; i < 40; i++) b.failed('p', now);
  t.notOk(b.waiting('p', now + RETRY_MAX_MS), `never longer than ${RETRY_MAX_MS / 1000} s (and no overflow after many)`);
  for (let i = 0; i < 10; i++) b.failed('n', now, true);
  t.notOk(b.waiting('n', now + NAMED_RETRY_MAX_MS), `a named peer: at most ${NAMED_RETRY_MAX_MS / 1000} s`);
  b.notMember('m', now);
  t.ok(b.waiting('m', now + NOT_MEMBER_MS - 1), 'no member: skipped');
  t.notOk(b.waiting('m', now + NOT_MEMBER_MS), `for ${NOT_MEMBER_MS / 1000} s`);
  b.cleared('m');
  t.notOk(b.waiting('m', now), 'a peer that proved the key is dialled at once');
  const big = new DialBackoff();
  for (let i = 0; i < MAX_REMEMBERED + 500; i++) big.failed(`x${i}`, now + i);
  t.ok(big.size <= MAX_REMEMBERED, `remembers at most ${MAX_REMEMBERED}`);
  t.ok(big.waiting(`x${MAX_REMEMBERED + 499}`, now + MAX_REMEMBERED + 499), 'the newest are kept');
});

t.test('planRound (pure): named, then those that read us, then members: `known`, the plan is made from them; the rest drawn; at most max', async (t) => {
  const id = (s: string) => s;
  const r = planRound({ first: [['n1'], ['r1']], members: ['m1', 'n1'], others: [['b1', 'b2'], ['t1', 'm1', 't2']] }, id, () => false, 10, 4);
  t.same(r.peers.slice(0, 3), ['n1', 'r1', 'm1'], 'named, read us, members, in that order');
  t.equal(r.known, 3, 'those three are known (the plan is made from them first)');
  t.same(r.peers.slice(3).sort(), ['b1', 'b2', 't1', 't2'], 'the rest drawn, each once');
  t.notOk(r.more, 'nobody left');
  const skip = planRound({ first: [['n1']], members: ['m1'], others: [['b1', 'b2']] }, id, (k) => k === 'm1' || k === 'b1', 10, 4);
  t.same(skip.peers, ['n1', 'b2'], 'skipped ones left out');
  t.equal(skip.known, 1);
  const listed = Array.from({ length: 10_000 }, (_, i) => `t${i}`);
  const big = planRound({ first: [['n1']], members: ['m1'], others: [[], listed] }, id, () => false);
  t.equal(big.peers.length, MAX_SYNC_PEERS, `10,000 listed: ${MAX_SYNC_PEERS} a round`);
  t.same(big.peers.slice(0, 2), ['n1', 'm1'], 'the named and the members keep their places');
  t.ok(big.more, 'and the others wait for later rounds');
  const members = Array.from({ length: 100 }, (_, i) => `m${i}`);
  t.equal(planRound({ first: [], members, others: [] }, id, () => false).known, MAX_SYNC_PEERS - OPEN_PLACES, `members read before take ${MAX_SYNC_PEERS - OPEN_PLACES} places at most as known`);
});

t.test('eachLimited: never more than the limit at once; a rejection does not stop the others', async (t) => {
  let now = 0;
  let most = 0;
  const done: number[] = [];
  await eachLimited(
    Array.from({ length: 50 }, (_, i) => i),
    7,
    async (i) => {
      most = Math.max(most, ++now);
      await new Promise((r) => setTimeout(r, 1 + (i % 5)));
      now--;
      if (i % 10 === 3) throw new Error('this one fails');
      done.push(i);
    },
  );
  t.equal(most, 7, 'seven at once at most');
  t.equal(done.length, 45, 'every item ran (the five that threw too)');
});

t.test('a sync among 100 addresses that answer nothing: 64 a round, 16 at once, none twice while it waits; the named member is read first', async (t) => {
  // 100 "peers" that take the connection and close it 50 ms later without a word
  const accepted = new Map<number, number>();
  let open = 0;
  let most = 0;
  const servers: net.Server[] = [];
  for (let i = 0; i < 100; i++) {
    const s = net.createServer((sock) => {
      most = Math.max(most, ++open);
      const port = (s.address() as net.AddressInfo).port;
      accepted.set(port, (accepted.get(port) ?? 0) + 1);
      sock.on('error', () => {});
      sock.on('close', () => open--);
      setTimeout(() => sock.destroy(), 50);
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    servers.push(s);
  }
  t.teardown(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));
  const [da, db] = [tempDir(t), tempDir(t)];
  writeFileSync(path.join(db, 'from-b.txt'), 'b has it\n');
  utimesSync(path.join(db, 'from-b.txt'), 1_600_000_000, 1_600_000_000);
  const a = await peer(t, da);
  const b = await peer(t, db);
  for (const s of servers) a.node.book.add({ ip: '127.0.0.1', port: (s.address() as net.AddressInfo).port }, 'inbound');
  a.node.book.add({ ip: '127.0.0.1', port: b.node.port }, 'neighbor');

  await a.sync.syncOnce();
  t.equal(readFileSync(path.join(da, 'from-b.txt'), 'utf8'), 'b has it\n', 'the named member was read and its file fetched');
  const first = accepted.size;
  t.equal(first, MAX_SYNC_PEERS - 1, `round 1: the named member and ${MAX_SYNC_PEERS - 1} of the 100 (fails before: 100)`);
  t.ok(most <= DIALS_AT_ONCE, `at most ${DIALS_AT_ONCE} at once (${most}; fails before: up to 100)`);

  await a.sync.syncOnce();
  t.equal(accepted.size, 100, 'round 2: the other 37 (the 63 that failed wait their turn)');
  t.ok([...accepted.values()].every((n) => n === 1), 'none dialled twice (fails before: every one, each round)');
  t.ok(most <= DIALS_AT_ONCE, `still at most ${DIALS_AT_ONCE} at once`);
  t.same(a.warnings.filter((w) => /127\.0\.0\.1/.test(w) && !/not read/.test(w)), [], 'addresses that answer nothing are no warning each');
});

/** `n` addresses that take the connection and say nothing: each dial waits for the hello (3 s). */
async function silentServers(t: { teardown(fn: () => unknown): void }, n: number): Promise<net.Server[]> {
  const held: net.Socket[] = [];
  const servers: net.Server[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.createServer((sock) => {
      sock.on('error', () => {});
      held.push(sock);
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    servers.push(s);
  }
  t.teardown(async () => {
    for (const s of held) s.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });
  return servers;
}

const waitFor = async (f: () => boolean, ms: number) => {
  for (let i = 0; i < ms / 25 && !f(); i++) await new Promise((r) => setTimeout(r, 25));
  return f();
};

t.test("a member's news is read while the round's drawn addresses still hang (the plan is made from the known ones first)", async (t) => {
  const servers = await silentServers(t, 32);
  const [da, db] = [tempDir(t), tempDir(t)];
  writeFileSync(path.join(db, 'notes.txt'), 'first\n');
  utimesSync(path.join(db, 'notes.txt'), 1_600_000_000, 1_600_000_000);
  const a = await peer(t, da);
  const b = await peer(t, db);
  a.node.book.add({ ip: '127.0.0.1', port: b.node.port }, 'neighbor');
  await a.sync.syncOnce();
  t.equal(readFileSync(path.join(da, 'notes.txt'), 'utf8'), 'first\n', 'a read b');
  for (const s of servers) a.node.book.add({ ip: '127.0.0.1', port: (s.address() as net.AddressInfo).port }, 'inbound');
  const round = a.sync.syncOnce(); // b is known; the 32 silent ones are drawn: two waves of 3 s
  let roundOver = false;
  void round.then(() => (roundOver = true));
  await new Promise((r) => setTimeout(r, 300));
  writeFileSync(path.join(db, 'notes.txt'), 'second\n');
  utimesSync(path.join(db, 'notes.txt'), 1_600_000_100, 1_600_000_100);
  const t0 = Date.now();
  await b.node.library.refresh(); // b's index changes: its news goes to a
  let got = '';
  for (let i = 0; i < 200 && got !== 'second\n'; i++) {
    await new Promise((r) => setTimeout(r, 25));
    got = readFileSync(path.join(da, 'notes.txt'), 'utf8');
  }
  const ms = Date.now() - t0;
  t.equal(got, 'second\n', 'the edit reached a');
  t.notOk(roundOver, 'while the round still waited on the silent addresses');
  t.ok(ms < 3_000, `within ${ms} ms (fails before: news waited for the whole round, 6 s here, 30 s before silent peers were dropped at 3 s)`);
  await round;
});

t.test('a member that reads us while the round dials its drawn addresses is read back at once, not after the round', async (t) => {
  const servers = await silentServers(t, 32);
  const [da, dc] = [tempDir(t), tempDir(t)];
  writeFileSync(path.join(dc, 'from-c.txt'), 'c has it\n');
  utimesSync(path.join(dc, 'from-c.txt'), 1_600_000_000, 1_600_000_000);
  const a = await peer(t, da);
  const c = await peer(t, dc);
  for (const s of servers) a.node.book.add({ ip: '127.0.0.1', port: (s.address() as net.AddressInfo).port }, 'inbound');
  const round = a.sync.syncOnce(); // nothing known; 32 silent addresses drawn: two waves of 3 s
  let roundOver = false;
  void round.then(() => (roundOver = true));
  await new Promise((r) => setTimeout(r, 300));
  c.node.book.add({ ip: '127.0.0.1', port: a.node.port }, 'neighbor');
  const t0 = Date.now();
  await c.sync.syncOnce(); // c reads a and watches it: a is told (watchedBy)
  const got = await waitFor(() => existsSync(path.join(da, 'from-c.txt')), 5_000);
  const ms = Date.now() - t0;
  t.ok(got, "c's file reached a");
  t.notOk(roundOver, 'while the round still waited on the silent addresses');
  t.ok(ms < 3_000, `within ${ms} ms (fails before: a read c in its next round, after this one)`);
  await round;
});

t.test('readDirectory (pure): 300,000 holders listed in one entry are taken whole (no spread of a huge list)', async (t) => {
  const { readDirectory } = await import('../lib/sync/directory-peers.js');
  const many = Array.from({ length: 300_000 }, (_, i) => ({ ip: '127.0.0.9', port: 1 + (i % 65_000) }));
  const cid = 'c'.repeat(64);
  const one = readDirectory([['big.bin', { cid, mtime: 1, size: 1, holders: many, partial: [] }]], false, (a) => `${a.ip}|${a.port}`);
  t.equal(one.listed.length, 300_000, 'one entry of 300,000 holders (fails before: RangeError, maximum call stack size)');
  const spread: unknown[] = [];
  t.throws(() => spread.push(...many), RangeError, 'which a spread of them throws here');
});
