/**
 * A PeerServer on 127.0.0.1 serving one in-memory content (no disk): the manifest `m`, every
 * chunk held, read through `reader`. For the data-path tests that play clients against it
 * (sender-lazy, send-buffers, the reconnect-cycle hostile test). Closed at the test's teardown.
 */
import { PeerServer } from '../../lib/peer/server.js';
import { fullBitfield } from '../../lib/scheduling/availability.js';
import type { Manifest } from '../../lib/manifest.js';
import type { ChunkSource, SourceIndex, SourceReader } from '../../lib/peer/source.js';

type ServerOptions = ConstructorParameters<typeof PeerServer>[1];

export async function memoryServer(t: { teardown(fn: () => unknown): void }, m: Manifest, reader: SourceReader, opts: ServerOptions = {}): Promise<{ server: PeerServer; port: number }> {
  const chunks = Math.ceil(m.size / m.chunkBytes);
  const bits = fullBitfield(chunks);
  const src: ChunkSource = { manifest: m, complete: true, has: (c) => c >= 0 && c < chunks, bitfield: () => bits, open: async () => reader };
  const index: SourceIndex = { list: () => ({ files: [] }), stat: () => undefined, byCid: (c) => (c === m.cid ? src : undefined), openByName: async () => undefined };
  const server = new PeerServer(index, opts);
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close({ graceful: false }));
  return { server, port };
}
