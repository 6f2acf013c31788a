/**
 * The upload side's acknowledgements and refusals (hostile re-check of lib/peer/session.ts):
 *  - a peer that takes chunks and never acknowledges any is closed after sendStallMs: the upload
 *    slots forget a chunk after their 5 s ack timeout, and the session read its clock from them;
 *  - only a `have` for a chunk we sent it acknowledges: fake `have`s kept a connection that asked
 *    and took nothing open for ever, and a `get` followed at once by a `cancel` made a sybil count
 *    in the upload policy's rarity (requester-chunks.ts);
 *  - refused `get`s are limited per connection; a refused range on a partial source is checked
 *    only up to its first hole, a complete source's not at all.
 * Servers and clients on 127.0.0.1 only; in-memory sources (small chunks) so nothing touches disk.
 */
import t, { type Test } from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { PeerSession, MAX_REFUSED_GETS } from '../lib/peer/session.js';
import { PeerServer } from '../lib/peer/server.js';
import { SentChunks, UploadSlots, MAX_UNACKED_CHUNKS } from '../lib/scheduling/upload-slots.js';
import { RequesterChunks } from '../lib/scheduling/requester-chunks.js';
import { makeManifest } from '../lib/manifest.js';
import { fullBitfield } from '../lib/scheduling/availability.js';
import { SERVE_LIMITS } from '../lib/net/guard.js';
import { localHello } from '../lib/net/identity.js';
import { noLog } from '../lib/log.js';
import { ERROR_CODES } from '../lib/errors.js';
import type { ChunkSource, SourceIndex, SourceReader } from '../lib/peer/source.js';
import { encodeFrameBuffer, type Header } from '../lib/protocol/frame.js';
import { rawClient, type RawClient } from './helpers/raw-client.js';

const CHUNK_BYTES = 64 << 10;
const CHUNKS = 16;

function memorySource(opts: { complete?: boolean; chunks?: number; has?: (c: number) => boolean; open?: () => Promise<SourceReader> } = {}): { index: SourceIndex; src: ChunkSource; cid: string } {
  const chunks = opts.chunks ?? CHUNKS;
  const m = makeManifest(chunks * CHUNK_BYTES, CHUNK_BYTES, Buffer.alloc(chunks * 32, 1));
  const data = Buffer.alloc(chunks <= CHUNKS ? chunks * CHUNK_BYTES : 0, 7);
  const reader: SourceReader = {
    read: async (buf, at, length, position) => data.copy(buf, at, position, Math.min(data.length, position + length)),
    checkUnchanged() {},
    close: async () => {},
  };
  const bits = fullBitfield(chunks);
  const src: ChunkSource = {
    manifest: m,
    complete: opts.complete ?? true,
    has: opts.has ?? ((c) => c >= 0 && c < chunks),
    bitfield: () => bits,
    open: opts.open ?? (async () => reader),
  };
  const index: SourceIndex = { list: () => ({ files: [] }), stat: () => undefined, byCid: (c) => (c === m.cid ? src : undefined), openByName: async () => undefined };
  return { index, src, cid: m.cid };
}

/**
 * Sessions made by hand over one upload policy with a short ack timeout, so the test can run the
 * policy's clock (tick) and ask each session what the guard would (overdue, evictRank).
 */
async function sessions(t: Test, index: SourceIndex, slots: UploadSlots, requesters = new RequesterChunks()) {
  const made: PeerSession[] = [];
  let next = 1;
  const server = net.createServer((socket) => {
    const ctx = { sources: index, log: noLog, upload: null, hello: localHello(null, ['bitfield', 'have']), slots, id: next++, spreads: null, requesters, overlay: null, sync: null };
    made.push(new PeerSession(socket, '127.0.0.1', ctx, () => {}));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const s of made) s.destroy('test over');
    server.close();
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    requesters,
    /** A raw client and the session serving it. */
    async connect(): Promise<{ c: RawClient; s: PeerSession }> {
      const before = made.length;
      const c = await rawClient(t, port);
      await c.waitFor((h) => h.t === 'hello', 3_000);
      return { c, s: made[before]! };
    },
  };
}

/** Send `h` and wait until the session has handled it (a request after it is answered: one connection, in order). */
let probe = 1000;
async function handled(c: RawClient, h: Header): Promise<void> {
  const id = ++probe;
  c.send(h);
  c.send({ t: 'stat', id, name: 'no-such-file' });
  await c.waitFor((m) => m.id === id, 3_000);
}

const stall = SERVE_LIMITS.sendStallMs;

/** True when the server closes `c` within `ms`. */
function closedWithin(c: RawClient, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    c.socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

t.test('sent chunks: a have acknowledges the chunk and the ones sent before it, nothing else; the clock; bounded', async (t) => {
  const k = (c: number) => UploadSlots.key('cid', c);
  const s = new SentChunks();
  t.equal(s.since(), 0);
  s.sent(k(0), 10);
  s.sent(k(1), 20);
  s.sent(k(2), 30);
  t.equal(s.since(), 10, 'waiting since the oldest went out');
  t.notOk(s.ack(k(7), 40), 'a chunk never sent acknowledges nothing');
  t.notOk(s.ack(UploadSlots.key('other', 1), 40), 'nor one of another content');
  t.equal(s.since(), 10, 'and leaves the clock alone');
  t.ok(s.ack(k(1), 25), 'a chunk sent does');
  t.equal(s.size, 1, 'and so does the one sent before it (TCP delivered it first): only chunk 2 is left');
  t.equal(s.since(), 30, 'chunk 2 waits since it went out');
  t.notOk(s.ack(k(0), 50), 'a later have for chunk 0 acknowledges nothing more');
  s.sent(k(3), 60);
  t.ok(s.ack(k(2), 100));
  t.equal(s.since(), 100, 'chunk 3 (sent at 60) waits since the last acknowledgement: a slow peer acknowledging steadily keeps going');
  t.ok(s.ack(k(3), 110));
  t.equal(s.since(), 0, 'nothing waits');
  for (let c = 0; c < MAX_UNACKED_CHUNKS + 10; c++) s.sent(k(c), 1_000 + c);
  t.equal(s.size, MAX_UNACKED_CHUNKS, 'at most MAX_UNACKED_CHUNKS remembered');
  t.equal(s.since(), 1_000, 'the oldest one\'s time is kept although the chunk was forgotten');
  t.ok(s.ack(k(MAX_UNACKED_CHUNKS), 2_000));
  t.equal(s.since(), 1_000 + MAX_UNACKED_CHUNKS + 1);
});

t.test('a peer that takes chunks and acknowledges none is closed after sendStallMs, past the slots\' ack timeout; a fake have does not help it', async (t) => {
  const { index, cid } = memorySource();
  const slots = new UploadSlots(4, 100);
  const h = await sessions(t, index, slots);
  const { c, s } = await h.connect();
  c.send({ t: 'get', id: 1, cid, from: 0, to: 3 });
  t.ok(await c.waitFor((m) => m.t === 'done' && m.id === 1, 5_000), 'three chunks sent');
  const now = Date.now();
  slots.tick(now + 1_000);
  t.equal(slots.inTransit, 0, 'the upload slots let the chunks go after their ack timeout');
  t.equal(s.overdue(now + stall - 1_000, SERVE_LIMITS), null, 'not before sendStallMs');
  t.match(s.overdue(now + stall + 1_000, SERVE_LIMITS), /did not acknowledge a chunk sent to it/, 'closed after sendStallMs (it was never closed: the clock came from the slots)');
  t.ok(s.evictRank(now + 3_000) >= 3e12, 'and ranks with stuck connections for eviction when the server is full');
  await handled(c, { t: 'have', cid, chunks: [9, 10] });
  t.match(s.overdue(now + stall + 1_000, SERVE_LIMITS), /did not acknowledge/, 'a have for chunks never sent to it acknowledges nothing');
  await handled(c, { t: 'have', cid, chunks: [1] });
  t.match(s.overdue(now + stall + 1_000, SERVE_LIMITS), /did not acknowledge/, 'chunk 1 (and 0 before it) acknowledged; chunk 2 still not');
  await handled(c, { t: 'have', cid, chunks: [2] });
  t.equal(s.overdue(now + stall + 1_000, SERVE_LIMITS), null, 'everything acknowledged');
  t.ok(s.evictRank(now + 3_000) < 3e12, 'nor ranked as stuck');
});

t.test('a cancel that crosses chunks already sent whole: they wait for no acknowledgement (the connection stays) and free their slots; other requests\' chunks still count', async (t) => {
  const { index, cid } = memorySource();
  const slots = new UploadSlots(4, 60_000);
  const h = await sessions(t, index, slots);
  const { c, s } = await h.connect();
  c.send({ t: 'get', id: 1, cid, from: 0, to: 2 });
  t.ok(await c.waitFor((m) => m.t === 'done' && m.id === 1, 5_000), 'request 1 sent whole');
  c.send({ t: 'get', id: 2, cid, from: 5, to: 7 });
  t.ok(await c.waitFor((m) => m.t === 'done' && m.id === 2, 5_000), 'request 2 sent whole');
  const now = Date.now();
  t.equal(slots.inTransit, 4, 'four chunks hold slots until acknowledged');
  t.match(s.overdue(now + stall + 1_000, SERVE_LIMITS), /did not acknowledge/, 'unacknowledged: would be closed after sendStallMs');
  await handled(c, { t: 'cancel', id: 1 });
  t.equal(slots.inTransit, 2, 'the cancel (crossing the chunks on the wire) freed request 1\'s slots');
  t.match(s.overdue(now + stall + 1_000, SERVE_LIMITS), /did not acknowledge/, 'request 2\'s chunks still wait for an acknowledgement');
  await handled(c, { t: 'cancel', id: 2 });
  t.equal(slots.inTransit, 0, 'and request 2\'s');
  t.equal(s.overdue(now + stall + 1_000, SERVE_LIMITS), null, 'nothing waits for an acknowledgement: the connection stays');
  await handled(c, { t: 'cancel', id: 3 });
  t.equal(s.overdue(now + stall + 1_000, SERVE_LIMITS), null, 'a cancel for an unknown request changes nothing');
});

t.test('a newcomer\'s first chunk goes FIRST_WAIT_MS after it asked, not at the next tick of the policy, and a withdrawn first chunk leaves it a newcomer', async (t) => {
  const { index, cid } = memorySource();
  // no timer ticks this policy (sessions() does not): only the session's own wake-up can let it go
  const firstWaitMs = 300;
  const slots = new UploadSlots(1, 60_000, undefined, firstWaitMs);
  const h = await sessions(t, index, slots);
  const a = await h.connect();
  a.c.send({ t: 'get', id: 1, cid, from: 0, to: 1 });
  t.ok(await a.c.waitFor((m) => m.t === 'done' && m.id === 1, 5_000), 'the first peer takes the one slot and never acknowledges');
  const b = await h.connect();
  const asked = Date.now();
  b.c.send({ t: 'get', id: 1, cid, from: 1, to: 2 });
  t.ok(await b.c.waitFor((m) => m.t === 'busy' && m.id === 1, 3_000), 'a newcomer waits (busy)');
  t.ok(await b.c.waitFor((m) => m.t === 'done' && m.id === 1, 3_000), 'its first chunk went beside the slot');
  t.ok(Date.now() - asked >= firstWaitMs - 5, 'after it waited firstWaitMs');
  const c = await h.connect();
  c.c.send({ t: 'get', id: 1, cid, from: 2, to: 3 });
  t.ok(await c.c.waitFor((m) => m.t === 'busy' && m.id === 1, 3_000), 'another newcomer waits');
  await handled(c.c, { t: 'cancel', id: 1 });
  t.ok(slots.newcomer(3), 'its withdrawn first chunk was never sent: still a newcomer (session 3 of this test)');
  c.c.send({ t: 'get', id: 2, cid, from: 3, to: 4 });
  t.ok(await c.c.waitFor((m) => m.t === 'done' && m.id === 2, 3_000), 'its next request\'s chunk goes as a first chunk');
  t.equal(c.c.messages.filter((m) => m.t === 'done' && m.id === 1).length, 0, 'the cancelled one never went');
});

t.test('the "took nothing" clock: runs while a peer asks, stops while it asks nothing or waits for our slot with everything acknowledged', async (t) => {
  const { index, cid } = memorySource();
  const slots = new UploadSlots(1, 60_000);
  const h = await sessions(t, index, slots);
  const short = { ...SERVE_LIMITS, sendStallMs: 300 };
  const a = await h.connect();
  const b = await h.connect();
  b.c.send({ t: 'get', id: 1, cid, from: 2, to: 3 });
  t.ok(await b.c.waitFor((m) => m.t === 'done' && m.id === 1, 5_000), 'b got chunk 2');
  await handled(b.c, { t: 'have', cid, chunks: [2] });
  a.c.send({ t: 'get', id: 1, cid, from: 0, to: 1 });
  t.ok(await a.c.waitFor((m) => m.t === 'done', 5_000), 'a got chunk 0 and holds the one slot (it does not acknowledge)');
  await new Promise((r) => setTimeout(r, 400)); // b asks nothing for longer than `short`
  b.c.send({ t: 'get', id: 2, cid, from: 1, to: 2 });
  t.ok(await b.c.waitFor((m) => m.t === 'busy' && m.id === 2, 3_000), 'b waits for the slot');
  t.equal(b.s.overdue(Date.now(), short), null, 'the 400 ms b asked nothing do not count');
  t.equal(b.s.overdue(Date.now() + stall + 1_000, SERVE_LIMITS), null, 'waiting for our slot with everything acknowledged: its clock is paused (slow honest peers behind the laggards\' slot were closed)');
  t.match(a.s.overdue(Date.now() + stall + 1_000, SERVE_LIMITS), /did not acknowledge/, 'and so is the slot holder that does not acknowledge');
  // cancel and ask again: a new request does not reset the clock (a sybil could cycle); waiting on our slot pauses it
  await new Promise((r) => setTimeout(r, 200));
  await handled(b.c, { t: 'cancel', id: 2 });
  await new Promise((r) => setTimeout(r, 50));
  t.notOk(b.s.busy, 'b asks nothing now');
  b.c.send({ t: 'get', id: 3, cid, from: 1, to: 2 });
  t.ok(await b.c.waitFor((m) => m.t === 'busy' && m.id === 3, 3_000), 'b waits again');
  await new Promise((r) => setTimeout(r, 150));
  t.equal(b.s.overdue(Date.now(), short), null, 'waiting on us again: still paused');
  a.c.send({ t: 'have', cid, chunks: [0] });
  t.ok(await b.c.waitFor((m) => m.t === 'done' && m.id === 3, 5_000), 'a\'s acknowledgement frees the slot: b is served');
  await handled(b.c, { t: 'have', cid, chunks: [1] });
  t.equal(b.s.overdue(Date.now(), short), null, 'and b\'s acknowledgement stops its clock');
});

t.test('fake haves do not keep open a connection that asks and takes nothing (guard, sendStallMs 600 ms)', async (t) => {
  // the source never opens: the request is taken and nothing can go out
  const { index, cid } = memorySource({ open: () => new Promise<SourceReader>(() => {}) });
  const closed: string[] = [];
  const server = new PeerServer(index, { limits: { sendStallMs: 600 }, log: (event, f) => event === 'peer-closed' && closed.push(String(f?.reason)) });
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close({ graceful: false } as never));
  const c = await rawClient(t, port);
  await c.waitFor((h) => h.t === 'hello', 3_000);
  c.send({ t: 'get', id: 1, cid, from: 0, to: 1 });
  const started = Date.now();
  const faking = setInterval(() => c.send({ t: 'have', cid, chunks: [5] }), 100);
  t.teardown(() => clearInterval(faking));
  const gone = await closedWithin(c, 6_000);
  clearInterval(faking);
  t.ok(gone, `closed after ${Date.now() - started} ms of fake haves (they kept it open for ever)`);
  t.match(closed, [/asked for chunks and took none/], `reason: ${closed}`);
});

t.test('a get followed at once by a cancel, then fake haves: not counted in the requesters\' chunks; a peer that took a chunk is', async (t) => {
  const { index, cid } = memorySource();
  const h = await sessions(t, index, new UploadSlots(4, 5_000));
  const all = Buffer.from(fullBitfield(CHUNKS)).toString('base64');
  const sybil = await h.connect();
  sybil.c.send({ t: 'interest', cid, have: all });
  // one write: the cancel is handled before anything can go out
  sybil.c.socket.write(Buffer.concat([frame({ t: 'get', id: 1, cid, from: 0, to: 1 }), frame({ t: 'cancel', id: 1 })]));
  await handled(sybil.c, { t: 'have', cid, chunks: [0, 1, 2, 3] });
  t.equal(h.requesters.holders(cid, 5), 0, 'the sybil\'s bitfield does not count (it counted from its get on)');
  t.equal(h.requesters.sessions(), 1, 'it is known, waiting aside');
  const honest = await h.connect();
  const mine = new Uint8Array(2);
  mine[0] = 1 << 5; // has chunk 5
  honest.c.send({ t: 'interest', cid, have: Buffer.from(mine).toString('base64') });
  honest.c.send({ t: 'get', id: 1, cid, from: 0, to: 1 });
  t.ok(await honest.c.waitFor((m) => m.t === 'done', 5_000));
  t.equal(h.requesters.holders(cid, 5), 0, 'not before it acknowledges');
  await handled(honest.c, { t: 'have', cid, chunks: [0] });
  t.equal(h.requesters.holders(cid, 5), 1, 'its chunks count once it acknowledged one we sent');
  t.equal(h.requesters.holders(cid, 0), 1, 'and so does the one it acknowledged');
});

const frame = (h: Header): Buffer => encodeFrameBuffer(h);

t.test('refused gets: a partial source checked up to its first hole; more than MAX_REFUSED_GETS close the connection; a complete source is not checked', async (t) => {
  const N = 65_536;
  const hole = N / 2;
  let looks = 0;
  const partial = memorySource({ complete: false, chunks: N, has: (c) => (looks++, c !== hole && c >= 0 && c < N) });
  const server = new PeerServer(partial.index, {});
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close({ graceful: false } as never));
  const c = await rawClient(t, port);
  await c.waitFor((h) => h.t === 'hello', 3_000);
  c.send({ t: 'get', id: 1, cid: partial.cid, from: 10, to: N });
  t.match(await c.waitFor((m) => m.id === 1, 3_000), { code: ERROR_CODES.NOT_HAVE });
  t.ok(looks <= N / 2 + 2, `refused at the hole: ${looks} chunks looked at`);
  looks = 0;
  c.send({ t: 'get', id: 2, cid: partial.cid, from: 0, to: hole + 1 });
  t.match(await c.waitFor((m) => m.id === 2, 3_000), { code: ERROR_CODES.NOT_HAVE });
  t.ok(looks <= 2, `a range ending in the hole: ${looks} looks`);
  for (let i = 3; i < 3 + MAX_REFUSED_GETS; i++) c.send({ t: 'get', id: i, cid: partial.cid, from: 0, to: N });
  const gone = await closedWithin(c, 3_000);
  t.ok(gone, `closed after more than ${MAX_REFUSED_GETS} refusals`);
  const why = c.messages.find((m) => m.t === 'error' && m.id === undefined);
  t.match(why, { code: ERROR_CODES.LIMIT, message: /requests refused/ }, `and told why: ${why?.message}`);
  t.equal(c.messages.filter((m) => m.t === 'error' && m.id !== undefined).length, MAX_REFUSED_GETS + 1, 'every request up to the one over the limit was answered, none after');

  let completeLooks = 0;
  const complete = memorySource({ chunks: N, has: () => (completeLooks++, true), open: () => new Promise<SourceReader>(() => {}) });
  const server2 = new PeerServer(complete.index, {});
  const p2 = await server2.listen(0, '127.0.0.1');
  t.teardown(() => server2.close({ graceful: false } as never));
  const c2 = await rawClient(t, p2.port);
  await c2.waitFor((h) => h.t === 'hello', 3_000);
  await handled(c2, { t: 'get', id: 1, cid: complete.cid, from: 0, to: N });
  t.equal(completeLooks, 0, 'a complete source has every chunk: the range is not walked');

  // contents that are gone (files that changed under a sync's pipelined requests) are refused
  // cheaply and often in honest use: they do not count
  const c3 = await rawClient(t, p2.port);
  await c3.waitFor((h) => h.t === 'hello', 3_000);
  const gone3 = 'ab'.repeat(32);
  for (let i = 1; i <= MAX_REFUSED_GETS * 2; i++) c3.send({ t: 'get', id: i, cid: gone3, from: 0, to: 1 });
  t.match(await c3.waitFor((m) => m.id === MAX_REFUSED_GETS * 2, 3_000), { code: ERROR_CODES.NOT_FOUND }, 'unknown contents refused');
  t.notOk(await closedWithin(c3, 300), `and ${MAX_REFUSED_GETS * 2} such refusals do not close the connection`);
});

t.test('TakeAccount (pure): the clock pauses while idle or waiting on us with nothing unacknowledged; acks restart it; refusals count per window', async (t) => {
  const { TakeAccount, MAX_REFUSED_GETS: max, REFUSALS_WINDOW_MS: win } = await import('../lib/peer/take-account.js');
  const a = new TakeAccount();
  t.equal(a.tookNothingFor(1_000, false), 0, 'not counting before it ever asked');
  a.asking(1_000);
  t.equal(a.tookNothingFor(1_500, false), 500, 'runs while it asks');
  t.equal(a.tookNothingFor(1_500, true), 0, 'paused while it waits for our slot with nothing unacknowledged');
  a.sent('c:1', 1_600);
  t.equal(a.tookNothingFor(1_700, true), 700, 'but not while a chunk we sent it is unacknowledged');
  t.notOk(a.ack('c:9', 1_800), 'a have for a chunk never sent acknowledges nothing');
  t.equal(a.tookNothingFor(1_800, false), 800, 'and does not restart the clock');
  t.ok(a.ack('c:1', 1_900), 'a have for a chunk we sent acknowledges it');
  t.equal(a.tookNothingFor(2_000, false), 100, 'and restarts the clock');
  a.idle(2_000);
  a.asking(5_000);
  t.equal(a.tookNothingFor(5_050, false), 150, 'an idle spell does not count; asking again goes on from where it stopped');
  let over = 0;
  for (let i = 0; i < max + 1; i++) if (a.refused(10_000)) over++;
  t.equal(over, 1, `refusal ${max + 1} within a window is one too many`);
  t.notOk(a.refused(10_000 + win + 1), 'a new window starts from zero');
});
