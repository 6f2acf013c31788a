/**
 * Wasm memory can run out: each WebAssembly.Memory reserves ~10 GiB of address space, so a
 * process holds ~13,000 at most, and a read buffer (checksum-wasm.ts arena) is one per connection.
 * Past that, arena() gives null (callers fall back to a plain buffer and the JS sum), never an
 * exception: sync's background pulls (`void pullAll()`) rejected unhandled and Node exited
 * (hostile review 55). Its own file: the memories it holds stay until this process ends.
 */
import t from 'tap';
import { arena } from '../lib/protocol/checksum-wasm.js';
import { READ_BUFFER_BYTES } from '../lib/net/framed-client.js';
import { tempDir } from './helpers/tmp.js';
import { syncPeer } from './helpers/sync-peers.js';

t.test('no wasm memory left: arena() is null, and a sync pull still resolves', async (t) => {
  const b = await syncPeer(t, tempDir(t));
  b.node.book.add({ ip: '127.0.0.1', port: 1 }, 'neighbor'); // a member to dial (nothing listens there)
  t.ok(arena(READ_BUFFER_BYTES), 'an arena while memory is left');
  let hog: WebAssembly.Memory[] = [];
  let full = false;
  for (let i = 0; i < 50_000 && !full; i++) {
    try {
      hog.push(new WebAssembly.Memory({ initial: 4, maximum: 4 }));
    } catch {
      full = true;
    }
  }
  t.comment(`${hog.length} memories held when WebAssembly.Memory() failed`);
  if (!full) {
    t.comment('skipped: this engine gave 50,000 wasm memories without failing, nothing to exhaust here');
    return;
  }
  t.doesNotThrow(() => t.equal(arena(READ_BUFFER_BYTES), null, 'none left: null (fails before: RangeError)'));
  const unhandled: unknown[] = [];
  const onU = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onU);
  const readers = (b.sync as unknown as { readers: { pullAll(): Promise<void> } }).readers;
  await t.resolves(readers.pullAll(), 'a pull dials with a plain read buffer (fails before: rejects)');
  await new Promise((r) => setTimeout(r, 200));
  process.off('unhandledRejection', onU);
  t.equal(unhandled.length, 0, 'no unhandled rejection');
  hog = [];
});
