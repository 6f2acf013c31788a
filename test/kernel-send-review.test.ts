/**
 * Hostile review of the kernel serving path (kernel-send.ts, write-gate.ts, sender.ts' sendByKernel):
 * what a peer can make a real serving node do to its own framing and to its own reading.
 *
 *  - a piece that fails after part of it went out (the file shrank under the kernel) must not be
 *    followed by frames: they would land inside the cut packet and every reply after it would be
 *    read as payload (the connection hung, desynchronised). The connection ends instead.
 *  - frames held by the gate that paused the session's reading (more than the reply window) must
 *    resume it once the gate lets them go, even when the socket takes them at once and Node
 *    never says 'drain' (the connection stopped reading requests for good).
 *  - a piece never starts on a socket Node has already destroyed (its descriptor number may belong
 *    to another connection by then), even while the session has not yet heard 'close'.
 */
import t, { type Test } from 'tap';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { kernelSend } from '../lib/native/sendfile.js';
import { kernelStats, socketFd } from '../lib/peer/kernel-send.js';
import { RangeSender, type SenderHooks } from '../lib/peer/sender.js';
import type { ChunkSource, SourceReader } from '../lib/peer/source.js';
import type { Manifest } from '../lib/manifest.js';
import { serve } from '../lib/serve.js';
import { InlineChunkPool } from '../lib/pool.js';
import { FrameDecoder, encodeFrameBuffer, type Header } from '../lib/protocol/frame.js';
import { helloMessage } from '../lib/protocol/messages.js';
import { sum16 } from '../lib/protocol/checksum.js';
import { PACKET_PAYLOAD_BYTES } from '../lib/constants.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import { socketPair } from './helpers/wire.js';

const MiB = 1 << 20;
const skip = kernelSend() ? false : 'the native sendfile helper is not built here';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(10)) if (pred()) return true;
  return pred();
}

/** A serving node over one file of `size` random bytes; its peer port and the file's path and cid. */
async function served(t: Test, size: number, seed: number) {
  const dir = tempDir(t);
  const file = path.join(dir, 'big.bin');
  writeFileSync(file, randomBytes(prng(seed), size));
  const h = await serve(dir, { port: 0, noTracker: true, pool: new InlineChunkPool(), watch: false });
  t.teardown(() => h.close({ graceful: false }));
  return { port: h.port, file };
}

/** A raw client that does not read until told: the frames it got, whether its socket ended. */
async function client(t: Test, port: number) {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  socket.pause();
  const got = { messages: [] as Header[], packets: 0, ended: false, partialAtEnd: -1 };
  const dec = new FrameDecoder(
    {
      onMessage: (h) => void got.messages.push(h),
      onPacket: () => void got.packets++,
    },
    { maxBodyBytes: 4 * MiB },
  );
  socket.on('data', (d: Buffer) => {
    try {
      dec.push(d);
    } catch {
      socket.destroy();
    }
  });
  socket.on('end', () => (got.partialAtEnd = dec.buffered));
  socket.on('close', () => (got.ended = true));
  const send = (...hs: Header[]) => socket.write(Buffer.concat(hs.map((h) => encodeFrameBuffer(h))));
  send(helloMessage({ peer: 'ab12cd34ab12cd34', agent: 'review/1' }));
  return { socket, got, send };
}

async function cidOf(t: Test, port: number, name: string): Promise<string> {
  const c = await client(t, port);
  c.socket.resume();
  c.send({ t: 'stat', id: 1, name });
  t.ok(await until(() => c.got.messages.some((m) => m.t === 'entry'), 5_000), 'stat answered');
  c.socket.destroy();
  return String(c.got.messages.find((m) => m.t === 'entry')!.cid);
}

/** A client that asked for all of a `mib` MiB file (request `id`) and reads nothing: the kernel waits on the full socket. */
async function blockedGet(t: Test, mib: number, seed: number, id: number) {
  const s = await served(t, mib * MiB, seed);
  const cid = await cidOf(t, s.port, 'big.bin');
  const c = await client(t, s.port);
  const waits = kernelStats.waits;
  c.send({ t: 'get', id, cid, from: 0, to: mib });
  t.ok(await until(() => kernelStats.waits > waits, 10_000), 'the kernel waits on the full socket, mid-piece');
  return { s, c };
}

t.test('kernel path review', { skip }, async (t) => {
  t.test('the file shrinks under a piece held on a full socket: no frame is cut into the packet, the connection ends', async (t) => {
    const { s, c } = await blockedGet(t, 64, 31, 7);
    truncateSync(s.file, 0);
    c.socket.resume();
    await sleep(500);
    c.send({ t: 'stat', id: 9, name: 'big.bin' });
    // either the replies come as frames (the stream is whole) or the connection ends; before the
    // fix the error and the entry were swallowed as payload of the cut packet and it hung
    const ok = await until(() => c.got.ended || c.got.messages.some((m) => m.t === 'entry' && m.id === 9), 5_000);
    t.ok(ok, `the stream stays framed or ends (ended ${c.got.ended}, frames ${c.got.messages.map((m) => m.t).join(',')}, packets ${c.got.packets})`);
  });

  t.test('replies held by the gate beyond the reply window: reading resumes once they are out', async (t) => {
    const { c } = await blockedGet(t, 32, 32, 1);
    // ~300 KiB of small replies, all held by the gate: the session stops reading requests
    const stats: Header[] = [];
    for (let i = 0; i < 2_000; i++) stats.push({ t: 'stat', id: 100 + i, name: 'big.bin' });
    c.send(...stats);
    await sleep(500);
    c.socket.resume();
    t.ok(await until(() => c.got.messages.some((m) => m.t === 'done'), 15_000), 'the get is done');
    c.send({ t: 'stat', id: 99_999, name: 'big.bin' });
    const answered = await until(() => c.got.messages.some((m) => m.t === 'entry' && m.id === 99_999), 5_000);
    const entries = c.got.messages.filter((m) => m.t === 'entry').length;
    t.ok(answered, `every request is read and answered (${entries} of 2001 entries)`);
  });

  t.test('the peer half-closes while a piece waits on a full socket: our end comes after whole packets', async (t) => {
    const s = await served(t, 64 * MiB, 34);
    const cid = await cidOf(t, s.port, 'big.bin');
    const c = await client(t, s.port);
    const waits = kernelStats.waits;
    c.send({ t: 'get', id: 7, cid, from: 0, to: 64 });
    t.ok(await until(() => kernelStats.waits > waits, 10_000), 'the kernel waits on the full socket, mid-piece');
    c.socket.end(); // a framed peer's end is the server's end too (session.ts)
    await sleep(200);
    c.socket.resume();
    t.ok(await until(() => c.got.partialAtEnd >= 0, 5_000), 'the server ended too');
    t.equal(c.got.partialAtEnd, 0, `no cut packet before the end (${c.got.partialAtEnd} bytes of one, ${c.got.packets} whole packets)`);
  });

  t.test('a piece is never started on a socket Node destroyed while the session has not heard close yet', async (t) => {
    const size = 3 * MiB;
    const dir = tempDir(t);
    const file = path.join(dir, 'f.bin');
    const data = randomBytes(prng(33), size);
    writeFileSync(file, data);
    const per = MiB / PACKET_PAYLOAD_BYTES;
    const sums = new Uint16Array(3 * per);
    for (let k = 0; k < 3 * per; k++) sums[k] = sum16(data.subarray(k * PACKET_PAYLOAD_BYTES, (k + 1) * PACKET_PAYLOAD_BYTES));
    const m: Manifest = { cid: 'ef'.repeat(32), size, chunkBytes: MiB, hashes: Buffer.alloc(0) };
    const fd = openSync(file, 'r');
    t.teardown(() => closeSync(fd));
    const reader: SourceReader = {
      read: async () => 0,
      checkUnchanged() {},
      async close() {},
      lend: () => ({ fd, release() {} }),
    };
    const source: ChunkSource = { manifest: m, complete: true, has: () => true, bitfield: () => new Uint8Array(0), open: async () => reader, packetSums: (c) => sums.subarray(c * per, (c + 1) * per) };
    const { a, b } = await socketPair(t);
    b.resume();
    // as session.ts: closed once the socket says 'close' (or 'error')
    let closed = false;
    a.on('close', () => (closed = true));
    let grant: () => void = () => {};
    const slotFor1 = new Promise<void>((r) => (grant = r));
    let sent0 = false;
    const hooks: SenderHooks = {
      closed: () => closed,
      blocked: () => {},
      active: () => {},
      slot: async (_id, _cid, chunk) => (chunk === 1 ? slotFor1 : undefined),
      sent: (_cid, chunk) => void (chunk === 0 && (sent0 = true)),
      abandoned: () => {},
    };
    const sender = new RangeSender(a, null, hooks);
    const oldFd = socketFd(a);
    const sending = sender.send({ id: 3, source, from: 0, to: 3, cancelled: false }, reader).then(
      () => null,
      (e: unknown) => e,
    );
    t.ok(await until(() => sent0, 5_000), 'chunk 0 went out; the sender waits for chunk 1 its slot');
    // Node destroys the socket (as after both ends said end, or a write error): its descriptor is
    // closed now, 'close' comes later. Another connection or file takes the number meanwhile:
    a.destroy();
    // a child's stdin: libuv makes its socket pair now, the lowest free number first
    const child = spawn(process.execPath, ['-e', 'let n = 0; process.stdin.on("data", (d) => (n += d.length)); process.stdin.on("end", () => console.log(n))'], { stdio: ['pipe', 'pipe', 'ignore'] });
    t.teardown(() => child.kill('SIGKILL'));
    const vfd = socketFd(child.stdin as unknown as net.Socket);
    if (vfd !== oldFd) {
      child.kill('SIGKILL');
      t.comment(`the number was not reused (${oldFd} -> ${vfd})`);
      return;
    }
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    grant();
    const err = await sending;
    t.match(String(err), /connection closed|null/, `the send ended (${String(err)})`);
    child.stdin!.end();
    await once(child, 'exit');
    t.equal(out.trim(), '0', `not one byte of the file went to the descriptor that took number ${oldFd}`);
  });
});
