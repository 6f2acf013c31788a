/**
 * kill -9 of a syncing peer mid-batch (issue 12, "Tests that must exist"). Two `swarm sync`
 * processes on loopback share a tracker (in this process); A holds many small files and one over
 * 1 MiB, B starts empty. B is killed with SIGKILL once some but not all files have landed in its
 * folder (polled), then:
 * - right after the kill, every file under its final name in B has exactly the source's bytes;
 * - B restarted with `--once` converges: every file, the source's bytes and mtimes;
 * - no temp file is left: DIR/.swarm/tmp empty, no *.swarm-part, *.swarm-ticket, *.swarm-lock or
 *   *.swarm-tmp-* anywhere in B.
 */
import t from 'tap';
import { mkdirSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { TrackerServer } from '../lib/tracker/server.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import { swarm } from './helpers/procs.js';

const SMALL = 400;
const BIG = (3 << 20) + 12_345;
const BASE_MTIME = 1_650_000_000;

/** Every file under DIR (relative names), the state folder left out. */
function filesIn(dir: string, sub = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(dir, sub), { withFileTypes: true })) {
    const rel = sub ? `${sub}/${e.name}` : e.name;
    if (!sub && e.name === '.swarm') continue;
    if (e.isDirectory()) out.push(...filesIn(dir, rel));
    else out.push(rel);
  }
  return out;
}

const TEMP = /\.swarm-(part|ticket|lock)$|\.swarm-tmp-/;

t.test('a syncing peer killed with SIGKILL mid-batch: no wrong bytes under a final name, converges after restart, no temp files', async (t) => {
  const tr = new TrackerServer({ port: 0 });
  await tr.listen();
  t.teardown(() => tr.close());
  const tracker = `127.0.0.1:${tr.port}`;

  const a = tempDir(t, 'swarm-kill-a-');
  const b = tempDir(t, 'swarm-kill-b-');
  const rand = prng(42);
  const source = new Map<string, { bytes: Buffer; mtime: number }>();
  mkdirSync(path.join(a, 'small'));
  for (let i = 0; i < SMALL; i++) {
    const name = `small/f${String(i).padStart(4, '0')}.dat`;
    source.set(name, { bytes: randomBytes(rand, 1_024 + Math.floor(rand() * 8_192)), mtime: BASE_MTIME + i });
  }
  source.set('big.bin', { bytes: randomBytes(rand, BIG), mtime: BASE_MTIME - 1 });
  for (const [name, f] of source) {
    writeFileSync(path.join(a, name), f.bytes);
    utimesSync(path.join(a, name), f.mtime, f.mtime);
  }

  const syncArgs = (dir: string, extra: string[] = []) => ['sync', dir, '--port', '0', '--tracker', tracker, '--threads', '0', '--open', '--json', ...extra];
  // A's upload is capped (~5 MiB at 2 MiB/s) so that B's sync takes seconds and the kill lands inside it
  const pa = swarm(t, syncArgs(a, ['--max-upload', '2']));
  await pa.waitFor((o) => o.event === 'syncing', 30_000);
  await pa.waitFor((o) => o.event === 'in-step', 30_000);

  // B syncs; it is killed as soon as some, not all, files are in its folder
  const pb = swarm(t, syncArgs(b));
  const deadline = Date.now() + 30_000;
  let landed: string[] = [];
  while (Date.now() < deadline) {
    landed = filesIn(b).filter((f) => !TEMP.test(f));
    if (landed.length > 0) break;
    if (pb.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  pb.kill('SIGKILL');
  const killed = await pb.exit;
  t.equal(killed.signal, 'SIGKILL', 'B was killed with SIGKILL');
  const atKill = filesIn(b);
  landed = atKill.filter((f) => !TEMP.test(f));
  t.comment(`at the kill: ${landed.length} files landed; temp files ${JSON.stringify(atKill.filter((f) => TEMP.test(f)))}; in .swarm/tmp: ${existsSync(path.join(b, '.swarm', 'tmp')) ? readdirSync(path.join(b, '.swarm', 'tmp')).length : 0}`);
  t.ok(landed.length > 0 && landed.length < source.size, `killed mid-batch: ${landed.length} of ${source.size} files had landed`);

  // right after the kill: whatever is under a final name is the source's bytes, nothing else
  const wrong: string[] = [];
  for (const name of landed) {
    const src = source.get(name);
    if (!src) wrong.push(`${name}: not a source file`);
    else if (!readFileSync(path.join(b, name)).equals(src.bytes)) wrong.push(`${name}: ${statSync(path.join(b, name)).size} bytes, not the source's ${src.bytes.length}`);
  }
  t.same(wrong, [], 'no wrong bytes under any final name after the kill');

  // restart: converges
  const again = swarm(t, syncArgs(b, ['--once']));
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([again.exit, new Promise<null>((r) => (timer = setTimeout(() => r(null), 40_000)))]);
  clearTimeout(timer);
  t.equal(exit?.code, 0, `the restarted sync --once ends in step (stderr: ${again.stderr().slice(0, 400)})`);
  if (exit === null) again.kill('SIGKILL');
  const after = filesIn(b);
  const missing = [...source.keys()].filter((n) => !after.includes(n));
  t.same(missing, [], 'every file is there');
  const bad: string[] = [];
  for (const [name, f] of source) {
    if (missing.includes(name)) continue;
    const st = statSync(path.join(b, name));
    if (!readFileSync(path.join(b, name)).equals(f.bytes)) bad.push(`${name}: bytes`);
    else if (Math.floor(st.mtimeMs / 1000) !== f.mtime) bad.push(`${name}: mtime ${Math.floor(st.mtimeMs / 1000)} not ${f.mtime}`);
  }
  t.same(bad, [], 'bytes and mtimes equal the source');
  t.same(after.filter((f) => !source.has(f)), [], 'no other file (no part file, ticket, lock or temp file) in the folder');
  const tmp = path.join(b, '.swarm', 'tmp');
  t.same(existsSync(tmp) ? readdirSync(tmp) : [], [], 'DIR/.swarm/tmp is empty');
  const stateTemps = existsSync(path.join(b, '.swarm')) ? readdirSync(path.join(b, '.swarm')).filter((f) => TEMP.test(f)) : [];
  t.same(stateTemps, [], 'no temp files of the state files');

  pa.kill('SIGTERM');
  await pa.exit;
});
