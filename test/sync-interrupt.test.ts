/**
 * Ctrl-C during a sync's first pass (the long one: a first sync of a folder), through the CLI
 * (newcomer review 42: the handler was set only after the first pass, so SIGINT killed the process
 * and left its lock, part files and temp files; `--once` never had one). Now it stops cleanly:
 * `stopping`, `stopped`, the locks released, no temp file left, nothing half-written under any
 * name (a big file's part file and ticket stay, to resume); `--once`
 * exits 130, a long-running sync 0. The source is slowed with --max-upload so the first pass is
 * still running when the signal comes.
 */
import t from 'tap';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { swarm } from './helpers/procs.js';
import { tempDir } from './helpers/tmp.js';
import { prng, randomBytes } from './helpers/prng.js';

/** Every file name under `dir` (recursively), the state folder's included. */
function allNames(dir: string, sub = ''): string[] {
  const out: string[] = [];
  for (const d of readdirSync(path.join(dir, sub), { withFileTypes: true })) {
    const rel = sub ? `${sub}/${d.name}` : d.name;
    if (d.isDirectory()) out.push(...allNames(dir, rel));
    else out.push(rel);
  }
  return out;
}

for (const once of [true, false]) {
  t.test(`SIGINT in the first pass of ${once ? 'sync --once' : 'a long-running sync'}: a clean stop`, async (t) => {
    const src = tempDir(t);
    writeFileSync(path.join(src, 'big.bin'), randomBytes(prng(7), 24 << 20));
    for (let i = 0; i < 50; i++) writeFileSync(path.join(src, `small-${i}.txt`), `file ${i}\n`);
    const source = swarm(t, ['sync', src, '--open', '--port', '0', '--no-tracker', '--threads', '0', '--max-upload', '2', '--json']);
    const started = await source.waitFor((o) => o.event === 'syncing', 30_000);
    const dst = tempDir(t);
    const d = swarm(t, ['sync', dst, '--open', '--no-tracker', '--neighbor', `127.0.0.1:${started.port}`, '--threads', '0', '--json', ...(once ? ['--once'] : ['--port', '0'])]);
    const mine = await d.waitFor((o) => o.event === 'syncing', 30_000);
    if (once) t.not(mine.port, 7070, `--once without --port listens on a free port (${mine.port}), not the default 7070`);
    // the big file is on its way (2 MiB/s: ~12 s), the small ones have landed or are landing
    await new Promise((r) => setTimeout(r, 1_500));
    t.notOk(existsSync(path.join(dst, 'big.bin')), 'the first pass is still running');
    const t0 = Date.now();
    d.kill('SIGINT');
    const { code } = await d.exit;
    t.equal(code, once ? 130 : 0, `exit ${code} (${Date.now() - t0} ms after the signal)`);
    const events = d.lines.map((l) => JSON.parse(l) as { event: string });
    t.ok(events.some((e) => e.event === 'fetching' && (e as { name?: string }).name === 'big.bin'), 'it said the big file was coming');
    const p = events.filter((e) => e.event === 'progress') as unknown as { filesToGo: number; bytesToGo: number; filesDone: number }[];
    t.ok(p.some((e) => e.filesToGo >= 1 && e.bytesToGo >= 24 << 20), `progress: files and bytes to go (${JSON.stringify(p[0])})`);
    t.ok(events.some((e) => e.event === 'stopping'), 'it said it was stopping');
    t.ok(events.some((e) => e.event === 'stopped'), 'and that it stopped');
    const left = allNames(dst);
    t.notOk(left.includes('.swarm/sync.swarm-lock'), 'the folder lock released');
    t.same(left.filter((n) => /swarm-(tmp|lock)/.test(n)), [], 'no temp file nor lock left');
    // the big file's part file and ticket stay: the next run resumes it (as `get` does)
    t.ok(left.filter((n) => /swarm-(part|ticket)/.test(n)).every((n) => n.startsWith('big.bin.')), 'only the big file\'s resume state');
    t.notOk(existsSync(path.join(dst, 'big.bin')), 'nothing under the big file\'s name');
    source.kill('SIGINT');
    await source.exit;
  });
}
