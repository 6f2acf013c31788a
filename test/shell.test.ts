/**
 * `swarm shell` (issue "The interface people expect"): the parser (every seed command, case,
 * commas or spaces, bad arguments), then the shell driven through its stdin as a child process:
 * LISTL, LISTR, SEARCH, DISCOVER, GET from a named peer and from everyone, RESET, register,
 * unregister, get_files_list, update, delete, download, list, peers, status, help; QUIT waiting
 * for a running download; FORCEQUIT cutting one short (the part file is kept, nothing at the final
 * name); and one run in a pseudo-terminal (`script`) checking the prompt and a completed line.
 * Seeds and the tracker run in this process; everything on 127.0.0.1.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parseLine, complete, COMMANDS } from '../lib/shell/commands.js';
import { serve, type ServeHandle } from '../lib/serve.js';
import { TrackerServer } from '../lib/tracker/server.js';
import { SWARM_BIN } from './helpers/procs.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';

type T = { teardown(fn: () => unknown): void };

t.test('parsing: the seed commands, any case, commas or spaces, checked arguments', async (t) => {
  const ok = (line: string, name: string, args: string[]) => {
    const p = parseLine(line);
    t.ok(p.ok && p.cmd, `${line} parses`);
    if (p.ok && p.cmd) {
      t.equal(p.cmd.name, name, `${line}: command`);
      t.same(p.args, args, `${line}: arguments`);
    }
  };
  ok('LISTL', 'LISTL', []);
  ok('listr 127.0.0.1,7070', 'LISTR', ['127.0.0.1', '7070']);
  ok('LISTR 127.0.0.1 7070', 'LISTR', ['127.0.0.1', '7070']);
  ok('SEARCH movie,3', 'SEARCH', ['movie', '3']);
  ok('search My Holiday.mp4,3', 'SEARCH', ['My Holiday.mp4', '3']);
  ok('DISCOVER 2', 'DISCOVER', ['2']);
  ok('GET big file.iso,127.0.0.1,7070', 'GET', ['big file.iso', '127.0.0.1', '7070']);
  ok('get big.iso', 'GET', ['big.iso']);
  ok('GET "big file.iso"', 'GET', ['big file.iso']);
  ok('LISTR 127.0.0.1:7070', 'LISTR', ['127.0.0.1', '7070']);
  ok("GET 'big file.iso' 127.0.0.1 7070", 'GET', ['big file.iso', '127.0.0.1', '7070']);
  ok('SEARCH "my holiday" 3', 'SEARCH', ['my holiday', '3']);
  ok('RESET', 'RESET', []);
  ok('quit', 'QUIT', []);
  ok('FORCEQUIT', 'FORCEQUIT', []);
  ok('register', 'register', []);
  ok('UNREGISTER', 'unregister', []);
  ok('get_files_list', 'get_files_list', []);
  ok('update', 'update', []);
  ok('delete old notes.txt', 'delete', ['old notes.txt']);
  ok('download "a, b.iso"', 'download', ['a, b.iso']);
  ok('list', 'list', []);
  ok('exit', 'exit', []);
  ok('help get', 'help', ['get']);
  t.same(parseLine('   '), { ok: true, cmd: null }, 'an empty line is nothing');
  t.same(parseLine('# a comment'), { ok: true, cmd: null }, 'a comment is nothing');
  const bad = (line: string, msg: RegExp) => {
    const p = parseLine(line);
    t.notOk(p.ok, `${line} refused`);
    if (!p.ok) t.match(p.message, msg, `${line}: ${p.message}`);
  };
  bad('FETCH x', /unknown command "FETCH"/);
  bad('LISTR 127.0.0.1', /usage: LISTR ip,port/);
  bad('LISTR 127.0.0.1,99999', /port must be 1 to 65535/);
  bad('GET x,127.0.0.1', /needs its port/);
  bad('DISCOVER many', /whole number/);
  bad('download', /usage: download name/);
  bad('LISTL extra', /usage: LISTL/);
  const [cmds] = complete('li', { names: [], peers: [] });
  t.same(cmds.sort(), ['LISTL', 'LISTR', 'list'].sort(), 'completes commands');
  const [names] = complete('download bi', { names: ['big.iso', 'other'], peers: [] });
  t.same(names, ['big.iso'], 'completes names');
  const [peers] = complete('LISTR 127', { names: [], peers: ['127.0.0.1:7070'] });
  t.same(peers, ['127.0.0.1,7070'], 'completes peers, in LISTR form');
  t.equal(COMMANDS.length, 19);
});

async function tracker(t: T): Promise<string> {
  const tr = new TrackerServer({ port: 0, host: '127.0.0.1' });
  await tr.listen();
  t.teardown(() => tr.close());
  return `127.0.0.1:${tr.port}`;
}

async function seed(t: T, files: Record<string, Buffer>, o: { tracker?: string; bytesPerSec?: number; neighbors?: string[] } = {}): Promise<ServeHandle> {
  const dir = tempDir(t);
  for (const [name, data] of Object.entries(files)) writeFileSync(path.join(dir, name), data);
  const h = await serve(dir, { port: 0, host: '127.0.0.1', threads: 0, watch: false, ...(o.tracker ? { tracker: o.tracker } : { noTracker: true }), ...(o.bytesPerSec ? { maxUploadBytesPerSec: o.bytesPerSec } : {}), ...(o.neighbors ? { neighbors: o.neighbors } : {}) });
  t.teardown(() => h.close({ graceful: false }));
  return h;
}

interface ShellRun {
  out: string[];
  write(line: string): void;
  end(): void;
  /** Resolves when a line matching `re` has been printed. */
  waitFor(re: RegExp, ms?: number): Promise<string>;
  exit: Promise<number | null>;
  /** The lines of those that came on stderr. */
  errLines: string[];
}

/** `swarm shell ARGS` with commands written to its stdin (`out`: stdout and stderr, in arrival order). */
function shell(t: T, args: string[]): ShellRun {
  const child = spawn(process.execPath, [SWARM_BIN, 'shell', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: string[] = [];
  const errLines: string[] = [];
  const waiters: { re: RegExp; resolve: (s: string) => void }[] = [];
  const onText = (stream: 'out' | 'err') => {
    let buf = '';
    return (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        out.push(line);
        if (stream === 'err') errLines.push(line);
        for (const w of [...waiters]) if (w.re.test(line)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(line));
      }
    };
  };
  child.stdout.on('data', onText('out'));
  child.stderr.on('data', onText('err'));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return exit;
  });
  return {
    out,
    errLines,
    write: (line) => child.stdin.write(line + '\n'),
    end: () => child.stdin.end(),
    waitFor(re, ms = 20_000) {
      const hit = out.find((l) => re.test(l));
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${ms} ms; got:\n${out.join('\n')}`)), ms);
        waiters.push({ re, resolve: (s) => (clearTimeout(timer), resolve(s)) });
      });
    },
    exit,
  };
}

t.test('every seed command through stdin, against a tracker and a seed', async (t) => {
  const tr = await tracker(t);
  const big = randomBytes(prng(11), 3 * 1024 * 1024 + 9);
  const s = await seed(t, { 'big.iso': big, 'readme.txt': Buffer.from('hello\n') }, { tracker: tr });
  const mine = tempDir(t);
  writeFileSync(path.join(mine, 'mine.txt'), 'mine\n');
  writeFileSync(path.join(mine, 'old notes.txt'), 'old\n');
  const sh = shell(t, [mine, '--port', '0', '--tracker', tr, '--neighbor', `127.0.0.1:${s.port}`]);
  await sh.waitFor(/^swarm shell: sharing 2 files/);
  sh.write('LISTL');
  await sh.waitFor(/^document\tmine\.txt\tsize: 5$/);
  sh.write(`LISTR 127.0.0.1,${s.port}`);
  await sh.waitFor(/^archive\tbig\.iso\tsize: 3145737$/);
  sh.write('get_files_list');
  await sh.waitFor(/^readme\.txt\t6 B\t.*127\.0\.0\.1:/);
  sh.write('search ISO,2');
  await sh.waitFor(new RegExp(`^archive\\tbig\\.iso\\tsize: 3145737\\t.*127\\.0\\.0\\.1:${s.port}`));
  sh.write('DISCOVER 1');
  await sh.waitFor(/^1 peer answered within 1 hop; 1 known$/);
  sh.write('peers');
  await sh.waitFor(new RegExp(`^127\\.0\\.0\\.1:${s.port}  [0-9a-f]{16}  neighbor`));
  sh.write(`GET big.iso,127.0.0.1,${s.port}`);
  await sh.waitFor(/^big\.iso: saved .*big\.iso, 3\.00 MiB/);
  t.ok(readFileSync(path.join(mine, 'big.iso')).equals(big), 'GET from a named peer: byte-identical, in the shared folder');
  sh.write('download readme.txt');
  await sh.waitFor(/^readme\.txt: saved /);
  t.equal(readFileSync(path.join(mine, 'readme.txt'), 'utf8'), 'hello\n', 'download from every holder');
  sh.write('list');
  await sh.waitFor(/^big\.iso\t3\.00 MiB\t4\/4 chunks$/);
  sh.write('delete old notes.txt');
  await sh.waitFor(/^deleted old notes\.txt from the share \(kept in .*trash/);
  t.notOk(existsSync(path.join(mine, 'old notes.txt')), 'gone from the share');
  t.ok(readdirSync(path.join(mine, '.swarm', 'trash')).some((f) => f.endsWith('old notes.txt')), 'kept in the trash');
  writeFileSync(path.join(mine, 'new.txt'), 'new\n');
  sh.write('update');
  await sh.waitFor(/^rescanned: 1 added, 0 changed, 0 removed; the tracker is told$/);
  sh.write('unregister');
  await sh.waitFor(new RegExp(`^left tracker ${tr.replace(/\./g, '\\.')}$`));
  sh.write('register');
  await sh.waitFor(/^registered with tracker .*: [45] files$/);
  sh.write('RESET');
  await sh.waitFor(/^forgot 1 peer$/);
  sh.write('status');
  await sh.waitFor(/^no downloads running$/);
  sh.write('LISTR 127.0.0.1');
  await sh.waitFor(/^error: usage: LISTR ip,port$/);
  sh.write('frobnicate');
  await sh.waitFor(/^error: unknown command "frobnicate"/);
  t.ok(sh.errLines.some((l) => /^error: unknown command "frobnicate"/.test(l)) && sh.errLines.some((l) => /^error: usage: LISTR/.test(l)), 'a scripted shell says its errors on stderr');
  t.notOk(sh.errLines.some((l) => /^document\t|^rescanned:/.test(l)), 'and its answers on stdout');
  sh.write('help search');
  await sh.waitFor(/^SEARCH pattern\[,ttl\]: find files/);
  sh.write('QUIT');
  await sh.waitFor(/^bye$/);
  t.equal(await sh.exit, 0, 'QUIT: exit 0');
});

t.test('QUIT waits for a running download; FORCEQUIT does not', async (t) => {
  const data = randomBytes(prng(12), 4 * 1024 * 1024);
  // 2 MiB/s: a 4 MiB download takes about two seconds
  const s = await seed(t, { 'slow.bin': data }, { bytesPerSec: 2 * 1024 * 1024 });
  const out1 = tempDir(t);
  const a = shell(t, ['--no-tracker', '--port', '0', '-o', out1]);
  await a.waitFor(/^swarm shell: sharing what it downloads/);
  a.write(`GET slow.bin,127.0.0.1,${s.port}`);
  await a.waitFor(/^slow\.bin: 4\.00 MiB from 1 peer/);
  a.write('QUIT');
  await a.waitFor(/^waiting for 1 download and \d+ uploads? to finish/);
  await a.waitFor(/^slow\.bin: saved /);
  await a.waitFor(/^bye$/);
  t.equal(await a.exit, 0);
  t.ok(readFileSync(path.join(out1, 'slow.bin')).equals(data), 'QUIT waited: the file is whole');
  const order = a.out.findIndex((l) => /^slow\.bin: saved/.test(l)) < a.out.findIndex((l) => l === 'bye');
  t.ok(order, 'saved before bye');

  const out2 = tempDir(t);
  const b = shell(t, ['--no-tracker', '--port', '0', '-o', out2]);
  await b.waitFor(/^swarm shell:/);
  b.write(`GET slow.bin,127.0.0.1,${s.port}`);
  await b.waitFor(/^slow\.bin: 4\.00 MiB from 1 peer/);
  b.write('FORCEQUIT');
  await b.waitFor(/^bye \(1 download cut short/);
  t.equal(await b.exit, 0);
  t.notOk(existsSync(path.join(out2, 'slow.bin')), 'FORCEQUIT: nothing under the final name');
  t.ok(existsSync(path.join(out2, 'slow.bin.swarm-part')), 'the part file is kept to resume');

  // FORCEQUIT typed while QUIT waits (as QUIT's line says): leaves at once, one goodbye (newcomer 60)
  const out3 = tempDir(t);
  const d = shell(t, ['--no-tracker', '--port', '0', '-o', out3]);
  await d.waitFor(/^swarm shell:/);
  d.write(`GET slow.bin,127.0.0.1,${s.port}`);
  await d.waitFor(/^slow\.bin: 4\.00 MiB from 1 peer/);
  d.write('QUIT');
  await d.waitFor(/^waiting for 1 download/);
  d.write('FORCEQUIT');
  await d.waitFor(/^bye \(1 download cut short; asking again resumes it\)$/);
  t.equal(await d.exit, 0);
  t.notOk(existsSync(path.join(out3, 'slow.bin')), 'FORCEQUIT after QUIT: the download was cut (before: QUIT waited for it to end)');
  t.equal(d.out.filter((l) => /^bye/.test(l)).length, 1, 'one goodbye');

  const c = shell(t, ['--no-tracker', '--port', '0', '-o', tempDir(t)]);
  await c.waitFor(/^swarm shell:/);
  c.write('LISTL');
  c.end();
  await c.waitFor(/^bye$/);
  t.equal(await c.exit, 0, 'end of input is QUIT');
});

t.test('in a pseudo-terminal: a prompt, a completed command, QUIT', { skip: process.platform !== 'linux' ? 'uses util-linux script(1)' : false }, async (t) => {
  const s = await seed(t, { 'pty-file.txt': Buffer.from('pty\n') });
  const cmd = `${process.execPath} ${SWARM_BIN} shell --no-tracker --port 0 -o ${tempDir(t)}`;
  // script(1) gives the shell a terminal; its input is ours. Tab completes "LIS" + "TR" is typed by hand.
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TERM: 'xterm', COLUMNS: '80' } });
  let screen = '';
  child.stdout.on('data', (d: Buffer) => (screen += d.toString()));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
    return exit;
  });
  const until = async (re: RegExp, ms = 15_000) => {
    const end = Date.now() + ms;
    while (!re.test(screen) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    return re.test(screen);
  };
  t.ok(await until(/swarm> /), 'a prompt');
  child.stdin.write(`LISTR 127.0.0.1,${s.port}\r`);
  t.ok(await until(/document\tpty-file\.txt\tsize: 4/), 'a command runs from the terminal');
  // readline completes asynchronously: Enter goes only once the completed word is on the screen
  const before = screen.length;
  child.stdin.write('hel\t');
  const end = Date.now() + 10_000;
  while (!screen.slice(before).includes('help') && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  t.ok(screen.slice(before).includes('help'), 'tab completed "hel" to help on the screen');
  child.stdin.write('\r');
  t.ok(await until(/help \[command\]/), 'and it ran');
  child.stdin.write('QUIT\r');
  t.ok(await until(/bye/), 'QUIT');
  t.equal(await exit, 0);
});

t.test('a shell without a folder downloads through the tracker it was given; ./name is the name', async (t) => {
  const tr = new TrackerServer({ port: 0, host: '127.0.0.1' });
  await tr.listen();
  t.teardown(() => tr.close());
  const address = `127.0.0.1:${tr.port}`;
  await seed(t, { 'notes.txt': Buffer.from('hello\n') }, { tracker: address });
  const deadline = Date.now() + 10_000;
  while (!tr.registry.whoHas('notes.txt') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const out = tempDir(t);
  // before the fix the download asked the default tracker (127.0.0.1:7077), not --tracker
  const sh = shell(t, ['--port', '0', '--tracker', address, '-o', out, '--threads', '0']);
  sh.write('download ./notes.txt');
  await sh.waitFor(/notes\.txt: saved/);
  // what it downloaded is what it shares: LISTL says so (before: "There are no files in the directory")
  sh.write('LISTL');
  await sh.waitFor(/^document\tnotes\.txt\tsize: 6$/);
  sh.end();
  t.equal(await sh.exit, 0, 'exit 0 after end of input (QUIT)');
  t.equal(readFileSync(path.join(out, 'notes.txt'), 'utf8'), 'hello\n', 'fetched through the tracker given');
  t.ok(sh.out.some((l) => /^downloading notes\.txt in the background/.test(l)), `./notes.txt is notes.txt:\n${sh.out.join('\n')}`);
  t.notOk(sh.out.some((l) => /7077|failed/.test(l)), 'the default tracker was never asked');
});

t.test('SEARCH through a tracker lists every version of a name, not only the newest (newcomer 60)', async (t) => {
  const tr = await tracker(t);
  const older = await seed(t, { 'notes.txt': Buffer.from('first draft\n') }, { tracker: tr });
  const newer = await seed(t, { 'notes.txt': Buffer.from('the second, longer draft\n') }, { tracker: tr });
  void older;
  void newer;
  const sh = shell(t, ['--port', '0', '--tracker', tr, '-o', tempDir(t)]);
  await sh.waitFor(/^swarm shell:/);
  // both registrations in (each seed registers as it starts)
  for (let i = 0; i < 40; i++) {
    sh.write('SEARCH notes');
    const line = await sh.waitFor(/^\d+ results?$|^nothing matches/);
    if (/^2 results$/.test(line)) break;
    sh.out.length = 0;
    await new Promise((r) => setTimeout(r, 250));
  }
  const hits = sh.out.filter((l) => /^document\tnotes\.txt\t/.test(l));
  t.equal(hits.length, 2, `two versions (before: one, the newest):\n${sh.out.join('\n')}`);
  t.ok(hits.some((l) => /size: 12\t/.test(l)) && hits.some((l) => /size: 25\t/.test(l)), 'each with its own size');
  sh.end();
  t.equal(await sh.exit, 0);
});

t.test('from a pipe, a download that failed is the exit code (newcomer 60: always 0)', async (t) => {
  const tr = await tracker(t);
  const sh = shell(t, ['--port', '0', '--tracker', tr, '-o', tempDir(t)]);
  await sh.waitFor(/^swarm shell:/);
  sh.write('download no-such-file.bin');
  await sh.waitFor(/^no-such-file\.bin: failed: .*\[SWARM_ERR_NOT_FOUND\]$/);
  sh.write('LISTL');
  sh.end();
  t.equal(await sh.exit, 3, 'exit 3: not found, as swarm get would');
  t.ok(sh.out.some((l) => /a download failed/.test(l)), 'and says why at the end');
});

t.test('a different file at the name: the advice is one the shell can follow, and the exit is 8', async (t) => {
  const tr = await tracker(t);
  await seed(t, { 'notes.txt': Buffer.from('theirs\n') }, { tracker: tr });
  const out = tempDir(t);
  writeFileSync(path.join(out, 'notes.txt'), 'mine, not theirs\n');
  const sh = shell(t, ['--port', '0', '--tracker', tr, '-o', out]);
  await sh.waitFor(/^swarm shell:/);
  let line = '';
  for (let i = 0; i < 40 && !/EXISTS/.test(line); i++) {
    sh.write('download notes.txt');
    line = await sh.waitFor(/^notes\.txt: failed: /);
    if (!/EXISTS/.test(line)) (sh.out.length = 0), await new Promise((r) => setTimeout(r, 250)); // the seed registers
  }
  t.match(line, /in the shell: move that file away and ask again, or start the shell with -o DIR\) \[SWARM_ERR_EXISTS\]$/);
  sh.end();
  t.equal(await sh.exit, 8, 'exit 8 (conflict), as swarm get would');
  t.equal(readFileSync(path.join(out, 'notes.txt'), 'utf8'), 'mine, not theirs\n', 'the file here was left alone');
});
