#!/usr/bin/env node
/**
 * The `swarm` command line. A thin layer over lib/index.ts: it parses options (commander, built in
 * bin/program.ts, values checked in bin/options.ts), draws progress (cli-progress), prints results,
 * and maps error codes to exit codes. This is the only place that calls process.exit.
 *
 * Start-up is kept short (a flash crowd starts many peers at once on few cores): only errors,
 * version and constants are loaded to build the commands; each command loads the public API
 * (lib/index.js) when it runs, and the bars library only when it draws bars.
 */
import { setFlagsFromString } from 'node:v8';
import { CommanderError, type Command } from 'commander';
import { SwarmError, ERROR_CODES, EXIT_CODES, asSwarmError } from '../lib/errors.js';
import { buildProgram, dashNamesAsArguments, exitCodeOf, jsonRequested, usageErrorJson } from './program.js';
import { printable } from './format.js';

// V8 compiles a function with its optimizing compiler once it has run a budget of bytecode; the
// default budget had each downloader spend ~0.25 CPU s compiling (a flash crowd of 16 downloaders
// on 2 cores: 1.29 -> 1.04 CPU s per downloader, all done 11.45 -> 10.49 s). Hot loops still get
// optimized, a little later: a 1 GiB download took the same time. Only for `get`: a long sync of
// 10,000 small files used more CPU with it in two of two pairs of runs.
if (process.argv.slice(2).find((a) => !a.startsWith('-')) === 'get') setFlagsFromString('--interrupt-budget=1000000');

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

/**
 * An error is said once, on the channel the user chose: with `--json` one `error` line on stdout
 * (the last line, what a script reads) and nothing on stderr; without it one `swarm: …` line on
 * stderr. Commander's own usage messages are silenced under `--json` for the same reason.
 */
async function main(argv: string[]): Promise<number> {
  quietOnClosedPipe(process.stdout);
  quietOnClosedPipe(process.stderr);
  const program = buildProgram();
  const json = jsonRequested(program, argv);
  if (json) {
    // settings set on the program before its commands were added are inherited; these are not
    for (const c of [program, ...(program.commands as Command[])]) c.showHelpAfterError(false).configureOutput({ outputError: () => {} });
  }
  try {
    await program.parseAsync(dashNamesAsArguments(program, argv));
    return EXIT_CODES.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // without --json commander has said it on stderr
      if (json && err.exitCode !== 0) process.stdout.write(usageErrorJson(err) + '\n');
      return exitCodeOf(err);
    }
    // system errors (ENOENT, EACCES, ENOSPC...) are the user's to fix: no stack trace
    if (!(err instanceof SwarmError) && typeof (err as NodeJS.ErrnoException)?.code === 'string' && (err as NodeJS.ErrnoException).code!.startsWith('E')) {
      err = asSwarmError(err);
    }
    if (err instanceof SwarmError) {
      if (json) process.stdout.write(JSON.stringify({ event: 'error', code: err.code, message: err.message }) + '\n');
      else process.stderr.write(`swarm: ${printable(err.message)} [${err.code}]\n`);
      return exitCodeOf(err);
    }
    // a bug: a script still gets its error line; the stack trace (for the report) goes to stderr
    const message = err instanceof Error ? err.message : String(err);
    if (json) process.stdout.write(JSON.stringify({ event: 'error', code: ERROR_CODES.INTERNAL, message: `internal error: ${message}` }) + '\n');
    process.stderr.write(`swarm: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT_CODES.INTERNAL;
  }
}

main(process.argv).then((code) => {
  // A forced stop (second Ctrl-C) must not wait for timers or sockets still winding down.
  if (code === EXIT_CODES.INTERRUPTED) process.exit(code);
  process.exitCode = code;
});
