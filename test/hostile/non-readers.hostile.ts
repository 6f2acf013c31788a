/**
 * Full scale: 300 connections that ask for the whole 64 MiB file and never read, from six
 * addresses (50 each, under the per-address cap), against `swarm serve` with default limits.
 * Slots stay capped at 256, memory stays bounded, an honest `swarm get` is served meanwhile (a
 * stuck connection is evicted), and the send-stall deadline (30 s) closes every one of them and
 * their files.
 */
import t from 'tap';
import { Crowd, frame, helloBytes, loopbackAddresses, waitUntil } from '../helpers/attack.js';
import { PeerClient } from '../../lib/peer/client.js';
import { Sampler, gauges, honestCliGet, mib, startServeChild } from './common.js';

t.test('300 getters that never read, against default limits', async (t) => {
  const s = await startServeChild(t);
  const c = new PeerClient('127.0.0.1', s.port);
  await c.connect();
  const cid = (await c.stat('big.bin')).cid;
  c.destroy();
  await waitUntil(() => gauges(s.pid).sockets <= 4, 2_000);
  const base = gauges(s.pid);
  const sampler = new Sampler(t, s.pid, 100);
  const crowd = new Crowd(t);
  const request = Buffer.concat([helloBytes(), frame({ t: 'get', id: 1, cid, from: 0, to: 64 })]);
  const getters = await crowd.connectMany(s.port, 300, { localAddresses: loopbackAddresses(6, 2), concurrency: 100, read: false, first: request });
  t.equal(getters.length, 300, 'all 300 connected (the server refuses or evicts past its cap)');
  t.ok(await waitUntil(() => sampler.sample().files - base.files >= 200, 10_000), `the getters hold open files (${sampler.sample().files - base.files})`);
  await new Promise((r) => setTimeout(r, 2_000)); // stuck for a while now
  const during = sampler.sample();
  const honest = await honestCliGet(t, s);
  t.equal(honest.code, 0, `an honest swarm get exits 0 while non-readers hold the slots (${honest.output})`);
  t.ok(honest.ok, 'with the right bytes');
  const stallStart = Date.now();
  t.ok(await waitUntil(() => sampler.sample().sockets <= base.sockets && sampler.sample().files <= base.files, 40_000, 250), 'the send-stall deadline closes every non-reader and its file');
  const closedAfter = (Date.now() - stallStart) / 1000;
  const end = sampler.stop();
  t.comment(
    `HOSTILE non-readers: 300 getters; serve sockets base ${base.sockets}, during ${during.sockets}, peak ${sampler.peak.sockets}, end ${end.sockets}; open files base ${base.files}, peak ${sampler.peak.files}, end ${end.files}; RSS base ${mib(base.rss)}, peak ${mib(sampler.peak.rss)} (+${mib(sampler.peak.rss - base.rss)}); honest get ${honest.seconds.toFixed(1)} s; all closed ${closedAfter.toFixed(1)} s after it`,
  );
  t.ok(sampler.peak.sockets - base.sockets <= 256 + 8, `connections at the peak ≤ 256 (+ refusals in flight): ${sampler.peak.sockets - base.sockets}`);
  t.ok(sampler.peak.rss - base.rss < 256 * 2 ** 20, `RSS grew ${mib(sampler.peak.rss - base.rss)} (< 256 MiB: two 256 KiB warm-up pieces per slot; 1 MiB pieces made it 525 MiB)`);
});
