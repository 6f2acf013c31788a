/**
 * Hostile review 57 of the two-phase round (readers.ts pullAll, dial-plan.ts DialRounds):
 * close() during the drawn phase, a peer that says hello and then nothing, `--once`'s `more`.
 */
import t from 'tap';
import net from 'node:net';
import { tempDir } from './helpers/tmp.js';
import { syncPeer as peer } from './helpers/sync-peers.js';
import { DIALS_AT_ONCE, DialRounds } from '../lib/sync/dial-plan.js';
import { FrameDecoder, encodeFrame, type Header } from '../lib/protocol/frame.js';
import { PROTOCOL_VERSION } from '../lib/protocol/messages.js';
import { newPeerId } from '../lib/net/identity.js';

type T = { teardown(fn: () => unknown): void };

/** `n` "open members" on loopback: hello after `helloMs`; they answer the index (empty) unless `silent`. */
async function fakes(t: T, n: number, o: { helloMs: number; silent?: boolean }): Promise<{ ports: number[]; open: () => number; accepted: () => number }> {
  const sockets = new Set<net.Socket>();
  const servers: net.Server[] = [];
  let accepted = 0;
  for (let i = 0; i < n; i++) {
    const id = newPeerId();
    const s = net.createServer((sock) => {
      accepted++;
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.on('error', () => {});
      const send = (h: Header) => encodeFrame(h).forEach((b) => sock.write(b));
      const d = new FrameDecoder({
        onPacket() {},
        onMessage(h) {
          if (h.t === 'hello') setTimeout(() => !sock.destroyed && send({ t: 'hello', v: PROTOCOL_VERSION, peer: id, agent: 'junk', caps: [] }), o.helloMs);
          if (h.t === 'sync-index' && !o.silent) send({ t: 'sync-entries', id: h.id, entries: [], version: 0 });
        },
      });
      sock.on('data', (b: Buffer) => {
        try {
          d.push(b);
        } catch {
          sock.destroy();
        }
      });
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    servers.push(s);
  }
  t.teardown(async () => {
    for (const x of sockets) x.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });
  return { ports: servers.map((s) => (s.address() as net.AddressInfo).port), open: () => sockets.size, accepted: () => accepted };
}

t.test('close() during the drawn phase: no dial starts after it, and no connection is left open', async (t) => {
  const f = await fakes(t, 40, { helloMs: 200 });
  const a = await peer(t, tempDir(t));
  for (const port of f.ports) a.node.book.add({ ip: '127.0.0.1', port }, 'inbound');
  const round = a.sync.syncOnce(); // no known peer: the 40 are drawn (three waves of 16)
  round.catch(() => {});
  await new Promise((r) => setTimeout(r, 100));
  await a.sync.close();
  const atClose = f.accepted();
  await new Promise((r) => setTimeout(r, 1_500));
  t.equal(f.accepted(), atClose, `no dial after close (${f.accepted() - atClose} more; fails now: the round goes on dialling)`);
  t.equal(f.open(), 0, `no connection left open (${f.open()} open; fails now: read after close, watched, never destroyed)`);
});

t.test('16 drawn peers that say hello and then nothing do not hold a round for the index time-out (15 s)', async (t) => {
  const f = await fakes(t, DIALS_AT_ONCE, { helloMs: 0, silent: true });
  const a = await peer(t, tempDir(t));
  for (const port of f.ports) a.node.book.add({ ip: '127.0.0.1', port }, 'inbound');
  const t0 = Date.now();
  await a.sync.syncOnce();
  const ms = Date.now() - t0;
  t.ok(ms < 8_000, `the round took ${ms} ms (fails now: ~15 s; the 3 s hello wait is passed by saying hello)`);
});

t.test('--once (pure): 100 junk addresses that each hold a dial 15 s are dialled once, not again in later rounds as their backoff runs out', async (t) => {
  const key = (p: string) => p;
  const rounds = new DialRounds<string>(key);
  (rounds as unknown as { startOnce?: () => void }).startOnce?.();
  const listed = Array.from({ length: 100 }, (_, i) => `junk${i}`);
  const dialled = new Map<string, number>();
  let now = 1_000_000;
  let n = 1;
  for (;;) {
    const { known, drawn } = rounds.plan([], [], listed, () => false, now);
    const peers = [...known, ...drawn];
    // waves of DIALS_AT_ONCE, each failing after 15 s (hello, then no answer to the index)
    for (let i = 0; i < peers.length; i += DIALS_AT_ONCE) {
      now += 15_000;
      for (const p of peers.slice(i, i + DIALS_AT_ONCE)) {
        dialled.set(p, (dialled.get(p) ?? 0) + 1);
        rounds.backoff.failed(p, now);
      }
    }
    if (!rounds.more || n >= 16) break;
    n++;
  }
  (rounds as unknown as { endOnce?: () => void }).endOnce?.();
  const twice = [...dialled.values()].filter((c) => c > 1).length;
  t.equal(dialled.size, 100, 'every address dialled');
  t.equal(twice, 0, `none dialled twice (${twice} were; ${n} rounds, ${(now - 1_000_000) / 1000} s of dials; fails now)`);
});
