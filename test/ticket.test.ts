import t from 'tap';
import path from 'node:path';
import { readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { Ticket } from '../lib/storage/ticket.js';

t.test('ticket: bits survive save and load; saves coalesce; no temp files left', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'x.swarm-ticket');
  const tk = new Ticket(file, { name: 'x', cid: 'abc', size: 100, chunkBytes: 10, mtime: 5 }, 10);
  for (const i of [0, 3, 9]) tk.mark(i);
  await tk.flush();
  const d = (await Ticket.load(file)).ticket;
  t.equal(d!.cid, 'abc');
  const back = Ticket.fromData(file, d!, 10);
  t.same([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].filter((i) => back.has(i)), [0, 3, 9]);
  t.equal(back.count(), 3);
  t.same(readdirSync(dir), ['x.swarm-ticket'], 'no temp file left behind');
  await back.remove();
  t.same(readdirSync(dir), []);
  t.same(await Ticket.load(file), { ticket: null, why: 'missing' });
});

t.test('ticket: a damaged ticket is not trusted; an old one is recognised', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'x.swarm-ticket');
  const tk = new Ticket(file, { name: 'x', cid: 'abc', size: 100, chunkBytes: 10, mtime: 5 }, 10);
  tk.mark(1);
  await tk.flush();
  await tk.close();
  const text = readFileSync(file, 'utf8');
  // a torn write overwrites bytes in place: flip one character of the first slot, then of both
  writeFileSync(file, text.replace('"verified":"A', '"verified":"B'));
  t.equal((await Ticket.load(file)).ticket?.verified, Buffer.from([2, 0]).toString('base64'), 'one slot spoiled (a torn write): the other one holds');
  writeFileSync(file, text.replaceAll('"verified":"A', '"verified":"B'));
  t.same(await Ticket.load(file), { ticket: null, why: 'damaged' }, 'both slots spoiled: the checksums catch it');
  writeFileSync(file, JSON.stringify({ version: 1, name: 'x', cid: '00ff', size: 100, chunkBytes: 10, mtime: 5, verified: 'AA==' }));
  t.same(await Ticket.load(file), { ticket: null, why: 'old-format' });
});

t.test('ticket: saves alternate between two slots written in place; the newest valid one is loaded', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'x.swarm-ticket');
  const tk = new Ticket(file, { name: 'x', cid: 'abc', size: 100, chunkBytes: 10, mtime: 5 }, 10);
  await tk.flush();
  const size = readFileSync(file).length;
  for (let i = 0; i < 10; i++) {
    tk.mark(i);
    await tk.flush();
    t.equal(readFileSync(file).length, size, 'the file keeps its size: slots are overwritten in place');
    const back = Ticket.fromData(file, (await Ticket.load(file)).ticket!, 10);
    t.equal(back.count(), i + 1, `after save ${i + 1} the newest slot is loaded`);
  }
  await tk.remove();
  t.same(readdirSync(dir), [], 'no temp file, no ticket left');
});

t.test('ticket: a save that fails surfaces as a typed error, never an unhandled rejection', async (t) => {
  const dir = t.testdir({ gone: {} });
  const file = path.join(dir, 'gone', 'x.swarm-ticket');
  const tk = new Ticket(file, { name: 'x', cid: 'abc', size: 100, chunkBytes: 10, mtime: 5 }, 10);
  rmSync(path.join(dir, 'gone'), { recursive: true });
  const failed = new Promise<{ code: string }>((resolve) => tk.failWith(resolve));
  tk.mark(0);
  const e = await failed;
  t.equal(e.code, 'SWARM_ERR_IO', 'the output folder was removed: an I/O error');
  t.equal(tk.error?.code, 'SWARM_ERR_IO');
  await t.rejects(tk.flush(), { code: 'SWARM_ERR_IO' });
});

t.test('ticket: count is kept as chunks are marked; firstMissing skips whole verified bytes and finds every hole', async (t) => {
  const dir = t.testdir({});
  const n = 1_000;
  const tk = new Ticket(path.join(dir, 'y.swarm-ticket'), { name: 'y', cid: 'def', size: n * 10, chunkBytes: 10, mtime: 5 }, n);
  const holes = new Set([0, 7, 8, 100, 513, 999]);
  t.equal(tk.count(), 0);
  for (let i = 0; i < n; i++) if (!holes.has(i)) tk.mark(i);
  tk.mark(1); // again: counted once
  t.equal(tk.count(), n - holes.size, 'count follows marks, a repeat counted once');
  // against the plain definition, over many ranges (bytes, their edges, partial bytes)
  const slow = (from: number, to: number) => {
    for (let i = from; i < to; i++) if (!tk.has(i)) return i;
    return -1;
  };
  let checked = 0;
  for (const from of [0, 1, 7, 8, 9, 15, 16, 99, 101, 512, 514, 998, 999]) {
    for (const to of [from + 1, from + 8, from + 9, 101, 514, 999, 1_000]) {
      if (to <= from || to > n) continue;
      t.equal(tk.firstMissing(from, to), slow(from, to), `[${from}, ${to})`);
      checked++;
    }
  }
  t.ok(checked > 50, `${checked} ranges compared`);
  await tk.remove();
});
