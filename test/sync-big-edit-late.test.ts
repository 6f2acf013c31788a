/**
 * An edit made here shortly before a big download ends (the library hashed it, the index has not
 * taken it yet: a file younger than STABLE_MS waits to be announced, local.ts) is not replaced by
 * the older version coming (ticket-run.ts stillHere). In-process sync peers on 127.0.0.1.
 */
import t from 'tap';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { prng, randomBytes } from './helpers/prng.js';
import { converge, editAgo, agreedPair } from './helpers/sync-peers.js';
import { Coordinator } from '../lib/download/coordinator.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex').slice(0, 12);
const BIG = 3 * 1024 * 1024 + 17;


t.test('an edit the library saw but the index did not take yet is not replaced by the older version coming', async (t) => {
  const v0 = randomBytes(prng(21), BIG);
  const { dh, da, h, a } = await agreedPair(t, 'big.bin', v0, 300);
  const vH = randomBytes(prng(22), BIG);
  editAgo(dh, 'big.bin', vH, 100);
  await h.node.library.refresh();
  // the user at a saves an edit as a's download of h's older edit ends; the library (its watch) hashes it
  const vA = randomBytes(prng(23), BIG);
  const drain = Coordinator.prototype.drainWrites;
  let edited = false;
  Coordinator.prototype.drainWrites = async function (this: Coordinator) {
    await drain.call(this);
    if (edited) return;
    edited = true;
    writeFileSync(path.join(da, 'big.bin'), vA);
    await a.node.library.refresh();
  };
  t.teardown(() => {
    Coordinator.prototype.drainWrites = drain;
  });
  await a.sync.syncOnce();
  t.ok(edited, 'the edit was made while the download ran');
  const trashDir = path.join(da, '.swarm', 'trash');
  const trash = (existsSync(trashDir) ? readdirSync(trashDir) : []).map((f) => sha(readFileSync(path.join(da, '.swarm', 'trash', f))));
  t.comment('a now:', sha(readFileSync(path.join(da, 'big.bin'))), 'trash:', trash, 'vA', sha(vA), 'vH', sha(vH));
  t.equal(sha(readFileSync(path.join(da, 'big.bin'))), sha(vA), "the user's edit (the newest) is still at the name");
  // settled, the members converge: the newest edit (a's) wins everywhere
  await new Promise((r) => setTimeout(r, 400));
  await converge([h, a], 4);
  t.equal(sha(readFileSync(path.join(dh, 'big.bin'))), sha(vA), "h: a's edit, the newest, at the name");
  t.equal(sha(readFileSync(path.join(da, 'big.bin'))), sha(vA), "a: a's edit, the newest, at the name");
});
