/**
 * A complete holder that behaves like a seeder at the start of a flash crowd, reduced to what the
 * swarm tests need to prove that downloaders trade among themselves. It speaks protocol 2 (hello,
 * list, stat, manifest, interest → bitfield, get → packets + done, cancel, have) and:
 *   - shows each downloader a DISJOINT part of the chunks (like a seeder's spread): the k-th peer
 *     (by hello peer id, in order of its first `interest`) sees the chunks i with i % parts === k,
 *     and no `have` ever shows it more;
 *   - serves each chunk at most once, to anyone: a second request for it, or a request for a chunk
 *     the peer was not shown, is refused with SWARM_ERR_NOT_HAVE (and counted in `refused`);
 *   - with `leaveWhenSent` (default), closes its listener and every connection as soon as every
 *     chunk went out once (the `done` of the last range is flushed first);
 *   - optionally paces itself (`chunkDelayMs` before each chunk), holds chunks behind a gate
 *     (`gate`: chunks it sends before waiting for `release()`) or its last chunk until a test says
 *     (`beforeLast`), saying `busy` while it holds one.
 * `log` records every chunk sent and to whom, so a test can tell what the downloaders can only
 * have got from each other.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { FrameDecoder, encodeFrame, type Header } from '../../lib/protocol/frame.js';
import { encodePacketHead, FLAG_LAST_IN_CHUNK } from '../../lib/protocol/packet.js';
import { chunksOf, type Manifest } from '../../lib/manifest.js';
import { PROTOCOL_VERSION } from '../../lib/protocol/messages.js';
import { newPeerId } from '../../lib/net/identity.js';

export interface SeederSend {
  /** The downloader's peer id (its hello). */
  peer: string;
  chunk: number;
  at: number;
}

export interface FakeSeeder {
  port: number;
  readonly peerId: string;
  /** Every chunk sent, in order. */
  log: SeederSend[];
  /** Chunks shown to each peer id (its part), in order of arrival. */
  shown: Map<string, number[]>;
  /** Requests refused (not shown to that peer, or already sent once). */
  refused: { peer: string; chunk: number; why: string }[];
  /** Resolves once every chunk went out once and the seeder left (listener and connections closed). */
  left: Promise<void>;
  /** Chunks sent so far (each at most once). */
  readonly sentCount: number;
  /** Let `n` more chunks through the gate (default: open it for good). */
  release(n?: number): void;
  close(): Promise<void>;
}

export interface FakeSeederOptions {
  name?: string;
  mtime?: number;
  /** How many downloaders the chunks are split among (default 2). */
  parts?: number;
  /** Pause before sending each chunk, ms (default 0). */
  chunkDelayMs?: number;
  /** Chunks sent before waiting for `release()` (default: no gate). */
  gate?: number;
  /** Leave once every chunk went out once (default true). */
  leaveWhenSent?: boolean;
  /** Awaited (once, saying `busy` meanwhile) before the last chunk goes out: a test holds the seeder's departure until the downloaders know each other. */
  beforeLast?: () => Promise<void>;
}

const PACKET_BYTES = 64 << 10;
const BUSY_EVERY_MS = 1_000;

export async function startFakeSeeder(file: string, m: Manifest, o: FakeSeederOptions = {}): Promise<FakeSeeder> {
  const data = readFileSync(file);
  if (data.length !== m.size) throw new Error('fake seeder: the file does not match its manifest');
  const chunks = chunksOf(m);
  const parts = o.parts ?? 2;
  const name = o.name ?? 'f.bin';
  const mtime = o.mtime ?? 1_700_000_000;
  const peerId = newPeerId();
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const log: SeederSend[] = [];
  const shown = new Map<string, number[]>();
  const refused: FakeSeeder['refused'] = [];
  /** Chunks promised to a request (a second requester is refused), and chunks actually sent. */
  const reserved = new Set<number>();
  const sent = new Set<number>();
  let gate = o.gate ?? Infinity;
  const gateWaiters: (() => void)[] = [];
  let leave: () => void = () => {};
  const left = new Promise<void>((r) => (leave = r));
  let gone = false;
  let heldLast = false;

  const sleep = (ms: number) =>
    new Promise<void>((r) => {
      const tm = setTimeout(() => {
        timers.delete(tm);
        r();
      }, ms);
      timers.add(tm);
    });

  const closeAll = (graceful: boolean) =>
    new Promise<void>((r) => {
      gone = true;
      for (const tm of timers) clearTimeout(tm);
      for (const s of sockets) (graceful ? s.end() : s.destroy());
      for (const w of gateWaiters.splice(0)) w();
      server.close(() => r());
    });

  const partOf = (peer: string): number[] => {
    let mine = shown.get(peer);
    if (!mine) {
      const k = shown.size;
      mine = [];
      // a peer beyond the parts is shown nothing: the seeder has given everything away
      if (k < parts) for (let i = k; i < chunks; i += parts) mine.push(i);
      shown.set(peer, mine);
    }
    return mine;
  };

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let peer = '';
    socket.on('close', () => {
      // a connection that ended takes nothing with it: its unsent chunks may be asked again
      for (const r of [...queue, ...(current ? [current] : [])]) for (let c = r.from; c < r.to; c++) if (!sent.has(c)) reserved.delete(c);
    });
    const send = (h: Header, body?: Uint8Array) => {
      if (!socket.destroyed && !socket.writableEnded) for (const b of encodeFrame(h, body)) socket.write(b);
    };
    const queue: { id: number; from: number; to: number; cancelled: boolean }[] = [];
    let sending = false;
    let current: (typeof queue)[number] | null = null;

    const sendLoop = async () => {
      sending = true;
      while (queue.length && !socket.destroyed && !gone) {
        const r = queue.shift()!;
        current = r;
        for (let c = r.from; c < r.to && !r.cancelled; c++) {
          if (o.chunkDelayMs) await sleep(o.chunkDelayMs);
          const holdLast = o.beforeLast && !heldLast && sent.size === chunks - 1;
          if (gate <= 0 || holdLast) {
            const busy = setInterval(() => send({ t: 'busy', id: r.id }), BUSY_EVERY_MS);
            send({ t: 'busy', id: r.id });
            if (holdLast) {
              heldLast = true;
              await o.beforeLast!();
            }
            while (gate <= 0 && !gone) await new Promise<void>((w) => gateWaiters.push(w));
            clearInterval(busy);
          }
          if (socket.destroyed || gone || r.cancelled) break;
          gate--;
          const start = c * m.chunkBytes;
          const bytes = data.subarray(start, Math.min(m.size, start + m.chunkBytes));
          for (let at = 0; at < bytes.length; at += PACKET_BYTES) {
            const payload = bytes.subarray(at, Math.min(bytes.length, at + PACKET_BYTES));
            const last = at + payload.length >= bytes.length;
            socket.write(encodePacketHead({ flags: last ? FLAG_LAST_IN_CHUNK : 0, requestId: r.id, chunk: c, offset: start + at }, payload));
            socket.write(payload);
          }
          sent.add(c);
          log.push({ peer, chunk: c, at: Date.now() });
        }
        if (!r.cancelled) send({ t: 'done', id: r.id });
        if (sent.size === chunks && o.leaveWhenSent !== false && !gone) {
          // everything went out once: leave (what was written is flushed before the FIN)
          void closeAll(true).then(leave);
        }
      }
      current = null;
      sending = false;
    };

    const decoder = new FrameDecoder({
      onPacket() {
        throw new Error('no packets to a server');
      },
      onMessage(h) {
        switch (h.t) {
          case 'hello':
            peer = typeof h.peer === 'string' ? h.peer : '';
            send({ t: 'hello', v: PROTOCOL_VERSION, peer: peerId, agent: 'fake-seeder', caps: ['bitfield', 'have'] });
            return;
          case 'list':
            send({ t: 'files', id: h.id, files: [{ name, size: m.size, mtime, kind: 'other', cid: m.cid }] });
            return;
          case 'stat':
            if (h.name === name) send({ t: 'entry', id: h.id, name, size: m.size, mtime, kind: 'other', cid: m.cid });
            else send({ t: 'error', id: h.id, code: 'SWARM_ERR_NOT_FOUND', message: 'no such file' });
            return;
          case 'manifest':
            if (h.cid === m.cid) send({ t: 'manifest-ok', id: h.id, cid: m.cid, size: m.size, chunkBytes: m.chunkBytes, chunks }, m.hashes);
            else send({ t: 'error', id: h.id, code: 'SWARM_ERR_NOT_FOUND', message: 'no such content' });
            return;
          case 'interest': {
            if (h.cid !== m.cid) return;
            const bits = Buffer.alloc(Math.ceil(chunks / 8));
            for (const c of partOf(peer)) bits[c >> 3]! |= 1 << (c & 7);
            send({ t: 'bitfield', cid: m.cid, have: bits.toString('base64'), complete: true });
            return;
          }
          case 'get': {
            const id = h.id as number;
            const from = h.from as number;
            const to = h.to as number;
            const mine = new Set(partOf(peer));
            for (let c = from; c < to; c++) {
              const why = !mine.has(c) ? 'not shown to this peer' : reserved.has(c) ? 'already sent once' : null;
              if (why) {
                refused.push({ peer, chunk: c, why });
                send({ t: 'error', id, code: 'SWARM_ERR_NOT_HAVE', message: `chunk ${c}: ${why}` });
                return;
              }
            }
            for (let c = from; c < to; c++) reserved.add(c); // promised now: nobody else gets it
            queue.push({ id, from, to, cancelled: false });
            if (!sending) void sendLoop();
            return;
          }
          case 'cancel':
            // what a cancelled request did not get may be asked for again
            for (const r of [...queue, ...(current ? [current] : [])]) {
              if (r.id !== h.id) continue;
              r.cancelled = true;
              for (let c = r.from; c < r.to; c++) if (!sent.has(c)) reserved.delete(c);
            }
            return;
          default:
            return; // have, and anything newer: nothing to do
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
    peerId,
    log,
    shown,
    refused,
    left,
    get sentCount() {
      return log.length;
    },
    release(n = Infinity) {
      gate = n === Infinity ? Infinity : Math.max(0, gate) + n;
      for (const w of gateWaiters.splice(0)) w();
    },
    close: () => closeAll(false),
  };
}
