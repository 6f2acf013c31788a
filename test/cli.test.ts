import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TrackerServer } from '../lib/tracker/server.js';
import { tempDir } from './helpers/tmp.js';
import { servePeer, swarm, SWARM_BIN } from './helpers/procs.js';

async function json(t: Parameters<typeof swarm>[0], args: string[]): Promise<unknown> {
  const p = swarm(t, args);
  const { code } = await p.exit;
  if (code !== 0) throw new Error(`swarm ${args.join(' ')} exited ${code}`);
  return JSON.parse(p.lines.join('\n'));
}

t.test('ls (folder, peer, tracker) and who, as a script would use them', async (t) => {
  const tr = new TrackerServer({ port: 0 });
  await tr.listen();
  t.teardown(() => tr.close());
  const dir = tempDir(t);
  mkdirSync(path.join(dir, 'music'));
  writeFileSync(path.join(dir, 'music', 'song one.mp3'), 'la la la');
  writeFileSync(path.join(dir, 'notes.txt'), 'hello');
  const { port, proc } = await servePeer(t, dir, ['--tracker', `127.0.0.1:${tr.port}`]);

  const local = (await json(t, ['ls', dir, '--json'])) as { name: string; kind: string; size: number }[];
  t.same(local.map((f) => [f.name, f.kind, f.size]), [['music/song one.mp3', 'music', 8], ['notes.txt', 'document', 5]]);

  const remote = (await json(t, ['ls', '--peer', `127.0.0.1:${port}`, '--json'])) as { name: string; cid?: string }[];
  t.same(remote.map((f) => f.name), ['music/song one.mp3', 'notes.txt']);
  t.ok(remote.every((f) => typeof f.cid === 'string'), 'a peer lists content ids');

  // registered before it said "serving", or later with a "tracker" event
  await proc.waitFor((o) => (o.event === 'serving' && o.trackerConnected === true) || (o.event === 'tracker' && o.connected === true));
  const directory = (await json(t, ['ls', '--tracker', `127.0.0.1:${tr.port}`, '--json'])) as { name: string; holders: { port: number }[] }[];
  t.same(directory.map((f) => f.name), ['music/song one.mp3', 'notes.txt']);
  t.same(directory[0]!.holders.map((h) => h.port), [port]);

  const who = (await json(t, ['who', 'notes.txt', '--tracker', `127.0.0.1:${tr.port}`, '--json'])) as { name: string; versions: { size: number; holders: unknown[] }[] };
  t.equal(who.name, 'notes.txt');
  t.equal(who.versions.length, 1);
  t.equal(who.versions[0]!.size, 5);
  t.equal(who.versions[0]!.holders.length, 1);

  const nobody = swarm(t, ['who', 'nope.txt', '--tracker', `127.0.0.1:${tr.port}`]);
  t.equal((await nobody.exit).code, 3, 'who of an unknown name: not found');
  const both = swarm(t, ['ls', dir, '--peer', `127.0.0.1:${port}`]);
  t.equal((await both.exit).code, 2, 'ls with two sources at once is a usage error');
});

t.test('bad option values are usage errors with a clear message, never silently taken', async (t) => {
  const cases: [string[], RegExp][] = [
    [['serve', '.', '--port', '70000'], /port number, 0 to 65535/],
    [['serve', '.', '--max-upload', 'abc'], /number above 0/],
    [['serve', '.', '--max-upload', '-5'], /number above 0/],
    [['serve', '.', '--no-tracker', '--tracker', '127.0.0.1:1'], /contradict/],
    [['serve', '.', '--log', '/nonexistent-swarm-dir/x.log', '--port', '0', '--no-tracker'], /cannot write the log file/],
    [['tracker', '--keepalive', '0'], /from 100 to 600000/],
    [['get', 'x', '--max-memory', '0'], /from 1 to 65536/],
    [['get', 'x', '--seed', '--no-share'], /contradict/],
  ];
  for (const [args, msg] of cases) {
    const p = swarm(t, args);
    const { code } = await p.exit;
    t.equal(code, 2, `${args.join(' ')}: exit 2`);
    t.match(p.stderr(), msg, `${args.join(' ')}: says why`);
  }
});

t.test('output into a closed pipe ends quietly (no EPIPE stack trace)', async (t) => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [SWARM_BIN, 'get', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout.once('data', () => child.stdout.destroy()); // like `| head -1`
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.notMatch(err, /EPIPE|\n\s+at /, 'no stack trace');
  t.equal(code, 0, 'exit 0');
});

t.test('| head -1 after every command: exit 0 and no stack trace', async (t) => {
  const { execFile } = await import('node:child_process');
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const dir = mkdtempSync(path.join(tmpdir(), 'swarm-pipe-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // enough lines that the pipe closes while swarm still writes
  for (let i = 0; i < 3000; i++) writeFileSync(path.join(dir, `file-${String(i).padStart(4, '0')}.txt`), 'x');
  const runs = [...['get', 'serve', 'tracker', 'ls', 'who', 'search', 'peers', 'shell', 'sync'].map((c) => `${c} --help`), '--help', `ls ${dir}`, `ls ${dir} --json`];
  for (const args of runs) {
    const r = await new Promise<{ out: string }>((resolve) =>
      execFile('bash', ['-c', `"${process.execPath}" "${SWARM_BIN}" ${args} 2>"${dir}.err" | head -1 >/dev/null; echo "\${PIPESTATUS[0]}"; cat "${dir}.err"`], { timeout: 30_000 }, (_e, out) => resolve({ out })),
    );
    const [code, ...err] = r.out.split('\n');
    t.equal(code, '0', `swarm ${args.replace(dir, 'DIR')} | head -1: exit 0`);
    t.notMatch(err.join('\n'), /EPIPE|\n?\s+at /, `swarm ${args.replace(dir, 'DIR')} | head -1: quiet`);
  }
  rmSync(`${dir}.err`, { force: true });
});
