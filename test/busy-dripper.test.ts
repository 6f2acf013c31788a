/**
 * Hostile review of `get --give-up` (coordinator.ts giveUpIfStalled): a sole holder that answers
 * `busy` to every request and lets one real chunk through just inside the give-up time kept a
 * download alive at a rate the per-peer trickle rule would cut, for as long as it liked (`busy`
 * excused it from every deadline). Now a request kept waiting for 3 request timeouts is a
 * timeout strike, and the holder goes after three. Control: the same rate without `busy` is cut
 * as a trickle. Deadlines are the defaults scaled by 1/20 so the
 * scenario fits in seconds. All on 127.0.0.1; fake peers close at teardown.
 */
import t, { type Test } from 'tap';
import net from 'node:net';
import { encodeFrame, FrameDecoder, type Header } from '../lib/protocol/frame.js';
import { encodePacketHead, FLAG_LAST_IN_CHUNK } from '../lib/protocol/packet.js';
import { PROTOCOL_VERSION } from '../lib/protocol/messages.js';
import { fullBitfield } from '../lib/scheduling/availability.js';
import { chunksOf, type Manifest } from '../lib/manifest.js';
import { newPeerId } from '../lib/net/identity.js';
import { SwarmError, ERROR_CODES } from '../lib/errors.js';
import { download, fake, MiB, scaled, source, manifestOf } from './helpers/timed-download.js';

const F = 0.05; // first chunk 250 ms, request timeout 1 s, stall 0.5 s: a trickle is < 1 chunk per 2 s
const GIVE_UP_MS = 3_000;
const DRIP_MS = 2_500; // slower than the trickle floor, just inside the give-up time

/** Says `busy` for every request (at once, then every 200 ms) and sends one real chunk every DRIP_MS. */
async function busyDripper(t: Test, data: Buffer, m: Manifest): Promise<{ address: string; chunks: () => number }> {
  let chunks = 0;
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    const send = (h: Header, body?: Uint8Array) => encodeFrame(h, body).forEach((b) => socket.write(b));
    const queue: { id: number; next: number; to: number }[] = [];
    const busy = setInterval(() => !socket.destroyed && queue.forEach((r) => send({ t: 'busy', id: r.id })), 200);
    const drip = setInterval(() => {
      const r = queue[0];
      if (!r || socket.destroyed) return;
      const c = r.next++;
      const bytes = data.subarray(c * m.chunkBytes, Math.min(m.size, (c + 1) * m.chunkBytes));
      for (let at = 0; at < bytes.length; at += 65536) {
        const payload = bytes.subarray(at, at + 65536);
        socket.write(encodePacketHead({ flags: at + payload.length >= bytes.length ? FLAG_LAST_IN_CHUNK : 0, requestId: r.id, chunk: c, offset: c * m.chunkBytes + at }, payload));
        socket.write(payload);
      }
      chunks++;
      if (r.next >= r.to) {
        queue.shift();
        send({ t: 'done', id: r.id });
      }
    }, DRIP_MS);
    timers.add(busy).add(drip);
    socket.on('close', () => (clearInterval(busy), clearInterval(drip), sockets.delete(socket)));
    const decoder = new FrameDecoder({
      onMessage(h) {
        if (h.t === 'hello') send({ t: 'hello', v: PROTOCOL_VERSION, peer: newPeerId(), agent: 'busy-dripper', caps: [] });
        if (h.t === 'stat') send({ t: 'entry', id: h.id, name: h.name, size: m.size, mtime: 1_700_000_000, kind: 'other', cid: m.cid });
        if (h.t === 'manifest') send({ t: 'manifest-ok', id: h.id, cid: m.cid, size: m.size, chunkBytes: m.chunkBytes, chunks: chunksOf(m) }, m.hashes);
        if (h.t === 'interest') send({ t: 'bitfield', cid: m.cid, have: Buffer.from(fullBitfield(chunksOf(m))).toString('base64'), complete: true });
        if (h.t === 'get') {
          queue.push({ id: h.id as number, next: h.from as number, to: h.to as number });
          send({ t: 'busy', id: h.id });
        }
        if (h.t === 'cancel') {
          const i = queue.findIndex((r) => r.id === h.id);
          if (i >= 0) queue.splice(i, 1);
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
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const x of timers) clearInterval(x);
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return { address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`, chunks: () => chunks };
}

t.test('control: the same rate without `busy` is cut as a trickle', async (t) => {
  const { file, data } = source(t, 31, 6 * MiB);
  const m = manifestOf(data);
  const slow = await fake(t, file, m, 'trickle', { trickleBytesPerSec: MiB / (DRIP_MS / 1000), trickleEveryMs: 50 });
  const r = await download(t, [slow.address], 12_000, { ...scaled(F), giveUpMs: GIVE_UP_MS });
  t.comment(`trickler: ${r.error ? r.error.message : 'finished'} after ${r.ms} ms, drops: ${r.dropped.map((d) => d.reason).join('; ')}`);
  t.ok(r.dropped.length > 0 && r.ms < 4_000, 'dropped (trickle or request timeouts) within seconds');
  t.ok(r.error, 'the download did not wait for it');
});

t.test('a sole holder saying `busy` and dripping a chunk per (give-up - e): its requests time out after 3 request timeouts in its queue, it is dropped, the download ends', async (t) => {
  const { data } = source(t, 32, 6 * MiB);
  const m = manifestOf(data);
  const liar = await busyDripper(t, data, m);
  // alone it ends at ~8 s (3 strikes of 3 s waits); the bound leaves room for a loaded machine (a full test run)
  const LIMIT = 20_000;
  const r = await download(t, [liar.address], LIMIT, { ...scaled(F), giveUpMs: GIVE_UP_MS });
  const code = r.error instanceof SwarmError ? r.error.code : String(r.error?.message);
  t.comment(`busy dripper: ${code} after ${r.ms} ms, ${r.chunks} chunks verified (${liar.chunks()} dripped), drops: ${r.dropped.map((d) => d.reason).join('; ') || 'none'}`);
  const ended = r.error instanceof SwarmError && (r.error.code === ERROR_CODES.STALLED || r.error.code === ERROR_CODES.NO_PEERS);
  t.ok(ended, 'the download gives up (STALLED) or loses its only holder (NO_PEERS) instead of running until our outer bound');
  t.ok(r.dropped.some((d) => /waited in its queue/.test(d.reason)), 'the holder was dropped for keeping requests waiting');
  t.ok(r.ms >= LIMIT - 200 || r.error?.message !== `still running after ${LIMIT} ms`, 'bounded by the test');
});
