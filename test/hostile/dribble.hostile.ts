/**
 * Full scale: the 1 MiB frame header dribbled one byte per write on 8 connections, to the
 * peer port and to the tracker port of `swarm serve` (default limits): refused as soon as the
 * length arrives. Then the largest frame each port accepts (16 KiB requests, 256 KiB tracker
 * messages), after a hello, dribbled on 8 connections each until the frame deadline closes them:
 * serve's memory follows the bytes received, and an honest `swarm get` works meanwhile.
 */
import t from 'tap';
import type net from 'node:net';
import { Crowd, dribble, helloBytes, waitUntil } from '../helpers/attack.js';
import { MAX_REQUEST_HEADER_BYTES } from '../../lib/peer/session.js';
import { MAX_TRACKER_REQUEST_BYTES } from '../../lib/tracker/server.js';
import { Sampler, gauges, honestCliGet, mib, MiB, startServeChild } from './common.js';

function paddedFrame(t: string, bytes: number): Buffer {
  const json = Buffer.from(JSON.stringify({ t, id: 1, pad: 'p'.repeat(bytes - 40) }));
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32BE(json.length, 0);
  return Buffer.concat([prefix, json]);
}

/** Dribble `bytes` on each socket, four one-byte writes per socket per event-loop turn. */
async function dribbleFast(sockets: net.Socket[], bytes: Buffer, ms: number): Promise<number> {
  let total = 0;
  const sent = await dribble(sockets, bytes, { writes: 4, stopAt: Date.now() + ms });
  for (const n of sent) total += n;
  return total;
}

t.test('a 1 MiB header dribbled on 8 connections, then the largest accepted frames', async (t) => {
  const s = await startServeChild(t);
  const base = gauges(s.pid);
  const sampler = new Sampler(t, s.pid, 100);
  const crowd = new Crowd(t);
  const huge = Buffer.alloc(8 + 1024);
  huge.writeUInt32BE(MiB, 0);
  for (const port of [s.port, s.trackerPort]) {
    const conns = await crowd.connectMany(port, 8, {});
    // the tracker reads a frame only after deciding it is not seed-002 JSON: a frame starts with 0
    const sent = await dribbleFast(conns, huge, 3_000);
    t.ok(await waitUntil(() => conns.every((c) => c.destroyed), 3_000), `port ${port === s.port ? 'peer' : 'tracker'}: a declared 1 MiB header is refused at its length (${sent} bytes went in on 8 connections)`);
  }
  // the largest frames each port takes, after a hello, until the frame deadline (10 s) closes them
  const peerConns = await crowd.connectMany(s.port, 8, { first: helloBytes() });
  const trackerConns = await crowd.connectMany(s.trackerPort, 8, { first: helloBytes() });
  const peerFrame = paddedFrame('list', MAX_REQUEST_HEADER_BYTES - 8);
  const trackerFrame = paddedFrame('dir', MAX_TRACKER_REQUEST_BYTES - 8);
  const started = Date.now();
  const dribbling = Promise.all([dribbleFast(peerConns, peerFrame.subarray(0, -1), 14_000), dribbleFast(trackerConns, trackerFrame.subarray(0, -1), 14_000)]);
  await new Promise((r) => setTimeout(r, 3_000));
  const honest = await honestCliGet(t, s);
  const [peerBytes, trackerBytes] = await dribbling;
  t.equal(honest.code, 0, `an honest swarm get exits 0 during the dribble (${honest.output})`);
  t.ok(honest.ok, 'with the right bytes');
  t.ok(await waitUntil(() => [...peerConns, ...trackerConns].every((c) => c.destroyed), 5_000), 'the frame deadline closed every dribbler');
  const seconds = (Date.now() - started) / 1000;
  const end = sampler.stop();
  t.comment(
    `HOSTILE dribble: 1 MiB headers refused at the prefix on both ports; then ${peerBytes} bytes dribbled to the peer port and ${trackerBytes} to the tracker port (one byte per write) over ${seconds.toFixed(1)} s; serve RSS base ${mib(base.rss)}, peak ${mib(sampler.peak.rss)} (+${mib(sampler.peak.rss - base.rss)}), end ${mib(end.rss)}; honest get ${honest.seconds.toFixed(1)} s`,
  );
  t.ok(sampler.peak.rss - base.rss < 64 * MiB, `RSS grew ${mib(sampler.peak.rss - base.rss)} (< 64 MiB; the issue measured 676 MiB)`);
});
