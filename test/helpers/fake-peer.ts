/**
 * A peer that misbehaves on purpose. It answers list and manifest honestly (from the real file)
 * and then, for `get`, does what its mode says:
 *   bad-checksum  payload byte flipped after the checksum was computed
 *   wrong-bytes   wrong bytes with a valid checksum (only the chunk hash can tell)
 *   stall         accepts requests and sends nothing
 *   cut           sends half a packet and closes
 *   huge          declares a 4 GiB frame
 */
import net from 'node:net';
import { openSync, readSync, closeSync } from 'node:fs';
import { FrameDecoder, encodeFrame, type Header } from '../../lib/protocol/frame.js';
import { encodePacketHead, FLAG_LAST_IN_CHUNK } from '../../lib/protocol/packet.js';
import { encodeHashes } from '../../lib/manifest.js';
import type { Manifest } from '../../lib/types.js';

export type FakeMode = 'bad-checksum' | 'wrong-bytes' | 'stall' | 'cut' | 'huge';

export interface FakePeer {
  port: number;
  requests: number;
  close(): Promise<void>;
}

export async function startFakePeer(file: string, m: Manifest, mode: FakeMode): Promise<FakePeer> {
  const sockets = new Set<net.Socket>();
  const state = { requests: 0 };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const send = (h: Header, body?: Uint8Array) => encodeFrame(h, body).forEach((b) => socket.write(b));
    const decoder = new FrameDecoder({
      onPacket() {},
      onMessage(h) {
        if (h.t === 'list') send({ t: 'files', id: h.id, files: [{ name: m.name, size: m.size, mtime: m.mtime, kind: 'other', cid: m.cid }] });
        if (h.t === 'manifest') send({ t: 'manifest-ok', id: h.id, name: m.name, size: m.size, mtime: m.mtime, chunkBytes: m.chunkBytes, cid: m.cid, chunks: m.hashes.length }, encodeHashes(m.hashes));
        if (h.t === 'get') {
          state.requests++;
          sendRange(socket, file, m, mode, h.id as number, h.from as number, h.to as number);
        }
      },
    });
    socket.on('data', (d: Buffer) => {
      try {
        decoder.push(d);
      } catch {
        socket.destroy();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    get requests() {
      return state.requests;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

function sendRange(socket: net.Socket, file: string, m: Manifest, mode: FakeMode, id: number, from: number, to: number): void {
  if (mode === 'stall') return;
  if (mode === 'huge') {
    const p = Buffer.alloc(8);
    p.writeUInt32BE(0, 0);
    p.writeUInt32BE(0xffffffff, 4);
    socket.write(p);
    return;
  }
  const fd = openSync(file, 'r');
  try {
    for (let c = from; c < to; c++) {
      const start = c * m.chunkBytes;
      const len = Math.min(m.chunkBytes, m.size - start);
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, start);
      for (let at = 0; at < len; at += 65536) {
        const n = Math.min(65536, len - at);
        let payload = buf.subarray(at, at + n);
        const flags = at + n >= len ? FLAG_LAST_IN_CHUNK : 0;
        if (mode === 'wrong-bytes') payload = Buffer.from(payload).fill(0x5a, 0, Math.min(n, 16));
        const head = encodePacketHead({ flags, requestId: id, chunk: c, offset: start + at }, payload);
        if (mode === 'bad-checksum') payload = Buffer.from(payload).fill(payload[0]! ^ 0xff, 0, 1);
        if (mode === 'cut') {
          socket.write(head);
          socket.end(payload.subarray(0, n >> 1));
          socket.destroy();
          return;
        }
        socket.write(head);
        socket.write(payload);
      }
    }
    socket.write(Buffer.concat(encodeFrame({ t: 'done', id })));
  } finally {
    closeSync(fd);
  }
}
