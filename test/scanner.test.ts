import t from 'tap';
import { writeFileSync, mkdirSync, utimesSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { scanShare, diffScans, Scanner, notSharedName, fallbackWalkMs } from '../lib/share/scanner.js';
import { nameProblem } from '../lib/share/names.js';
import { kindOf } from '../lib/share/kinds.js';
import { MIN_CHUNK_BYTES } from '../lib/constants.js';

t.test('walks nested folders with every kind of awkward name', async (t) => {
  const dir = t.testdir({
    'a.txt': 'hello',
    'empty.bin': '',
    'deep': { 'er': { 'still deeper': { 'ünïcødé ñame.mp3': 'x' } } },
    '.swarm': { 'manifests.json': '{}' },
    'half.iso.swarm-part': 'partial',
    'half.iso.swarm-ticket': '{}',
    'half.iso.swarm-ticket.swarm-tmp-123-abc': '{}',
  });
  writeFileSync(path.join(dir, 'exact.bin'), Buffer.alloc(2 * MIN_CHUNK_BYTES));
  symlinkSync('/etc/hostname', path.join(dir, 'escape-link'));
  symlinkSync(path.join(dir, 'a.txt'), path.join(dir, 'inside-link'));
  const skipped: string[] = [];
  const scan = await scanShare(dir, { onSkip: (n, r) => skipped.push(`${n}: ${r}`) });
  t.same([...scan.keys()].sort(), ['a.txt', 'deep/er/still deeper/ünïcødé ñame.mp3', 'empty.bin', 'exact.bin', 'inside-link']);
  t.equal(scan.get('empty.bin')!.size, 0);
  t.equal(scan.get('exact.bin')!.size, 2 * MIN_CHUNK_BYTES);
  t.match(skipped.join('\n'), /escape-link: symlink leads outside/);
});

t.test('diff reports added, changed and removed files', async (t) => {
  const dir = t.testdir({ 'keep.txt': 'same', 'change.txt': 'v1', 'gone.txt': 'bye' });
  const before = await scanShare(dir);
  writeFileSync(path.join(dir, 'change.txt'), 'version 2');
  utimesSync(path.join(dir, 'change.txt'), 2_000_000_000, 2_000_000_000);
  rmSync(path.join(dir, 'gone.txt'));
  mkdirSync(path.join(dir, 'new'));
  writeFileSync(path.join(dir, 'new', 'file.txt'), 'n');
  const after = await scanShare(dir);
  t.same(diffScans(before, after), { added: ['new/file.txt'], changed: ['change.txt'], removed: ['gone.txt'] });
  t.same(diffScans(after, after), { added: [], changed: [], removed: [] });
});

t.test('Scanner emits change events on rescan', async (t) => {
  const dir = t.testdir({ 'one.txt': '1' });
  const s = new Scanner(dir, { watch: false });
  const events: string[] = [];
  s.on('change', (d) => events.push(JSON.stringify(d)));
  await s.rescan();
  writeFileSync(path.join(dir, 'two.txt'), '2');
  await s.rescan();
  await s.rescan();
  s.stop();
  t.equal(events.length, 2);
  t.match(events[1], /"added":\["two.txt"\]/);
});

t.test('name checks and kinds', async (t) => {
  for (const bad of ['', '../x', 'a/../../x', '/etc/passwd', 'a//b', './a', 'a\\b', 'a\u0000b', 'C:/x', 'x'.repeat(5000)]) {
    t.ok(nameProblem(bad), `refused: ${JSON.stringify(bad).slice(0, 30)}`);
  }
  t.equal(nameProblem('dir/sub dir/ünï.txt'), null);
  t.equal(kindOf('Movie.MOV'), 'video');
  t.equal(kindOf('song.mp3'), 'music');
  t.equal(kindOf('pic.jpg'), 'picture');
  t.equal(kindOf('notes.txt'), 'document');
  t.equal(kindOf('dir.d/noext'), 'other');
});

t.test('names sync must never write: the state folder and swarm\'s own file names', async (t) => {
  for (const n of ['.swarm', '.swarm/sync.swarm-lock', '.swarm/sync-key', '.swarm/trash/x', 'a.iso.swarm-part', 'd/a.iso.swarm-ticket', 'x.swarm-lock', 'sub/.swarm-tmp-sync-1-2', 'f.swarm-tmp-77']) {
    t.ok(notSharedName(n), `${n}: refused (${notSharedName(n)})`);
  }
  for (const n of ['a.txt', 'sub/.swarm', 'sub/.swarm/x', '.swarmy/x', 'notes/swarm-part.txt', '.hidden']) t.equal(notSharedName(n), null, `${n}: an ordinary name`);
});

t.test('fallback walk: every interval unless every folder is watched; then at most 1% of a core, at most 10 min apart', async (t) => {
  t.equal(fallbackWalkMs(10_000, false, 300), 10_000, 'not every folder watched: the interval');
  t.equal(fallbackWalkMs(10_000, true, 50), 10_000, 'a cheap walk: still the interval');
  t.equal(fallbackWalkMs(10_000, true, 300), 30_000, 'a 0.3 s walk (10,000 files): every 30 s');
  t.equal(fallbackWalkMs(10_000, true, 60_000), 600_000, 'a huge share: at least every 10 min');
});
