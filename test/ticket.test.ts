import t from 'tap';
import path from 'node:path';
import { readdirSync } from 'node:fs';
import { Ticket } from '../lib/storage/ticket.js';

t.test('ticket: bits survive save and load; saves coalesce; no temp files left', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'x.swarm-ticket');
  const tk = new Ticket(file, { name: 'x', cid: 'abc', size: 100, chunkBytes: 10, mtime: 5 }, 10);
  for (const i of [0, 3, 9]) tk.mark(i);
  await tk.flush();
  const d = await Ticket.load(file);
  t.equal(d!.cid, 'abc');
  const back = Ticket.fromData(file, d!, 10);
  t.same([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].filter((i) => back.has(i)), [0, 3, 9]);
  t.equal(back.count(), 3);
  t.same(readdirSync(dir), ['x.swarm-ticket'], 'no temp file left behind');
  await back.remove();
  t.same(readdirSync(dir), []);
  t.equal(await Ticket.load(file), null);
});
