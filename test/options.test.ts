/**
 * Every option of every command refuses bad values with exit 2 and a message naming the option.
 * The options are read from the commander program itself (bin/program.ts), so an option added
 * later is swept too: the placeholder in its flags (`<port>`, `<host:port>`, `<n>` ...) says what
 * kind of value it takes, and each kind has its bad values below (an option whose placeholder is
 * not in the table fails the test until it is added). Parsing runs in this process with every
 * action replaced by a no-op, so hundreds of cases take a second; a few real processes check that
 * the same refusals reach the exit code, stderr and the `--json` error line.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Command, Option } from 'commander';
import { buildProgram, dashNamesAsArguments, exitCodeOf, jsonRequested } from '../bin/program.js';
import { swarm } from './helpers/procs.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'swarm-options-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
const aFile = path.join(scratch, 'a-file');
writeFileSync(aFile, 'x');

const INTEGER = ['abc', '-5', '1.5', '', '1e3', '99999999999999999999'];
const REAL = ['abc', '-5', '', '1e999', 'NaN'];
const ADDRESS = ['', 'abc:', ':7070', '127.0.0.1:70000', '127.0.0.1:abc', '127.0.0.1:-5', '127.0.0.1:1.5', 'a b:7070', '999.1.1.1:7070'];
const HOST = ['', 'a b', '999.1.1.1', 'x/y'];

/** Bad values by the placeholder in an option's flags; `good` is one it must accept. */
const KINDS: Record<string, { bad: string[]; good: string }> = {
  port: { bad: [...INTEGER, '70000'], good: '7070' },
  n: { bad: INTEGER, good: '1' },
  hops: { bad: [...INTEGER, '0', '8'], good: '1' },
  ms: { bad: [...INTEGER, '0'], good: '1000' },
  MiB: { bad: [...INTEGER, '0'], good: '64' },
  'MiB/s': { bad: [...REAL, '0', '0x10'], good: '1.5' },
  seconds: { bad: [...REAL, '0', '0x10'], good: '1' },
  /** a whole number of seconds where 0 means "never" (get --give-up) */
  limit: { bad: INTEGER, good: '0' },
  days: { bad: REAL, good: '1' },
  'host:port': { bad: ADDRESS, good: '127.0.0.1:7070' },
  host: { bad: HOST, good: '127.0.0.1' },
  addr: { bad: HOST, good: '127.0.0.1' },
  cid: { bad: ['', 'zz', '1234567', 'g'.repeat(64), 'a'.repeat(65)], good: 'a'.repeat(64) },
  dir: { bad: ['', aFile], good: scratch },
  file: { bad: ['', '/nonexistent-swarm-dir/x.log', scratch], good: path.join(scratch, 'x.log') },
  keyfile: { bad: ['', path.join(scratch, 'no-such-key'), scratch], good: aFile },
};

/** A program whose actions do nothing and whose output is kept, to parse one command line. */
function quietProgram(): { program: Command; err: () => string } {
  const program = buildProgram();
  let err = '';
  const out = { writeOut: () => {}, writeErr: (s: string) => void (err += s), outputError: (s: string, write: (s: string) => void) => write(s) };
  program.configureOutput(out);
  for (const c of program.commands as Command[]) c.configureOutput(out).action(async () => {});
  return { program, err: () => err };
}

/** Parse `args` in-process: the exit code swarm would give and the message it would print. */
async function parse(args: string[]): Promise<{ code: number; message: string }> {
  const { program, err } = quietProgram();
  try {
    await program.parseAsync(dashNamesAsArguments(program, ['node', 'swarm', ...args]));
    return { code: 0, message: '' };
  } catch (e) {
    return { code: exitCodeOf(e), message: `${(e as Error).message}\n${err()}` };
  }
}

/** The arguments a command needs besides its options. */
const positional = (c: Command) => ((c as unknown as { registeredArguments: { required: boolean }[] }).registeredArguments.some((a) => a.required) ? ['x'] : []);

t.test('every option that takes a value is checked, and refuses bad values with exit 2 naming the option', async (t) => {
  const { program } = quietProgram();
  let cases = 0;
  const commands = program.commands as Command[];
  t.ok(commands.length >= 9, `the commands are there (${commands.map((c) => c.name()).join(', ')})`);
  for (const cmd of commands) {
    for (const opt of cmd.options as Option[]) {
      if (!opt.required && !opt.optional) continue; // a flag
      const what = `${cmd.name()} ${opt.flags}`;
      const placeholder = /[<[]([^>\]]+)[>\]]/.exec(opt.flags)?.[1] ?? '';
      const kind = KINDS[placeholder];
      if (!kind) {
        t.fail(`${what}: the value kind "${placeholder}" has no bad values in this test; add it to KINDS`);
        continue;
      }
      t.ok(opt.parseArg, `${what}: its value is checked (a parser is given)`);
      const args = [cmd.name(), ...positional(cmd)];
      // --lan-port and --lan-broadcast need --lan
      const good = await parse([...args, opt.long!, kind.good, ...(opt.long!.startsWith('--lan-') ? ['--lan'] : [])]);
      t.equal(good.code, 0, `${what} ${JSON.stringify(kind.good)}: accepted ${good.message}`);
      for (const bad of kind.bad) {
        const r = await parse([...args, `${opt.long}=${bad}`]);
        cases++;
        if (r.code !== 2 || !r.message.includes(opt.long!)) t.fail(`${what} ${JSON.stringify(bad)}: exit ${r.code}, "${r.message.trim()}" (expected exit 2 naming ${opt.long})`);
      }
    }
  }
  t.ok(cases > 200, `${cases} bad values tried`);
});

t.test('options that contradict each other are refused before anything runs', async (t) => {
  const { program } = quietProgram();
  for (const cmd of program.commands as Command[]) {
    const longs = (cmd.options as Option[]).map((o) => o.long);
    const args = [cmd.name(), ...positional(cmd)];
    if (longs.includes('--tracker') && longs.includes('--no-tracker')) {
      for (const order of [['--no-tracker', '--tracker', '127.0.0.1:1'], ['--tracker', '127.0.0.1:1', '--no-tracker'], ['-t', '127.0.0.1:1', '--no-tracker']]) {
        const r = await parse([...args, ...order]);
        t.equal(r.code, 2, `${cmd.name()} ${order.join(' ')}: exit 2`);
        t.match(r.message, /--tracker and --no-tracker contradict/, `${cmd.name()}: says why`);
      }
    }
    if (longs.includes('--lan-port')) {
      const r = await parse([...args, '--lan-port', '7071']);
      t.equal(r.code, 2, `${cmd.name()} --lan-port without --lan: exit 2`);
      t.match(r.message, /--lan-port and --lan-broadcast need --lan/);
    }
  }
  const seed = await parse(['get', 'x', '--seed', '--no-share']);
  t.equal(seed.code, 2, 'get --seed --no-share: exit 2');
  t.match(seed.message, /--seed and --no-share contradict/);
  const env = process.env.SWARM_TRACKER;
  process.env.SWARM_TRACKER = 'nowhere:99999';
  t.teardown(() => (env === undefined ? delete process.env.SWARM_TRACKER : (process.env.SWARM_TRACKER = env)));
  const bad = await parse(['ls', '--tracker']);
  t.equal(bad.code, 2, 'a bad $SWARM_TRACKER: exit 2');
  t.match(bad.message, /\$SWARM_TRACKER/, 'naming it');
  t.equal((await parse(['get', 'x', '--no-tracker', '--peer', '127.0.0.1:1'])).code, 0, '--no-tracker ignores $SWARM_TRACKER');
});

t.test('--json is an option only where it is one: not after --, not the value of an option that takes one', async (t) => {
  const { program } = quietProgram();
  const j = (...a: string[]) => jsonRequested(program, ['node', 'swarm', ...a]);
  t.ok(j('get', 'a.bin', '--json'), 'get a.bin --json');
  t.ok(j('get', '--json', 'a.bin'), 'before the name');
  t.ok(j('get', 'a.bin', '-o', 'out', '--json'), 'after an option and its value');
  t.ok(j('get', 'a.bin', '-o=out', '--json'), 'after an option=value');
  t.notOk(j('get', 'a.bin', '-o', '--json'), "the value of -o (a folder named '--json')");
  t.notOk(j('get', 'a.bin', '--peer', '--json'), 'the value of --peer');
  t.notOk(j('get', '--', '--json'), 'a name after --');
  t.notOk(j('get', 'a.bin'), 'not there');
  t.ok(j('get', 'a.bin', '--seed', '--json'), '--seed takes an optional value, not one that begins with a dash');
  t.notOk(j('get', 'a.bin', '--seed', '5'), '(its value taken)');
});

t.test('names: a leading dash is a name when the command has none yet; `--` still works', async (t) => {
  const { program } = quietProgram();
  const re = (...a: string[]) => dashNamesAsArguments(program, ['node', 'swarm', ...a]).slice(2);
  t.same(re('get', '-notes.txt', '--peer', 'h:1'), ['get', '--peer', 'h:1', '--', '-notes.txt']);
  t.same(re('get', '--peer', 'h:1', '-notes.txt', '--json'), ['get', '--peer', 'h:1', '--json', '--', '-notes.txt']);
  t.same(re('who', '-x.iso'), ['who', '--', '-x.iso']);
  t.same(re('get', '-o', 'out', 'x'), ['get', '-o', 'out', 'x'], 'an option with its value is left alone');
  t.same(re('get', '-qo', 'out', 'x'), ['get', '-qo', 'out', 'x'], 'so are known flags together');
  t.same(re('get', 'x', '-zz'), ['get', 'x', '-zz'], 'an unknown option after the name stays an error');
  t.same(re('get', '--overwrit', 'x'), ['get', '--overwrit', 'x'], '--typo stays an option');
  t.same(re('get', '--', '-x'), ['get', '--', '-x'], 'an explicit -- is kept');
  t.same(re('ls', '-dir'), ['ls', '--', '-dir'], 'ls [dir] too');
  t.same(re('tracker', '-x'), ['tracker', '-x'], 'a command without arguments: left to commander');
  t.equal((await parse(['get', '-notes.txt', '--peer', '127.0.0.1:1'])).code, 0, 'get -notes.txt parses');
  const typo = await parse(['get', 'x', '--overwrit']);
  t.equal(typo.code, 2);
  t.match(typo.message, /unknown option '--overwrit'/);
});

t.test('real processes: exit 2, the option and the code named on stderr, or with --json in an error line last (and nothing on stderr)', async (t) => {
  const cases: [string[], RegExp][] = [
    [['serve', scratch, '--port', '70000'], /--port <port>' argument '70000' is invalid.*0 to 65535/],
    [['get', 'x', '--peer', 'abc:', '--json'], /--peer <host:port>' argument 'abc:' is invalid/],
    [['tracker', '--keepalive', '0'], /--keepalive <ms>' argument '0' is invalid.*100 to 600000/],
    [['serve', scratch, '--log', '/nonexistent-swarm-dir/x.log'], /--log <file>' argument .* is invalid.*cannot write the log file/],
    [['get', 'x', '--max-memory', '2.5'], /--max-memory <MiB>' argument '2.5' is invalid/],
  ];
  await Promise.all(
    cases.map(async ([args, msg]) => {
      const p = swarm(t, args);
      t.equal((await p.exit).code, 2, `${args.join(' ')}: exit 2`);
      // said once, on the chosen channel: with --json the last stdout line, and nothing on stderr
      const json = args.includes('--json');
      t.match(json ? (JSON.parse(p.lines.at(-1) ?? '{}') as { message?: string }).message : p.stderr(), msg, `${args.join(' ')}: names the option`);
      t.notMatch(p.stderr(), /\n\s+at /, 'no stack trace');
      // as every other error: `swarm: MESSAGE [CODE]`, the stable code on the message's line
      if (!json) t.match(p.stderr(), /^swarm: option '.*' is invalid\..* \[SWARM_ERR_USAGE\]\n/, `${args.join(' ')}: with its code`);
      if (json) {
        t.match(JSON.parse(p.lines.at(-1) ?? '{}'), { event: 'error', code: 'SWARM_ERR_USAGE', message: /--peer/ }, '--json: the error as the last line');
        t.equal(p.stderr(), '', '--json: nothing on stderr');
      }
    }),
  );
});

t.test('help speaks the user\'s words: no seed numbers or shell commands outside the shell', async (t) => {
  const program = buildProgram();
  for (const cmd of program.commands as Command[]) {
    if (cmd.name() === 'shell') continue;
    let text = '';
    cmd.configureOutput({ writeOut: (s) => void (text += s), writeErr: (s) => void (text += s) });
    cmd.outputHelp();
    t.ok(text.length > 100, `${cmd.name()} --help says something`);
    t.notMatch(text, /\bseeds?[ -]?\d{3}|\bLISTL\b|\bLISTR\b|\bDISCOVER\b/, `${cmd.name()} --help: no seed numbers or LISTL/LISTR/DISCOVER`);
  }
});
