#!/usr/bin/env node
/**
 * The `swarm` command line. A thin layer over lib/index.ts: it parses options (commander),
 * draws progress (cli-progress), prints results, and maps error codes to exit codes. This is the
 * only place that calls process.exit.
 *
 * Start-up is kept short (a flash crowd starts many peers at once on few cores): only errors,
 * version and constants are loaded to build the commands; each command loads the public API
 * (lib/index.js) when it runs, and the bars library only when it draws bars.
 */
import { Command, CommanderError } from 'commander';
import { SwarmError, exitCodeFor, EXIT_CODES, asSwarmError } from '../lib/errors.js';
import { VERSION } from '../lib/version.js';
import { register as registerServe } from './commands/serve.js';
import { register as registerTracker } from './commands/tracker.js';
import { register as registerLs } from './commands/ls.js';
import { register as registerGet } from './commands/get.js';
import { register as registerSearch } from './commands/search.js';
import { register as registerShell } from './commands/shell.js';
import { register as registerSync } from './commands/sync.js';
import { printable } from './format.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('swarm')
    .description('Pull one big file from many peers at once, and share folders.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerGet(program);
  registerServe(program);
  registerTracker(program);
  registerLs(program);
  registerSearch(program);
  registerShell(program);
  registerSync(program);
  return program;
}

/**
 * Output into a closed pipe (`swarm ls | head`) ends the command quietly, as other Unix tools do,
 * instead of an EPIPE stack trace.
 */
function quietOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

async function main(argv: string[]): Promise<number> {
  quietOnClosedPipe(process.stdout);
  quietOnClosedPipe(process.stderr);
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return EXIT_CODES.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT_CODES.OK : EXIT_CODES.USAGE;
    }
    // system errors (ENOENT, EACCES, ENOSPC...) are the user's to fix: no stack trace
    if (!(err instanceof SwarmError) && typeof (err as NodeJS.ErrnoException)?.code === 'string' && (err as NodeJS.ErrnoException).code!.startsWith('E')) {
      err = asSwarmError(err);
    }
    if (err instanceof SwarmError) {
      if (argv.includes('--json')) process.stdout.write(JSON.stringify({ event: 'error', code: err.code, message: err.message }) + '\n');
      process.stderr.write(`swarm: ${printable(err.message)} [${err.code}]\n`);
      return exitCodeFor(err.code);
    }
    process.stderr.write(`swarm: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT_CODES.INTERNAL;
  }
}

main(process.argv).then((code) => {
  // A forced stop (second Ctrl-C) must not wait for timers or sockets still winding down.
  if (code === EXIT_CODES.INTERRUPTED) process.exit(code);
  process.exitCode = code;
});
