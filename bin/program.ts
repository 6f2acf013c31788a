/**
 * The commander program of `swarm`, built without running it (bin/swarm.ts runs it; tests build it
 * to walk its options and parse bad values in-process), and what every command shares around
 * parsing: the cross-option checks before any action (bin/options.ts), names that begin with a
 * dash, and the exit code and `--json` error line of a usage error.
 */
import { Command, CommanderError, type Option } from 'commander';
import { SwarmError, ERROR_CODES, EXIT_CODES, exitCodeFor } from '../lib/errors.js';
import { VERSION } from '../lib/version.js';
import { register as registerServe } from './commands/serve.js';
import { register as registerTracker } from './commands/tracker.js';
import { register as registerLs } from './commands/ls.js';
import { register as registerGet } from './commands/get.js';
import { register as registerSearch } from './commands/search.js';
import { register as registerShell } from './commands/shell.js';
import { register as registerSync } from './commands/sync.js';
import { crossChecks } from './options.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('swarm')
    .description('Pull one big file from many peers at once, and share folders.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    // a usage error is said as every other error is, `swarm: MESSAGE [SWARM_ERR_USAGE]`: the
    // stable code, not commander's bare "error:" (with --json, bin/swarm.ts says it in the error line)
    .configureOutput({ outputError: (text, write) => write(usageErrorText(text)) })
    .exitOverride();
  registerGet(program);
  registerServe(program);
  registerTracker(program);
  registerLs(program);
  registerSearch(program);
  registerShell(program);
  registerSync(program);
  program.hook('preAction', (_root, cmd) => crossChecks(cmd));
  return program;
}

/** The exit code of an error thrown while parsing or running a command (usage errors: 2). */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_CODES.OK : EXIT_CODES.USAGE;
  if (err instanceof SwarmError) return exitCodeFor(err.code);
  return EXIT_CODES.INTERNAL;
}

/** Commander's "error: MESSAGE" as swarm says an error on stderr, the code after the message's first line. */
export function usageErrorText(text: string): string {
  const [first, ...rest] = text.replace(/^error: /, '').trimEnd().split('\n');
  return `${[`swarm: ${first} [${ERROR_CODES.USAGE}]`, ...rest].join('\n')}\n`;
}

/** A commander usage error as the `--json` error line every command ends with on failure. */
export function usageErrorJson(err: CommanderError): string {
  return JSON.stringify({ event: 'error', code: ERROR_CODES.USAGE, message: err.message.replace(/^error: /, '') });
}

/** True when `tok` is one of `cmd`'s options, or a cluster of its one-letter flags (`-qj`). */
function optionFor(cmd: Command, tok: string): Option | 'flags' | null {
  const opts = cmd.options as Option[];
  if (tok.startsWith('--')) {
    const long = tok.split('=')[0];
    return opts.find((o) => o.long === long) ?? null;
  }
  const short = opts.find((o) => o.short === tok.slice(0, 2));
  if (!short) return tok === '-h' ? 'flags' : null;
  if (tok.length === 2) return short;
  // -p7070 (a value attached), or -qj (flags together)
  if (short.required || short.optional) return 'flags';
  return [...tok.slice(1)].every((c) => opts.some((o) => o.short === `-${c}` && !o.required)) ? 'flags' : null;
}

/**
 * True when `--json` is one of the options of the command line (`argv` as process.argv): not a
 * name after `--` (`swarm get -- --json`) and not the value of an option that takes one
 * (`swarm get a.bin -o --json` saves into a folder named `--json`, in text mode).
 */
export function jsonRequested(program: Command, argv: string[]): boolean {
  const args = argv.slice(2);
  const at = args.findIndex((a) => !a.startsWith('-'));
  const cmd = at < 0 ? undefined : (program.commands as Command[]).find((c) => c.name() === args[at] || c.aliases().includes(args[at]!));
  for (let i = 0; i < args.length; i++) {
    const tok = args[i]!;
    if (tok === '--') return false;
    if (tok === '--json') return true;
    if (!cmd || i <= at || !tok.startsWith('-') || tok.includes('=')) continue;
    const opt = optionFor(cmd, tok);
    if (opt && opt !== 'flags' && opt.required) i++;
    else if (opt && opt !== 'flags' && opt.optional && i + 1 < args.length && !args[i + 1]!.startsWith('-')) i++;
  }
  return false;
}

/**
 * A name that begins with a dash (`swarm get -notes.txt`) is taken as the name when the command
 * has not been given one and the word is no option of the command: it is moved behind `--`, where
 * commander reads it as an argument. `--anything` is always an option (a typo is said as such).
 */
export function dashNamesAsArguments(program: Command, argv: string[]): string[] {
  const args = argv.slice(2);
  const at = args.findIndex((a) => !a.startsWith('-'));
  if (at < 0 || args.includes('--')) return argv;
  const cmd = (program.commands as Command[]).find((c) => c.name() === args[at] || c.aliases().includes(args[at]!));
  const positional = (cmd as unknown as { registeredArguments?: unknown[] } | undefined)?.registeredArguments?.length ?? 0;
  if (!cmd || positional !== 1) return argv;
  let given = 0;
  let moved: string | null = null;
  const kept: string[] = [];
  const rest = args.slice(at + 1);
  for (let i = 0; i < rest.length; i++) {
    const tok = rest[i]!;
    if (tok === '-' || !tok.startsWith('-') || /^-\d/.test(tok)) {
      given++;
      kept.push(tok);
      continue;
    }
    const opt = optionFor(cmd, tok);
    kept.push(tok);
    if (opt && opt !== 'flags' && opt.required && !tok.includes('=') && i + 1 < rest.length) kept.push(rest[++i]!);
    else if (opt && opt !== 'flags' && opt.optional && i + 1 < rest.length && !rest[i + 1]!.startsWith('-')) kept.push(rest[++i]!);
    else if (!opt && !tok.startsWith('--') && tok.length > 2 && moved === null) {
      kept.pop();
      moved = tok;
    }
  }
  if (moved === null || given > 0) return argv;
  return [...argv.slice(0, 2), ...args.slice(0, at + 1), ...kept, '--', moved];
}
