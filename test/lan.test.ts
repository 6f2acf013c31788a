/**
 * LAN discovery (lib/discovery/lan-codec.ts, lib/discovery/lan.ts): the datagram codec and its
 * refusals, then real UDP sockets on the loopback broadcast address. Peers are LanDiscovery
 * instances or a raw dgram socket that writes datagrams by hand (the hostile sender: garbage,
 * forged stops, floods of invented ids, another source address via 127.0.0.2/3).
 *
 * Traffic goes to 127.255.255.255 only (DESIGN.md): on Linux it reaches every socket bound to
 * 0.0.0.0 on the port with reuseAddr. Each test takes its own random UDP port in 20000..31999
 * (below the kernel's ephemeral range, so no other socket of this machine is likely to hold it),
 * waits on events with deadlines, and closes what it opened at teardown.
 */
import t from 'tap';
import dgram from 'node:dgram';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { PROTOCOL_VERSION } from '../lib/protocol/messages.js';
import { decodeAnnouncement, encodeAnnouncement, MAX_LAN_DATAGRAM_BYTES, type LanAnnouncement } from '../lib/discovery/lan-codec.js';
import { LanDiscovery, MAX_STOP_CHECKS, ANSWER_EVERY_MS, type LanEvents, type LanOptions, type LanPeer } from '../lib/discovery/lan.js';

type Teardown = { teardown(fn: () => unknown): void };

const LO_BROADCAST = '127.255.255.255';
const EVENT_MS = 2_000;
const newPort = () => 20_000 + Math.floor(Math.random() * 12_000);
const newId = () => randomBytes(8).toString('hex');
const start = (peer: string, port: number, extra: Record<string, unknown> = {}) => ({ swarm: 'lan', v: PROTOCOL_VERSION, op: 'start', peer, port, ...extra });
const stop = (peer: string, port: number) => ({ swarm: 'lan', v: PROTOCOL_VERSION, op: 'stop', peer, port });

async function lan(t: Teardown, o: Partial<LanOptions> & { port: number }): Promise<LanDiscovery> {
  const d = await LanDiscovery.start({ peerId: newId(), transferPort: 0, broadcast: LO_BROADCAST, intervalMs: 100, ...o });
  t.teardown(() => d.close());
  return d;
}

/** A hand-driven sender: every datagram it writes goes to the loopback broadcast address. */
async function rawSender(t: Teardown, port: number, from = '127.0.0.1'): Promise<{ send(d: Buffer | object): Promise<void> }> {
  const s = dgram.createSocket('udp4');
  t.teardown(() => new Promise<void>((r) => s.close(() => r())));
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, from, () => {
      s.off('error', reject);
      resolve();
    });
  });
  s.setBroadcast(true);
  return {
    send: (d) => new Promise<void>((resolve, reject) => s.send(Buffer.isBuffer(d) ? d : Buffer.from(JSON.stringify(d)), port, LO_BROADCAST, (e) => (e ? reject(e) : resolve()))),
  };
}

/** A listener on the port that records what everyone says (to check what an instance sends). */
async function sniffer(t: Teardown, port: number): Promise<LanAnnouncement[]> {
  const heard: LanAnnouncement[] = [];
  const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  t.teardown(() => new Promise<void>((r) => s.close(() => r())));
  s.on('message', (m) => {
    const d = decodeAnnouncement(m);
    if (d.ok) heard.push(d.announcement);
  });
  await new Promise<void>((resolve) => s.bind(port, '0.0.0.0', () => resolve()));
  return heard;
}

/** The next `ev` whose arguments satisfy `pred`; rejects after `ms`. */
function nextEvent<K extends keyof LanEvents>(d: LanDiscovery, ev: K, pred: (...a: LanEvents[K]) => boolean = () => true, ms = EVENT_MS): Promise<LanEvents[K]> {
  const em = d as unknown as NodeJS.EventEmitter;
  return new Promise((resolve, reject) => {
    const on = (...a: unknown[]) => {
      if (!pred(...(a as LanEvents[K]))) return;
      clearTimeout(timer);
      em.off(ev, on);
      resolve(a as LanEvents[K]);
    };
    const timer = setTimeout(() => {
      em.off(ev, on);
      reject(new Error(`no matching '${ev}' within ${ms} ms`));
    }, ms);
    em.on(ev, on);
  });
}

/** Polling with a deadline, for states no event announces (a datagram read and ignored). */
async function until(pred: () => boolean, ms = EVENT_MS): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

const ids = (ps: LanPeer[]) => ps.map((p) => p.peer);

t.test('codec: round trip, and every refusal with its reason', async (t) => {
  const peer = newId();
  for (const a of [{ op: 'start', peer, port: 7070, v: PROTOCOL_VERSION }, { op: 'stop', peer, port: 1, v: 0 }, { op: 'start', peer, port: 65535, v: 99 }] as LanAnnouncement[]) {
    t.same(decodeAnnouncement(encodeAnnouncement(a)), { ok: true, announcement: a });
  }
  t.ok(encodeAnnouncement({ op: 'start', peer, port: 65535, v: 2 }).length < 128, 'a real announcement is small');
  t.same(decodeAnnouncement(Buffer.from(JSON.stringify(start(peer, 9, { extra: [1, 2], ip: '127.0.0.2' })))), { ok: true, announcement: { op: 'start', peer, port: 9, v: PROTOCOL_VERSION } }, 'extra fields (even "ip") are ignored');
  const sized = (n: number) => {
    const b = Buffer.from(JSON.stringify(start(peer, 9)));
    return Buffer.concat([b, Buffer.alloc(n - b.length, ' ')]); // JSON allows trailing blanks
  };
  t.equal(decodeAnnouncement(sized(MAX_LAN_DATAGRAM_BYTES)).ok, true, 'exactly the limit is accepted');
  const cases: [string, Buffer | object, string][] = [
    ['one byte over the limit', sized(MAX_LAN_DATAGRAM_BYTES + 1), 'too-large'],
    ['60 kB', Buffer.alloc(60_000, 0x7b), 'too-large'],
    ['not JSON', Buffer.from('start 7070'), 'not-json'],
    ['empty', Buffer.alloc(0), 'not-json'],
    ['invalid UTF-8', Buffer.from([0xff, 0xfe, 0x7b]), 'not-json'],
    ['an array', [start(peer, 9)], 'not-object'],
    ['null', Buffer.from('null'), 'not-object'],
    ['a number', Buffer.from('7070'), 'not-object'],
    ['a string', Buffer.from('"lan"'), 'not-object'],
    ['no marker', { v: 2, op: 'start', peer, port: 9 }, 'not-swarm'],
    ['another marker', start(peer, 9, { swarm: 'tcp' }), 'not-swarm'],
    ['marker only inherited', Buffer.from(`{"__proto__":{"swarm":"lan"},"v":2,"op":"start","peer":"${peer}","port":9}`), 'not-swarm'],
    ['no v', start(peer, 9, { v: undefined }), 'bad-version'],
    ['negative v', start(peer, 9, { v: -1 }), 'bad-version'],
    ['fractional v', start(peer, 9, { v: 2.5 }), 'bad-version'],
    ['string v', start(peer, 9, { v: '2' }), 'bad-version'],
    ['unknown op', start(peer, 9, { op: 'pause' }), 'bad-op'],
    ['no op', start(peer, 9, { op: undefined }), 'bad-op'],
    ['upper-case peer id', start(peer.toUpperCase().replace(/^./, 'A'), 9), 'bad-peer'],
    ['short peer id', start(peer.slice(1), 9), 'bad-peer'],
    ['long peer id', start(peer + '0', 9), 'bad-peer'],
    ['numeric peer id', start(peer, 9, { peer: 1234567890123456 }), 'bad-peer'],
    ['port 0', start(peer, 0), 'bad-port'],
    ['port 65536', start(peer, 65536), 'bad-port'],
    ['fractional port', start(peer, 80.5), 'bad-port'],
    ['string port', start(peer, 9, { port: '80' }), 'bad-port'],
    ['no port', start(peer, 9, { port: undefined }), 'bad-port'],
  ];
  for (const [what, input, reason] of cases) {
    const bytes = Buffer.isBuffer(input) ? input : Buffer.from(JSON.stringify(input));
    t.same(decodeAnnouncement(bytes), { ok: false, reason }, what);
  }
  t.throws(() => encodeAnnouncement({ op: 'start', peer, port: 0, v: 2 }), TypeError, 'the encoder refuses what the decoder would');
  t.throws(() => encodeAnnouncement({ op: 'start', peer: 'me', port: 1, v: 2 }), TypeError);
});

t.test('two instances find each other; re-announcements only refresh; close() says stop', async (t) => {
  const port = newPort();
  const a = await lan(t, { port, transferPort: 4001, intervalMs: 50 });
  const aSeesB = nextEvent(a, 'up');
  const b = await lan(t, { port, transferPort: 4002, intervalMs: 50 });
  const bSeesA = nextEvent(b, 'up');
  const [[pb], [pa]] = await Promise.all([aSeesB, bSeesA]);
  t.match(pb, { ip: '127.0.0.1', port: 4002, v: PROTOCOL_VERSION });
  t.match(pa, { ip: '127.0.0.1', port: 4001, v: PROTOCOL_VERSION });
  t.same(ids(a.peers()), [pb.peer], 'a does not list itself');
  let ups = 0;
  a.on('up', () => ups++);
  const first = pb.lastSeen;
  t.ok(await until(() => a.peers()[0]!.lastSeen >= first + 100), 'lastSeen refreshed by re-announcements');
  t.equal(ups, 0, 'no second up for a re-announcement');
  const down = nextEvent(a, 'down');
  await b.close();
  const [gone, reason] = await down;
  t.equal(gone.peer, pb.peer);
  t.equal(reason, 'stop');
  t.same(a.peers(), []);
  t.equal(a.counters.dropped, 0);
});

t.test('listen only (transferPort 0): hears others, asks once, never announces, not even a stop', async (t) => {
  const port = newPort();
  const heard = await sniffer(t, port);
  const quiet = await lan(t, { port, transferPort: 0, intervalMs: 50 });
  const seen = nextEvent(quiet, 'up');
  const loud = await lan(t, { port, transferPort: 4003, intervalMs: 50 });
  const [p] = await seen;
  t.equal(p.port, 4003);
  t.ok(await until(() => heard.filter((h) => h.peer === p.peer).length >= 3), 'three intervals went by');
  await quiet.close();
  await loud.close();
  t.ok(await until(() => heard.some((h) => h.op === 'stop' && h.peer === p.peer)), 'the announcing one said stop');
  t.same(heard.filter((h) => h.peer !== p.peer).map((h) => h.op), ['query'], 'from the listen-only one: one query at start, nothing else');
});

t.test('a peer heard once expires after expireMs, and comes back with up', async (t) => {
  const port = newPort();
  const d = await lan(t, { port, intervalMs: 50, expireMs: 300 });
  const raw = await rawSender(t, port);
  const x = newId();
  const up = nextEvent(d, 'up', (p) => p.peer === x);
  await raw.send(start(x, 5000));
  const [p] = await up;
  const heardAt = performance.now();
  const [gone, reason] = await nextEvent(d, 'down', (q) => q.peer === x);
  const after = performance.now() - heardAt;
  t.equal(reason, 'expired');
  t.same(gone, p, 'down carries the peer as it was');
  t.ok(after >= 290 && after < 1500, `expired after ${Math.round(after)} ms (expireMs 300, sweep 75)`);
  t.same(d.peers(), []);
  const again = nextEvent(d, 'up', (q) => q.peer === x);
  await raw.send(start(x, 5000));
  await again;
  t.same(ids(d.peers()), [x], 'a peer that comes back is up again');
});

t.test('stops: verified, spoofed, from elsewhere, for strangers, without a verifier', async (t) => {
  const port = newPort();
  const calls: LanPeer[] = [];
  let alive = true;
  const d = await lan(t, { port, verifyStop: async (p) => (calls.push(p), alive) });
  const raw = await rawSender(t, port);
  const other = await rawSender(t, port, '127.0.0.2');
  const x = newId();
  const up = nextEvent(d, 'up', (p) => p.peer === x);
  await raw.send(start(x, 5000));
  await up;

  await raw.send(stop(x, 5000));
  t.ok(await until(() => d.counters.spoofedStops === 1), 'a stop the peer denies is spoofed');
  t.match(calls, [{ peer: x, ip: '127.0.0.1', port: 5000 }]);
  t.same(ids(d.peers()), [x], 'and the peer stays');

  let received = d.counters.received;
  await other.send(stop(x, 5000));
  await raw.send(stop(x, 5001));
  await raw.send(stop(newId(), 5000));
  t.ok(await until(() => d.counters.received === received + 3));
  t.equal(d.counters.spoofedStops, 3, 'a stop from another address, or for another port, is spoofed');
  t.equal(calls.length, 1, 'without asking the peer');
  t.same(ids(d.peers()), [x], 'a stop for an unknown peer changes nothing');

  // found alive a moment ago: another stop for it is the same forgery, and costs no probe
  received = d.counters.received;
  await raw.send(stop(x, 5000));
  t.ok(await until(() => d.counters.received === received + 1));
  t.equal(calls.length, 1, 'no probe again within ALIVE_TRUST_MS');
  t.equal(d.counters.spoofedStops, 4);

  alive = false;
  const z = newId();
  const upZ = nextEvent(d, 'up', (p) => p.peer === z);
  await raw.send(start(z, 5002));
  await upZ;
  const down = nextEvent(d, 'down');
  await raw.send(stop(z, 5002));
  t.same((await down).map((v) => (typeof v === 'string' ? v : v.peer)), [z, 'stop'], 'a stop the peer does not deny removes it');
  t.equal(calls.length, 2);

  const port2 = newPort();
  const plain = await lan(t, { port: port2 });
  const raw2 = await rawSender(t, port2);
  const y = newId();
  const upY = nextEvent(plain, 'up');
  await raw2.send(start(y, 6000));
  await upY;
  const downY = nextEvent(plain, 'down');
  await raw2.send(stop(y, 6000));
  t.equal((await downY)[1], 'stop', 'without verifyStop a stop is believed');
  t.equal(plain.counters.spoofedStops, 0);
});

t.test('a flood of stops starts at most MAX_STOP_CHECKS checks, one per peer', async (t) => {
  const port = newPort();
  let inFlight = 0;
  let most = 0;
  const asked: string[] = [];
  let release!: (v: boolean) => void;
  const held = new Promise<boolean>((r) => (release = r));
  const d = await lan(t, {
    port,
    verifyStop: async (p) => {
      asked.push(p.peer);
      most = Math.max(most, ++inFlight);
      const v = await held;
      inFlight--;
      return v;
    },
  });
  const raw = await rawSender(t, port);
  const peers = Array.from({ length: 20 }, newId);
  for (const x of peers) await raw.send(start(x, 5000));
  t.ok(await until(() => d.peers().length === 20), '20 peers known');
  for (let round = 0; round < 5; round++) for (const x of peers) await raw.send(stop(x, 5000));
  t.ok(await until(() => d.counters.received === 120), 'every stop read');
  t.equal(asked.length, MAX_STOP_CHECKS, 'checks started');
  t.equal(new Set(asked).size, MAX_STOP_CHECKS, 'never two for one peer');
  t.equal(most, MAX_STOP_CHECKS);
  t.equal(d.counters.dropped, (20 - MAX_STOP_CHECKS) * 5, 'stops finding no free check are dropped, repeats of a checked one are not counted');
  let downs = 0;
  d.on('down', () => downs++);
  release(false);
  t.ok(await until(() => downs === MAX_STOP_CHECKS), 'the checked peers leave');
  t.equal(d.peers().length, 20 - MAX_STOP_CHECKS);
  const next = d.peers()[0]!.peer;
  await raw.send(stop(next, 5000));
  t.ok(await until(() => asked.length === MAX_STOP_CHECKS + 1 && downs === MAX_STOP_CHECKS + 1), 'a freed check is used again');
});

t.test('close() during a stop check, twice, and from a child process', async (t) => {
  const port = newPort();
  let release!: (v: boolean) => void;
  const d = await LanDiscovery.start({ peerId: newId(), transferPort: 4004, port, broadcast: LO_BROADCAST, intervalMs: 100, verifyStop: () => new Promise((r) => (release = r)) });
  t.teardown(() => d.close());
  const raw = await rawSender(t, port);
  const x = newId();
  const up = nextEvent(d, 'up', (p) => p.peer === x);
  await raw.send(start(x, 5000));
  await up;
  await raw.send(stop(x, 5000));
  t.ok(await until(() => release !== undefined), 'check in flight');
  let events = 0;
  d.on('down', () => events++);
  const c1 = d.close();
  t.equal(d.close(), c1, 'close() is idempotent');
  await c1;
  release(false);
  await new Promise((r) => setImmediate(r));
  t.equal(events, 0, 'a check finishing after close emits nothing');
  t.same(d.peers(), []);
  t.doesNotThrow(() => d.announceNow(), 'announceNow after close does nothing');
  await d.close();

  // Everything close() must stop (socket, timers) would keep a process alive.
  const lanJs = new URL('../lib/discovery/lan.js', import.meta.url).href;
  const script = `const { LanDiscovery } = await import(${JSON.stringify(lanJs)});
    const d = await LanDiscovery.start({ peerId: '${newId()}', transferPort: 4005, port: ${newPort()}, broadcast: '${LO_BROADCAST}', intervalMs: 20 });
    await new Promise((r) => setTimeout(r, 100));
    await d.close();
    console.log('closed');`;
  const started = Date.now();
  const out = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const child = execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 5_000 }, (err, stdout) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout }),
    );
    t.teardown(() => {
      if (child.exitCode === null && child.pid) process.kill(child.pid);
    });
  });
  t.same(out, { code: 0, stdout: 'closed\n' }, `the child exited on its own after close() (${Date.now() - started} ms)`);
});

t.test('garbage and oversized datagrams are counted, warned about once, and change nothing', async (t) => {
  const port = newPort();
  const d = await lan(t, { port });
  const warnings: string[] = [];
  d.on('warning', (w) => warnings.push(w));
  const raw = await rawSender(t, port);
  const junk: (Buffer | object)[] = [
    Buffer.from('hello'),
    Buffer.alloc(0),
    Buffer.alloc(60_000, 0x20),
    Buffer.from(JSON.stringify(start(newId(), 5000, { pad: 'x'.repeat(600) }))),
    [1, 2, 3],
    start(newId(), 5000, { swarm: 'tcp' }),
    start('not-a-peer-id', 5000),
    start(newId(), 0),
    start(newId(), 5000, { op: 'pause' }),
    start(newId(), 5000, { v: -1 }),
  ];
  for (const j of junk) await raw.send(j);
  t.ok(await until(() => d.counters.received === junk.length), 'all read');
  t.equal(d.counters.dropped, junk.length);
  t.same(d.peers(), []);
  t.equal(warnings.length, 1, 'one warning for the lot (at most one a minute)');
  t.match(warnings[0], /not swarm announcements/);
  const x = newId();
  const up = nextEvent(d, 'up');
  await raw.send(start(x, 5000));
  t.equal((await up)[0].peer, x, 'a valid start after the garbage is still heard');
  t.equal(warnings.length, 1);
});

t.test('a listener that throws does not take the socket handler down', async (t) => {
  const port = newPort();
  const d = await lan(t, { port });
  const warned = nextEvent(d, 'warning');
  d.once('up', () => {
    throw new Error('bug in a listener');
  });
  const raw = await rawSender(t, port);
  await raw.send(start(newId(), 5000));
  t.match((await warned)[0], /bug in a listener/);
  const up = nextEvent(d, 'up');
  await raw.send(start(newId(), 5001));
  await up;
  t.equal(d.peers().length, 2);
});

t.test('bounds: maxPeers in total, maxPeersPerIp per source address', async (t) => {
  const port = newPort();
  const d = await lan(t, { port, maxPeers: 5 });
  let ups = 0;
  d.on('up', () => ups++);
  const warnings: string[] = [];
  d.on('warning', (w) => warnings.push(w));
  const raw = await rawSender(t, port);
  const fresh = Array.from({ length: 20 }, newId);
  for (const x of fresh) await raw.send(start(x, 5000));
  t.ok(await until(() => d.counters.received === 20));
  t.equal(d.peers().length, 5);
  t.equal(ups, 5);
  t.equal(d.counters.full, 15);
  t.equal(warnings.length, 1, 'one warning for the lot');
  t.same(new Set(ids(d.peers())), new Set(fresh.slice(0, 5)), 'the first five are kept');
  const before = d.peers().find((p) => p.peer === fresh[0])!.lastSeen;
  await new Promise((r) => setTimeout(r, 5)); // so a refresh shows in a millisecond clock
  await raw.send(start(fresh[0]!, 5000));
  t.ok(await until(() => d.peers()[0]!.peer === fresh[0] && d.peers()[0]!.lastSeen > before), 'a known peer still refreshes when full');

  const port2 = newPort();
  const e = await lan(t, { port: port2, maxPeersPerIp: 3 });
  const two = await rawSender(t, port2, '127.0.0.2');
  const three = await rawSender(t, port2, '127.0.0.3');
  const flood = Array.from({ length: 6 }, newId);
  for (const x of flood) await two.send(start(x, 5000));
  const y = newId();
  const upY = nextEvent(e, 'up', (p) => p.peer === y);
  await three.send(start(y, 5000));
  t.equal((await upY)[0].ip, '127.0.0.3', 'another address is still heard');
  t.equal(e.counters.full, 3);
  t.same(e.peers().map((p) => p.ip).sort(), ['127.0.0.2', '127.0.0.2', '127.0.0.2', '127.0.0.3']);
  const down = nextEvent(e, 'down');
  await two.send(stop(flood[0]!, 5000));
  await down;
  const upZ = nextEvent(e, 'up');
  await two.send(start(flood[5]!, 5000));
  t.equal((await upZ)[0].peer, flood[5], 'a slot freed by a stop is free again');
});

t.test('a known id from another address is ignored; a new port is a new up', async (t) => {
  const port = newPort();
  const d = await lan(t, { port });
  const raw = await rawSender(t, port);
  const other = await rawSender(t, port, '127.0.0.2');
  const x = newId();
  const up = nextEvent(d, 'up');
  await raw.send(start(x, 5000));
  await up;
  await other.send(start(x, 6000));
  t.ok(await until(() => d.counters.received === 2));
  t.equal(d.counters.dropped, 1);
  t.match(d.peers(), [{ peer: x, ip: '127.0.0.1', port: 5000 }], 'the first holder of the id keeps it');
  let downs = 0;
  d.on('down', () => downs++);
  const moved = nextEvent(d, 'up');
  await raw.send(start(x, 5001));
  t.match((await moved)[0], { peer: x, port: 5001 });
  const newer = nextEvent(d, 'up');
  await raw.send(start(x, 5001, { v: PROTOCOL_VERSION + 1 }));
  t.match((await newer)[0], { peer: x, v: PROTOCOL_VERSION + 1 }, 'another protocol version is kept, for the node to judge');
  t.equal(downs, 0);
  t.equal(d.peers().length, 1);
});

t.test('announceNow(port): a new port, stopping serving, serving again', async (t) => {
  const port = newPort();
  const seer = await lan(t, { port });
  // A long interval, so only announceNow and start() speak during the test.
  const first = nextEvent(seer, 'up');
  const a = await lan(t, { port, transferPort: 4010, intervalMs: 60_000 });
  t.equal((await first)[0].port, 4010, 'start() announces at once');
  const moved = nextEvent(seer, 'up');
  a.announceNow(4011);
  t.equal((await moved)[0].port, 4011);
  const down = nextEvent(seer, 'down');
  a.announceNow(0);
  t.equal((await down)[1], 'stop', 'port 0: a stop goes out');
  const back = nextEvent(seer, 'up');
  a.announceNow(4012);
  t.equal((await back)[0].port, 4012);
  t.throws(() => a.announceNow(70000), { code: 'SWARM_ERR_USAGE' });
  const bye = nextEvent(seer, 'down');
  await a.close();
  t.equal((await bye)[1], 'stop');
});

t.test('start() refuses bad options and an address it cannot bind', async (t) => {
  await t.rejects(LanDiscovery.start({ peerId: 'nope', transferPort: 0 }), { code: 'SWARM_ERR_USAGE' });
  await t.rejects(LanDiscovery.start({ peerId: newId(), transferPort: -1 }), { code: 'SWARM_ERR_USAGE' });
  await t.rejects(LanDiscovery.start({ peerId: newId(), transferPort: 0, intervalMs: 0 }), { code: 'SWARM_ERR_USAGE' });
  // 192.0.2.1 (TEST-NET-1) is on no interface here: binding fails and nothing is sent anywhere.
  await t.rejects(LanDiscovery.start({ peerId: newId(), transferPort: 4020, port: newPort(), bind: '192.0.2.1', broadcast: LO_BROADCAST }), { code: 'SWARM_ERR_LISTEN' });
});

t.test('a query is answered at once, and a flood of queries costs at most one announcement per window', async (t) => {
  const port = newPort();
  const heard = await sniffer(t, port);
  // a long period: any start heard soon after the first is an answer, not the period
  const serving = await lan(t, { port, transferPort: 4010, intervalMs: 60_000 });
  t.ok(await until(() => heard.filter((h) => h.op === 'start').length === 1), 'the first announcement');
  const raw = await rawSender(t, port);
  const asked = Date.now();
  await raw.send({ swarm: 'lan', v: PROTOCOL_VERSION, op: 'query', peer: newId() });
  t.ok(await until(() => heard.filter((h) => h.op === 'start').length === 2), 'a query is answered with a start');
  t.ok(Date.now() - asked < 1_500, 'within the answer window, not the 60 s period');
  for (let i = 0; i < 100; i++) await raw.send({ swarm: 'lan', v: PROTOCOL_VERSION, op: 'query', peer: newId() });
  t.ok(await until(() => heard.filter((h) => h.op === 'start').length === 3), 'the queries that came within the window get one answer when it ends');
  await new Promise((r) => setTimeout(r, ANSWER_EVERY_MS + 300));
  t.equal(heard.filter((h) => h.op === 'start').length, 3, '100 queries: one more announcement, not 100');
  t.equal(serving.peers().length, 0, 'a query adds no peer');
});
