/** `swarm tracker`: run the directory server on its own. */
import type { Command } from 'commander';
import * as constants from '../../lib/constants.js';
import { ndjson } from '../format.js';
import { onInterrupt } from './common.js';
import { boundedInt, listenHostOption, logFileOption, portOption } from '../options.js';

export function register(program: Command): void {
  program
    .command('tracker')
    .description('run a tracker: the directory of which peer has which file (older plain-JSON synchronizers can join too)')
    .option('-p, --port <port>', 'port to listen on (0 picks a free one)', portOption, constants.DEFAULT_TRACKER_PORT)
    .option('--host <host>', 'address to listen on (0.0.0.0: every interface)', listenHostOption, '127.0.0.1')
    .option('--keepalive <ms>', 'expected keepalive period, 100 to 600000 ms; peers silent for 3 periods are dropped', boundedInt(100, 600_000, ' ms'), constants.KEEPALIVE_MS)
    .option('--log <file>', 'append one line per event to this file', logFileOption)
    .option('--json', 'print NDJSON events (tracker-listening, stopped) instead of text')
    .action(async (o: { port: number; host: string; keepalive: number; log?: string; json?: boolean }) => {
      const { tracker, openLogFile } = await import('../../lib/index.js');
      const fileLog = o.log ? openLogFile(o.log) : null;
      const t = await tracker({ port: o.port, host: o.host, keepaliveMs: o.keepalive, ...(fileLog ? { log: fileLog.log } : {}) });
      if (o.json) ndjson({ event: 'tracker-listening', host: t.host, port: t.port });
      else process.stderr.write(`tracker listening on ${t.host}:${t.port} (Ctrl-C to stop)\n`);
      const stop = async () => {
        await t.close();
        await fileLog?.close();
      };
      await onInterrupt(stop, stop);
      if (o.json) ndjson({ event: 'stopped' });
      else process.stderr.write('tracker stopped\n');
    });
}
