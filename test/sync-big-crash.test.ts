/**
 * kill -9 of a member while a big file (more than one chunk) lands, or a batch of small ones: after the version here was
 * kept (trash or conflict copy, get's beforeReplace) and before the new one took its name, or
 * right after (before the index was told, or before it was saved). Restarted, the members must end
 * alike: the winner at the name, the loser of a conflict as its copy, the replaced version in the
 * trash, no part file left; and the restarted member's index takes the file as the version it
 * fetched (its maker and lineage as the holder gave them), not as an edit made here (before: the
 * kill after the rename left this folder as the maker of h's version, with a's own edit in its
 * lineage; sync-landing.ndjson in index-store.ts). In-process peer h,
 * the killed member a in a child process (test/helpers/crash-sync-child.ts), all on 127.0.0.1.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { prng, randomBytes } from './helpers/prng.js';
import { syncPeer as peer, connect, converge, stopPeer, editAgo, agreedPair } from './helpers/sync-peers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex').slice(0, 12);
const BIG = 3 * 1024 * 1024 + 17;
const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'crash-sync-child.js');


/** name -> short sha of every file in dir (the trash as trash/…, .swarm's other files left out). */
function listing(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir)) if (f !== '.swarm') out[f] = sha(readFileSync(path.join(dir, f)));
  const trash = path.join(dir, '.swarm', 'trash');
  if (existsSync(trash)) for (const f of readdirSync(trash)) out[`trash/${f.slice(16)}`] = sha(readFileSync(path.join(trash, f)));
  return out;
}

function runChild(dir: string, port: number, step: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, dir, String(port), step], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('exit', (code, sig) => {
      clearTimeout(timer);
      resolve(`${sig ?? code} ${out.trim()}`);
    });
  });
}

/** A small file lands in a batch (no part file): only the step after the index was told applies. */
const SMALL = 20_000;
const cases = [
  ...[true, false].flatMap((conflict) => ['replaced', 'renamed', 'indexed'].map((step) => ({ conflict, step, size: BIG }))),
  ...[true, false].map((conflict) => ({ conflict, step: 'indexed', size: SMALL })),
];
for (const { conflict, step, size } of cases) {
  {
    const what = `${size === SMALL ? 'a small file, ' : ''}${conflict ? 'a conflict' : 'an update'}`;
    t.test(`${what}: killed when ${step}, restarted: both versions kept, the members alike`, async (t) => {
      const BIG = size;
      const v0 = randomBytes(prng(1), BIG);
      const pair = await agreedPair(t, 'big.bin', v0, 300);
      const { dh, da, h } = pair;
      let a = pair.a;
      t.equal(sha(readFileSync(path.join(da, 'big.bin'))), sha(v0), 'a has the common version');
      await stopPeer(a);
      const vA = randomBytes(prng(2), BIG);
      if (conflict) editAgo(da, 'big.bin', vA, 200); // a's edit, made while a was stopped (older)
      const vH = randomBytes(prng(3), BIG);
      editAgo(dh, 'big.bin', vH, 100); // h's edit (newer: it wins)
      await h.node.library.refresh();
      const how = await runChild(da, h.node.port, step);
      t.match(how, /^SIGKILL/, `the member was killed (${how})`);
      t.comment('after the kill:', JSON.stringify(listing(da)));
      a = await peer(t, da);
      connect([h, a]);
      await converge([h, a], 5);
      const la = listing(da);
      const lh = listing(dh);
      t.comment('a:', JSON.stringify(la), 'index:', JSON.stringify(a.sync.index.get('big.bin')));
      t.comment('h:', JSON.stringify(lh), 'index:', JSON.stringify(h.sync.index.get('big.bin')));
      for (const [who, l] of [['a', la], ['h', lh]] as const) {
        t.equal(l['big.bin'], sha(vH), `${who}: the winner at the name`);
        if (conflict) t.ok(Object.entries(l).some(([n, s]) => n.startsWith('big.sync-conflict-') && s === sha(vA)), `${who}: a's edit kept as its conflict copy`);
        t.notOk(Object.keys(l).some((n) => /\.swarm-(part|ticket)/.test(n)), `${who}: no part file left`);
      }
      const [ea, eh] = [a.sync.index.get('big.bin'), h.sync.index.get('big.bin')];
      t.equal(ea?.maker, h.sync.deviceId, "a's index: h made the version at the name (fails before after 'renamed' or 'indexed', small files too: a)");
      t.equal(eh?.maker, h.sync.deviceId, "h's index: h made it");
      t.same(ea?.prev, eh?.prev, "a's index: the lineage h gave it (fails before after 'renamed' or 'indexed': a's own edit in it)");
      await a.sync.index.save();
      t.notOk(existsSync(path.join(da, '.swarm', 'sync-landing.ndjson')), 'no landing record left once the index is saved');
      if (!conflict) t.ok(Object.entries(la).some(([n, s]) => n.startsWith('trash/') && s === sha(v0)), 'a: the replaced version in the trash');
    });
  }
}
