/**
 * What a receiver sees of a sender's output, for the data-path tests (sender, kernel-send): a
 * connected socket pair on 127.0.0.1, and a parse of the bytes received into frames, with every
 * data packet's header, length and checksum checked and its payload placed by offset.
 */
import type { Test } from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { FrameDecoder, type Header } from '../../lib/protocol/frame.js';
import { packetChecksumOk, packetHeaderSum, FLAG_LAST_IN_CHUNK } from '../../lib/protocol/packet.js';
import { sum16 } from '../../lib/protocol/checksum.js';

export interface Parsed {
  /** The payloads placed at their offsets in a buffer of the content's size. */
  out: Buffer;
  packets: number;
  /** Packets whose checksum or declared length is wrong, or whose last-in-chunk flag is misplaced. */
  bad: number;
  /** Chunks whose last packet came, in order. */
  lastFlags: number[];
  payloadBytes: number;
  /** Control frames, in order, and how many packets had come before each. */
  messages: { header: Header; afterPackets: number }[];
}

/** Parse `wire` (everything a receiver got) for a content of `size` bytes in chunks of `chunkBytes`. */
export function parseWire(wire: Buffer, size: number, chunkBytes: number): Parsed {
  const p: Parsed = { out: Buffer.alloc(size), packets: 0, bad: 0, lastFlags: [], payloadBytes: 0, messages: [] };
  const dec = new FrameDecoder(
    {
      onMessage: (header) => p.messages.push({ header, afterPackets: p.packets }),
      onPacket: (h, head, payload) => {
        const bytes = Buffer.concat(payload); // (slices of odd length: the sum is taken whole)
        if (h.offset + bytes.length <= size) bytes.copy(p.out, h.offset);
        if (!packetChecksumOk(h, packetHeaderSum(head), sum16(bytes)) || bytes.length !== h.length) p.bad++;
        if (h.flags & FLAG_LAST_IN_CHUNK) {
          p.lastFlags.push(h.chunk);
          if (h.offset + h.length !== Math.min(size, (h.chunk + 1) * chunkBytes)) p.bad++;
        }
        p.payloadBytes += h.length;
        p.packets++;
      },
    },
    { maxBodyBytes: 2 << 20 },
  );
  dec.push(wire);
  return p;
}

/** A connected pair on 127.0.0.1: `a` the server's side, `b` the client's; destroyed at teardown. */
export async function socketPair(t: Test): Promise<{ a: net.Socket; b: net.Socket }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const accepted = once(server, 'connection');
  const b = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [a] = (await accepted) as [net.Socket];
  t.teardown(() => {
    a.destroy();
    b.destroy();
  });
  return { a, b };
}
