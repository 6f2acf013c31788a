/** Test helper: fetch a chunk range from a serving peer over a raw client, checking checksums. */
import { FramedClient } from '../../lib/net/framed-client.js';
import { packetChecksumOk, packetHeaderSum, FLAG_LAST_IN_CHUNK } from '../../lib/protocol/packet.js';
import { sum16 } from '../../lib/protocol/checksum.js';
import { fromWire, type SwarmError } from '../../lib/errors.js';

export interface FetchResult {
  bytes: Buffer;
  firstOffset: number;
  packets: number;
  badChecksums: number;
  lastFlags: number;
  error: SwarmError | null;
}

export async function fetchRange(port: number, cid: string, from: number, to: number): Promise<FetchResult> {
  const pieces: { offset: number; data: Buffer }[] = [];
  let bad = 0;
  let lastFlags = 0;
  let settle: (e: SwarmError | null) => void = () => {};
  const finished = new Promise<SwarmError | null>((r) => (settle = r));
  const c = new FramedClient('127.0.0.1', port, { side: 'peerReply', handler: {
    onPacket(h, raw, payload) {
      const data = Buffer.concat(payload);
      if (!packetChecksumOk(h, packetHeaderSum(raw), sum16(data))) bad++;
      pieces.push({ offset: h.offset, data });
      if (h.flags & FLAG_LAST_IN_CHUNK) {
        lastFlags++;
        // acknowledged as a swarm client does (a server's upload policy gives sessions that never
        // acknowledge one slot between them)
        c.write({ t: 'have', cid, chunks: [h.chunk] });
      }
    },
    onMessage(m) {
      if (m.t === 'done') settle(null);
      if (m.t === 'error') settle(fromWire(m));
    },
    onClose(err) {
      settle(err);
    },
  } });
  await c.connect();
  c.write({ t: 'get', id: c.newId(), cid, from, to });
  const error = await finished;
  c.destroy();
  pieces.sort((a, b) => a.offset - b.offset);
  return { bytes: Buffer.concat(pieces.map((p) => p.data)), firstOffset: pieces[0]?.offset ?? -1, packets: pieces.length, badChecksums: bad, lastFlags, error };
}
