/**
 * `swarm shell [DIR]`: a prompt over one running peer (lib/shell), with the seeds' commands. On a
 * terminal: readline with history and tab completion (commands, peers, names), messages printed
 * above the line being typed, download progress in the prompt itself. Otherwise commands are read
 * from stdin one at a time (each finishes before the next starts), and end of input is QUIT.
 * Ctrl-C is QUIT (wait for transfers), a second Ctrl-C is FORCEQUIT.
 */
import type { Command } from 'commander';
import { createInterface, type Interface } from 'node:readline';
import * as constants from '../../lib/constants.js';
import { SwarmError, ERROR_CODES } from '../../lib/errors.js';
import { humanBytes, printable } from '../format.js';
import { addPeerOptions, peerNodeOptions, type PeerCliOptions } from './common.js';
import { outDirOption } from '../options.js';
import { addDiscoveryOptions, discoveryNodeOptions, type DiscoveryCliOptions } from './discovery-options.js';

interface ShellCliOptions extends DiscoveryCliOptions, PeerCliOptions {
  output?: string;
}

export function register(program: Command): void {
  const cmd = program
    .command('shell')
    .description("a prompt over one running peer, with the seeds' commands (LISTL, SEARCH, GET, register, download, list...)")
    .argument('[dir]', 'folder to share while the shell runs (none: share only what you download)')
    .option('-o, --output <dir>', 'where downloads land (default: DIR, else the current folder)', outDirOption);
  addPeerOptions(cmd, { port: `peer port (default ${constants.DEFAULT_PEER_PORT} with DIR, else any free one)`, tracker: 'tracker to use (default: with DIR embed one or join the local one; else $SWARM_TRACKER or the local one)' });
  addDiscoveryOptions(cmd)
    .addHelpText(
      'after',
      `
Type help at the prompt for the commands. Names are case-insensitive, arguments are separated by
commas or spaces (GET name,ip,port). Downloads run in the background; QUIT (or exit, or Ctrl-C)
waits for running transfers, FORCEQUIT (or a second Ctrl-C) leaves at once. Commands can also
come from a pipe: printf 'LISTL\\nQUIT\\n' | swarm shell ./share`,
    )
    .action(async (dir: string | undefined, o: ShellCliOptions) => {
      const discovery = discoveryNodeOptions(o);
      const { SwarmNode, openLogFile, Shell } = await import('../../lib/index.js');
      const fileLog = o.log ? openLogFile(o.log) : null;
      const tty = !!process.stdin.isTTY && !!process.stdout.isTTY;
      let rl: Interface | null = null;
      /** A command is running: its output goes out as is, the prompt comes back when it is done. */
      let busy = false;
      const say = (line: string) => {
        if (rl && tty && !busy) {
          // between commands (a background download's news): above the line being typed, which is drawn again after
          process.stdout.write('\r\x1b[K' + line + '\n');
          rl.prompt(true);
        } else process.stdout.write(line + '\n');
      };
      // at a terminal everything shares the screen (and the prompt); from a script, errors,
      // warnings and failed downloads go to stderr, so the output stays the commands' answers
      const complain = tty ? say : (line: string) => void process.stderr.write(line + '\n');
      const node = await SwarmNode.start({
        ...(dir !== undefined ? { share: dir } : {}),
        ...peerNodeOptions(o),
        embed: dir !== undefined && typeof o.tracker !== 'string',
        threads: o.threads ?? 0,
        ...(fileLog ? { log: fileLog.log, ignore: [o.log!] } : {}),
        ...discovery,
        onWarning: (m) => complain(`warning: ${printable(m)}`),
      });
      const shell = new Shell(node, say, { ...(o.output ? { outDir: o.output } : {}), printable, complain });
      const files = node.library?.files() ?? [];
      say(
        `swarm shell: ${dir !== undefined ? `sharing ${files.length} file${files.length === 1 ? '' : 's'} (${humanBytes(files.reduce((a, f) => a + f.size, 0))}) from ${node.library!.root}` : 'sharing what it downloads'} on ${node.host}:${node.port}; ` +
          `${node.tracker ? `tracker ${node.tracker.address}` : 'no tracker'}${node.book.size ? `; ${node.book.size} neighbour${node.book.size === 1 ? '' : 's'}` : ''}${node.lan ? `; LAN on UDP ${node.lan.port}` : ''}. Type help for the commands.`,
      );

      let ended = false;
      let interrupts = 0;
      const finish = async () => {
        if (ended) return;
        ended = true;
        rl?.close(); // ends the loop below
        await fileLog?.close();
      };
      /** One command; QUIT and FORCEQUIT end the shell when they are done. */
      const runOne = async (line: string) => {
        busy = true;
        try {
          const r = await shell.run(line);
          if (r) await finish();
          return r;
        } finally {
          busy = false;
        }
      };
      const onInterrupt = () => {
        interrupts++;
        if (interrupts === 1) {
          say('Ctrl-C: QUIT (again to leave at once)');
          void runOne('QUIT');
        } else void runOne('FORCEQUIT');
      };

      const completer = (line: string): [string[], string] => {
        const peers = node.discovery.peers().map((k) => `${k.ip}:${k.port}`);
        return Shell.complete(line, { names: [...shell.names], peers });
      };
      rl = createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty, ...(tty ? { completer, historySize: 500 } : {}) });
      rl.on('SIGINT', onInterrupt);
      process.on('SIGINT', onInterrupt);
      process.on('SIGTERM', onInterrupt);
      let promptTimer: NodeJS.Timeout | null = null;
      if (tty) {
        rl.setPrompt('swarm> ');
        rl.prompt();
        // download progress lives in the prompt: it never breaks the line being typed
        promptTimer = setInterval(() => {
          if (busy) return;
          const p = shell.progressText();
          rl!.setPrompt(p ? `swarm [${p}]> ` : 'swarm> ');
          rl!.prompt(true);
        }, 1000);
        promptTimer.unref();
      }
      try {
        for await (const line of rl) {
          if (ended) break;
          const word = line.trim().split(/[\s,]/)[0]!.toLowerCase();
          if (shell.quitting) {
            // QUIT is waiting for transfers: FORCEQUIT, as its message says, still leaves at once
            if (word === 'forcequit') {
              await runOne(line);
              break;
            }
            if (word !== '') say('quitting: waiting for transfers (FORCEQUIT or Ctrl-C to leave now)');
            continue;
          }
          // QUIT waits in the background so that a FORCEQUIT typed meanwhile is read
          if (word === 'quit' || word === 'exit') {
            void runOne(line);
            continue;
          }
          if (await runOne(line)) break;
          if (tty) rl.prompt();
        }
        // end of input (a pipe that ran out, or Ctrl-D) is QUIT
        if (!ended && !shell.quitting) await runOne('QUIT');
        while (!ended) await new Promise((r) => setTimeout(r, 50)); // a QUIT from Ctrl-C still waiting
      } finally {
        if (promptTimer) clearInterval(promptTimer);
        process.off('SIGINT', onInterrupt);
        process.off('SIGTERM', onInterrupt);
        await node.close({ graceful: false });
      }
      if (interrupts > 1) throw new SwarmError(ERROR_CODES.INTERRUPTED, 'stopped at once (second interrupt)');
      // commands from a pipe (a script): a download that failed is the exit code, as `swarm get`'s
      const failed = shell.firstFailure;
      if (!tty && failed) throw new SwarmError(failed.code, `a download failed: ${failed.message}`);
    });
}
