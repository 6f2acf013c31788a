/**
 * `swarm sync` killed with SIGKILL in the middle of a sync, then started again (issue "keep
 * folders in step", tests): a source peer (in this process, its upload capped so the sync takes
 * seconds) holds many small files in folders and one file of several chunks; a `swarm sync`
 * process fetching them is killed once some but not all have landed. Checked right after the
 * kill: every file under its final name has the source's bytes (nothing half-written, nothing
 * unverified). Checked after a restart with --once: every file there with the source's bytes and
 * mtime, and no temp file, part file or ticket left anywhere in the folder.
 */
import t from 'tap';
import { mkdirSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { serve } from '../lib/serve.js';
import { Syncer } from '../lib/sync/syncer.js';
import { SWARM_BIN } from './helpers/procs.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';

const SMALL = 240;
const BIG_BYTES = 5 * 1024 * 1024 + 4321;

/** Every regular file under dir, relative names ('/'), swarm's own folder left out. */
function files(dir: string, sub = ''): string[] {
  const out: string[] = [];
  for (const d of readdirSync(path.join(dir, sub), { withFileTypes: true })) {
    const rel = sub ? `${sub}/${d.name}` : d.name;
    if (rel === '.swarm') continue;
    if (d.isDirectory()) out.push(...files(dir, rel));
    else out.push(rel);
  }
  return out;
}

/** Leftovers of an interrupted fetch anywhere under dir: temp files, part files, tickets. */
function leftovers(dir: string): string[] {
  const out: string[] = [];
  const walk = (sub: string) => {
    for (const d of readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${d.name}` : d.name;
      if (d.isDirectory()) walk(rel);
      else if (/\.swarm-(part|ticket|lock)$/.test(d.name) || rel.startsWith('.swarm/tmp/')) out.push(rel);
    }
  };
  walk('');
  return out;
}

function runSync(args: string[]): { exit: Promise<number | null>; kill: () => void; out: () => string } {
  const c = spawn(process.execPath, [SWARM_BIN, 'sync', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  c.stdout.on('data', (d: Buffer) => (out += d));
  c.stderr.on('data', (d: Buffer) => (out += d));
  const timer = setTimeout(() => c.kill('SIGKILL'), 60_000);
  const exit = new Promise<number | null>((resolve) => c.on('exit', (code) => (clearTimeout(timer), resolve(code))));
  return { exit, kill: () => c.kill('SIGKILL'), out: () => out };
}

t.test('kill -9 in the middle of a sync, then restart: no wrong bytes under any name, converges, nothing left over', async (t) => {
  const src = tempDir(t);
  const rand = prng(2024);
  const want = new Map<string, Buffer>();
  for (let i = 0; i < SMALL; i++) {
    const name = `d${i % 6}/f${String(i).padStart(3, '0')}.bin`;
    mkdirSync(path.join(src, path.dirname(name)), { recursive: true });
    const data = randomBytes(rand, 1024 + Math.floor(rand() * 15 * 1024));
    writeFileSync(path.join(src, name), data);
    utimesSync(path.join(src, name), 1_700_000_000 + i, 1_700_000_000 + i);
    want.set(name, data);
  }
  const big = randomBytes(rand, BIG_BYTES);
  writeFileSync(path.join(src, 'big.bin'), big);
  utimesSync(path.join(src, 'big.bin'), 1_700_100_000, 1_700_100_000);
  want.set('big.bin', big);
  const total = [...want.values()].reduce((a, b) => a + b.length, 0);

  // the source: its upload capped so that the whole sync takes ~4 s and a kill lands inside it
  const node = await serve(src, { port: 0, host: '127.0.0.1', noTracker: true, threads: 0, watch: false, maxUploadBytesPerSec: Math.ceil(total / 4) });
  const source = new Syncer(node, { pullMs: 60_000 });
  await source.start();
  t.teardown(async () => {
    await source.close();
    await node.close({ graceful: false });
  });

  const dst = tempDir(t);
  const args = [dst, '--port', '0', '--no-tracker', '--neighbor', `127.0.0.1:${node.port}`, '--threads', '0', '--json'];
  const first = runSync(args);
  // wait until some files have landed, then kill -9
  const deadline = Date.now() + 30_000;
  let landed = 0;
  while (Date.now() < deadline) {
    landed = existsSync(dst) ? files(dst).length : 0;
    if (landed >= 20) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  first.kill();
  await first.exit;
  // a big file's download keeps NAME.swarm-part / -ticket / -lock beside NAME until it lands: temp
  // names, not final ones (the restart resumes or removes them, checked at the end)
  const after = files(dst).filter((n) => !/\.swarm-(part|ticket|lock)$/.test(n));
  t.ok(after.length >= 20 && after.length < want.size, `killed mid-sync: ${after.length} of ${want.size} files had landed`);
  const wrong = after.filter((n) => !want.has(n) || !readFileSync(path.join(dst, n)).equals(want.get(n)!));
  t.same(wrong, [], 'every file under its final name right after the kill has the source bytes');

  // restart: --once brings the folder in step and exits 0
  const second = runSync([...args, '--once']);
  const code = await second.exit;
  t.equal(code, 0, `the restarted sync converges and exits 0 ${code === 0 ? '' : second.out().slice(-2000)}`);
  const now = files(dst).sort();
  t.same(now, [...want.keys()].sort(), 'every file is there, nothing else');
  const bad = now.filter((n) => !readFileSync(path.join(dst, n)).equals(want.get(n)!));
  t.same(bad, [], 'with the source bytes');
  const badTimes = now.filter((n) => Math.floor(statSync(path.join(dst, n)).mtimeMs / 1000) !== Math.floor(statSync(path.join(src, n)).mtimeMs / 1000));
  t.same(badTimes, [], 'and the source mtimes');
  t.same(leftovers(dst), [], 'no temp file, part file, ticket or lock left');
});
