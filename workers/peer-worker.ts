/**
 * Worker thread entry for peer connections: a PeerHostCore fed by parentPort. Chunk buffers
 * leave by transfer; returned buffers arrive by transfer for reuse.
 */
import { parentPort } from 'node:worker_threads';
import { PeerHostCore } from '../lib/download/peer-host.js';
import type { ToPeerHost } from '../lib/download/thread-messages.js';

const port = parentPort!;
const core = new PeerHostCore((m, transfer) => port.postMessage(m, transfer ?? []));
port.on('message', (m: ToPeerHost) => {
  core.handle(m);
  if (m.type === 'shutdown') port.close();
});
