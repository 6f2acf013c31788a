import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MIN_CHUNK_BYTES } from '../lib/constants.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import { servePeer, swarm } from './helpers/procs.js';

/** A small tmpfs of our own; null (and the reason) where mounting is not allowed. */
function smallDisk(t: { teardown(fn: () => unknown): void }, mib: number): string | null {
  const dir = mkdtempSync(path.join(tmpdir(), 'swarm-disk-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
  t.teardown(() => {
    spawnSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

const canMount = (() => {
  const probe = mkdtempSync(path.join(tmpdir(), 'swarm-probe-'));
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe]).status === 0;
  if (ok) spawnSync('umount', [probe]);
  rmSync(probe, { recursive: true, force: true });
  return ok;
})();
// Mounting a tmpfs needs root (CI runs as root); elsewhere these two tests cannot build their disk.
const skip = canMount ? false : 'cannot mount a tmpfs here (needs root)';

t.test('a file larger than the free space: refused before anything is fetched, exit 6', { skip }, async (t) => {
  const disk = smallDisk(t, 8)!;
  const src = tempDir(t);
  writeFileSync(path.join(src, 'big.bin'), randomBytes(prng(71), 16 * MIN_CHUNK_BYTES));
  const { port } = await servePeer(t, src, ['--no-tracker']);
  const run = swarm(t, ['get', 'big.bin', '--peer', `127.0.0.1:${port}`, '-o', disk, '--json']);
  t.equal((await run.exit).code, 6);
  t.match(run.lines.join('\n'), /SWARM_ERR_DISK_FULL/);
  t.notOk(existsSync(path.join(disk, 'big.bin')));
});

t.test('the disk fills during the download: stops with DISK_FULL, keeps its ticket, resumes once there is room', { skip }, async (t) => {
  const disk = smallDisk(t, 12)!;
  const src = tempDir(t);
  const data = randomBytes(prng(72), 8 * MIN_CHUNK_BYTES);
  writeFileSync(path.join(src, 'f.bin'), data);
  const { port } = await servePeer(t, src, ['--no-tracker', '--max-upload', '1']); // about 8 s, so the disk can fill meanwhile
  const args = ['get', 'f.bin', '--peer', `127.0.0.1:${port}`, '-o', disk, '--json'];
  const first = swarm(t, args);
  await first.waitFor((o) => o.event === 'progress' && (o.bytes as number) > 0);
  const filler = path.join(disk, 'filler');
  const fill = spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M', 'count=64'], { encoding: 'utf8' }); // fills what is left
  t.not(fill.status, 0, 'the filler ran the disk out of space');
  t.equal((await first.exit).code, 6, 'exit code for I/O errors');
  t.match(first.lines.join('\n'), /SWARM_ERR_DISK_FULL/);
  t.notOk(existsSync(path.join(disk, 'f.bin')), 'nothing under the final name');
  t.ok(existsSync(path.join(disk, 'f.bin.swarm-ticket')), 'the ticket is kept');
  unlinkSync(filler);
  const second = swarm(t, args);
  const done = await second.waitFor((o) => o.event === 'done', 60_000);
  t.equal((await second.exit).code, 0);
  t.ok((done.resumedChunks as number) > 0, `${done.resumedChunks} chunks kept across the failure`);
  t.ok(readFileSync(path.join(disk, 'f.bin')).equals(data), 'byte-identical');
});
