/**
 * A sync member in a child process that kills itself (SIGKILL, as kill -9) at one step of a big
 * file's landing (the tests' stand-in for a crash there): argv DIR PEER_PORT STEP, STEP one of
 *   replaced   the version here was kept (trash or conflict copy), the new one not yet at its name
 *   renamed    the new one took its name, the index not yet told
 *   indexed    the index was told (in memory), its next save (SAVE_DELAY_MS later) not made yet
 */
import { serve } from '../../lib/serve.js';
import { Syncer } from '../../lib/sync/syncer.js';
import { PartFile } from '../../lib/storage/part-file.js';
import { SyncIndex } from '../../lib/sync/index-store.js';

const [dir, port, step] = process.argv.slice(2) as [string, string, string];
const finish = PartFile.prototype.finish;
PartFile.prototype.finish = async function (this: PartFile, ...args: Parameters<typeof finish>) {
  if (step === 'replaced') process.kill(process.pid, 'SIGKILL');
  await finish.apply(this, args);
  if (step === 'renamed') process.kill(process.pid, 'SIGKILL');
};
const fetched = SyncIndex.prototype.fetched;
SyncIndex.prototype.fetched = function (this: SyncIndex, ...args: Parameters<typeof fetched>) {
  fetched.apply(this, args);
  if (step === 'indexed') process.kill(process.pid, 'SIGKILL');
};
const node = await serve(dir, { port: 0, host: '127.0.0.1', noTracker: true, threads: 0, watch: false });
const sync = new Syncer(node, { pullMs: 60_000, open: true });
await sync.start();
node.book.add({ ip: '127.0.0.1', port: Number(port) }, 'neighbor');
await node.library!.refresh();
await sync.syncOnce();
process.stdout.write('not killed\n');
await sync.close();
await node.close({ graceful: false });
