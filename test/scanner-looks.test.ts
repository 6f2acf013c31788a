/**
 * Hostile re-check of the scanner's look at named paths (lib/share/scanner.ts lookAt): a path
 * whose kind changed between looks (a file replaced by a folder, a folder by a file or renamed),
 * names that are prefixes of others. The fallback walk is 10 minutes away in every test here, so
 * only the watch-driven looks can settle each case. Local folders only; each wait is bounded.
 */
import t, { type Test } from 'tap';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Scanner } from '../lib/share/scanner.js';
import { tempDir } from './helpers/tmp.js';

async function started(t: Test, dir: string): Promise<Scanner> {
  const s = new Scanner(dir, { intervalMs: 600_000 });
  t.teardown(() => s.stop());
  await s.rescan();
  s.start();
  return s;
}

/** Waits (at most `ms`) until `pred(names)` holds after a scan; returns the names then. */
async function settled(s: Scanner, pred: (names: string[]) => boolean, ms = 4_000): Promise<string[]> {
  const deadline = Date.now() + ms;
  let names = [...s.current.keys()].sort();
  while (!pred(names) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    names = [...s.current.keys()].sort();
  }
  // a few more looks' worth of time: a stale name must not come back either
  await new Promise((r) => setTimeout(r, 300));
  return [...s.current.keys()].sort();
}

t.test('a file replaced by a folder of the same name: the file name goes', async (t) => {
  const dir = tempDir(t, 'h30-scan-');
  writeFileSync(path.join(dir, 'a'), 'file');
  writeFileSync(path.join(dir, 'keep'), 'k');
  const s = await started(t, dir);
  t.same([...s.current.keys()].sort(), ['a', 'keep']);
  rmSync(path.join(dir, 'a'));
  mkdirSync(path.join(dir, 'a'));
  writeFileSync(path.join(dir, 'a', 'x'), 'inside');
  const names = await settled(s, (n) => n.includes('a/x') && !n.includes('a'));
  t.same(names, ['a/x', 'keep'], 'the old file "a" is not reported any more (it stayed as a stale file)');
});

t.test('a folder replaced by a file, a folder renamed, a name that is a prefix of another', async (t) => {
  const dir = tempDir(t, 'h30-scan-');
  mkdirSync(path.join(dir, 'd'));
  writeFileSync(path.join(dir, 'd', 'f'), 'f');
  mkdirSync(path.join(dir, 'a b'));
  writeFileSync(path.join(dir, 'a b', 'c'), 'c');
  mkdirSync(path.join(dir, 'a'));
  writeFileSync(path.join(dir, 'a', 'x'), 'x');
  const s = await started(t, dir);
  t.same([...s.current.keys()].sort(), ['a b/c', 'a/x', 'd/f']);
  renameSync(path.join(dir, 'd'), path.join(dir, 'e'));
  writeFileSync(path.join(dir, 'd'), 'now a file');
  rmSync(path.join(dir, 'a'), { recursive: true });
  const names = await settled(s, (n) => n.includes('e/f') && n.includes('d') && !n.includes('d/f') && !n.includes('a/x'));
  t.same(names, ['a b/c', 'd', 'e/f']);
});

t.test('a folder found by a look (after the last full walk), then replaced by a file', async (t) => {
  const dir = tempDir(t, 'h30-scan-');
  writeFileSync(path.join(dir, 'keep'), 'k');
  const s = await started(t, dir);
  mkdirSync(path.join(dir, 'n', 'm'), { recursive: true });
  writeFileSync(path.join(dir, 'n', 'm', 'f'), 'f');
  t.same(await settled(s, (n) => n.includes('n/m/f')), ['keep', 'n/m/f']);
  rmSync(path.join(dir, 'n'), { recursive: true });
  writeFileSync(path.join(dir, 'n'), 'file now');
  t.same(await settled(s, (n) => n.includes('n') && !n.includes('n/m/f')), ['keep', 'n']);
  // and back: the file replaced by a folder again
  rmSync(path.join(dir, 'n'));
  mkdirSync(path.join(dir, 'n'));
  writeFileSync(path.join(dir, 'n', 'g'), 'g');
  t.same(await settled(s, (n) => n.includes('n/g') && !n.includes('n')), ['keep', 'n/g']);
});

t.test('a folder of many entries the walk skips at once (named pipes) does not hold the event loop', async (t) => {
  const dir = tempDir(t, 'h30-scan-');
  const pipes = path.join(dir, 'pipes');
  mkdirSync(pipes);
  // 60,000 named pipes (any local user who can write into the share can make them): the walk read
  // the folder with one readdirSync and skipped every entry without a turn: ~200 ms held
  // (coreutils' mkfifo, 5,000 names a call: no other tool needed on a fresh machine)
  let status: number | null = 0;
  for (let from = 0; from < 60_000 && status === 0; from += 5_000) {
    const names = Array.from({ length: 5_000 }, (_, i) => path.join(pipes, `p${String(from + i).padStart(5, '0')}`));
    const made = spawnSync('mkfifo', names, { timeout: 20_000 });
    status = made.status;
    if (status !== 0) t.comment(`mkfifo: ${made.error?.message ?? made.stderr}`);
  }
  t.equal(status, 0, '60,000 named pipes made');
  writeFileSync(path.join(dir, 'f'), 'f');
  const s = new Scanner(dir, { watch: false });
  let last = performance.now();
  let worst = 0;
  const iv = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  await s.rescan();
  await new Promise((r) => setTimeout(r, 30)); // the interval runs once more after the last stretch
  clearInterval(iv);
  t.same([...s.current.keys()], ['f']);
  t.ok(worst < 100, `the loop was held at most ${worst.toFixed(0)} ms (slices of ${4} ms, GC aside)`);
});
