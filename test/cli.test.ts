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
    [['serve', '.', '--max-upload', 'abc'], /--max-upload.*MiB per second from 0\.01/],
    [['serve', '.', '--max-upload', '-5'], /--max-upload.*MiB per second from 0\.01/],
    [['serve', '.', '--no-tracker', '--tracker', '127.0.0.1:1'], /contradict/],
    [['serve', '.', '--log', '/nonexistent-swarm-dir/x.log', '--port', '0', '--no-tracker'], /cannot write the log file/],
    [['tracker', '--keepalive', '0'], /from 100 to 600000/],
    [['get', 'x', '--max-memory', '0'], /from 1 to 65536/],
    [['get', 'x', '--seed', '--no-share'], /contradict/],
  ];
  await Promise.all(
    cases.map(async ([args, msg]) => {
      const p = swarm(t, args);
      const { code } = await p.exit;
      t.equal(code, 2, `${args.join(' ')}: exit 2`);
      t.match(p.stderr(), msg, `${args.join(' ')}: says why`);
    }),
  );
});

t.test('what serve says in words: "1 file", not "1 files"', async (t) => {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'only.txt'), 'x');
  const p = swarm(t, ['serve', dir, '--port', '0', '--no-tracker', '--threads', '0']);
  const deadline = Date.now() + 20_000;
  while (!/sharing/.test(p.stderr()) && Date.now() < deadline && p.child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  t.match(p.stderr(), /sharing 1 file \(1 B\) from .*; hashed 1 file in/, 'singular');
  p.kill('SIGINT');
  t.equal((await p.exit).code, 0);
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

/**
 * `swarm … | head -1`: head reads one line and closes the pipe; swarm must end quietly (exit 0, no
 * EPIPE stack trace) at its next write. The share has 2000 files so the listings overflow the
 * pipe's buffer and are cut mid-way.
 */
t.test('| head -1 after every command: exit 0 and no stack trace', async (t) => {
  const { execFile } = await import('node:child_process');
  const { serve } = await import('../lib/serve.js');
  const dir = tempDir(t, 'swarm-pipe-');
  const scratch = tempDir(t, 'swarm-pipe-out-');
  for (let i = 0; i < 2000; i++) writeFileSync(path.join(dir, `file-${String(i).padStart(4, '0')}.txt`), 'x');
  const tr = new TrackerServer({ port: 0 });
  await tr.listen();
  t.teardown(() => tr.close());
  const tracker = `127.0.0.1:${tr.port}`;
  const h = await serve(dir, { port: 0, host: '127.0.0.1', threads: 0, watch: false, tracker });
  t.teardown(() => h.close({ graceful: false }));
  const peer = `127.0.0.1:${h.port}`;
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  // help is one code path for every command (get --help: the test above)
  const runs: string[] = [
    '--help',
    `ls ${q(dir)}`,
    `ls ${q(dir)} --json`,
    `ls --peer ${peer}`,
    `ls --tracker ${tracker}`,
    `who file-0001.txt --tracker ${tracker}`,
    `search file --tracker ${tracker} --wait 0.3`,
    `peers --tracker ${tracker} --wait 0.3`,
    `get file-0002.txt --peer ${peer} -o ${q(scratch)} --json --no-share`,
  ];
  const pipe = (cmd: string) =>
    new Promise<string>((resolve) =>
      execFile('bash', ['-c', `${cmd} 2>${q(scratch)}/err.$$ | head -1 >/dev/null; echo "\${PIPESTATUS[0]}"; cat ${q(scratch)}/err.$$`], { timeout: 30_000 }, (_e, out) => resolve(out)),
    );
  const swarmCmd = `${q(process.execPath)} ${q(SWARM_BIN)}`;
  const check = (what: string, out: string) => {
    const [code, ...err] = out.split('\n');
    t.equal(code, '0', `swarm ${what} | head -1: exit 0`);
    t.notMatch(err.join('\n'), /EPIPE|\n?\s+at /, `swarm ${what} | head -1: quiet`);
  };
  const label = (args: string) => args.replaceAll(q(dir), 'DIR').replaceAll(q(scratch), 'OUT');
  // a few at a time: each is a process of its own
  for (let i = 0; i < runs.length; i += 4) await Promise.all(runs.slice(i, i + 4).map(async (args) => check(label(args), await pipe(`${swarmCmd} ${args}`))));
  // the shell listing the 2000 files of a peer (LISTR; sharing no folder, so nothing to hash)
  check('shell (LISTR)', await pipe(`printf 'LISTR 127.0.0.1,${h.port}\\nQUIT\\n' | ${swarmCmd} shell --port 0 --tracker ${tracker} --threads 0`));

  // the long-running ones print a line and keep running: head closes the pipe after it, and
  // their next line (or, at Ctrl-C, "stopping") finds it closed
  const { spawn } = await import('node:child_process');
  const syncDir = tempDir(t, 'swarm-pipe-sync-');
  const small = tempDir(t, 'swarm-pipe-small-');
  writeFileSync(path.join(small, 'one.txt'), '1');
  const long: string[][] = [
    ['tracker', '--port', '0', '--json'],
    ['serve', small, '--port', '0', '--no-tracker', '--threads', '0', '--json'],
    ['sync', syncDir, '--open', '--port', '0', '--no-tracker', '--threads', '0', '--json'],
  ];
  await Promise.all(
    long.map(async (args) => {
      const child = spawn(process.execPath, [SWARM_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      const exit = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
      t.teardown(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        return exit;
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      await new Promise<void>((resolve) => {
        let buf = '';
        const onData = (d: Buffer) => {
          buf += d.toString();
          if (!buf.includes('\n')) return;
          child.stdout.off('data', onData);
          child.stdout.destroy(); // head -1 is done
          resolve();
        };
        child.stdout.on('data', onData);
        void exit.then(() => resolve());
      });
      // a command with more to say ends at its next line; one that waits (tracker) ends at Ctrl-C,
      // whose handler is in place once it printed its line
      const early = await Promise.race([exit.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 1500))]);
      if (!early) child.kill('SIGINT');
      const code = await exit;
      t.equal(code, 0, `swarm ${args[0]} --json | head -1${early ? '' : ', then Ctrl-C'}: exit 0 ${err.slice(0, 200)}`);
      t.notMatch(err, /EPIPE|\n\s+at /, `swarm ${args[0]}: quiet`);
    }),
  );
});
