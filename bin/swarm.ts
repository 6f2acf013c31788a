#!/usr/bin/env node
/**
 * The `swarm` command line. A thin layer over lib/index.ts: it parses options (commander),
 * draws progress (cli-progress), prints results, and maps error codes to exit codes. This is the
 * only place that calls process.exit.
 */
import { Command, CommanderError } from 'commander';
import { SwarmError, exitCodeFor, EXIT_CODES, VERSION, asSwarmError } from '../lib/index.js';
import { register as registerServe } from './commands/serve.js';
import { register as registerTracker } from './commands/tracker.js';
import { register as registerLs } from './commands/ls.js';
import { register as registerGet } from './commands/get.js';
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
  return program;
}

async function main(argv: string[]): Promise<number> {
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
