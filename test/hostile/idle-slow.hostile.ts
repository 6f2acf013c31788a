/**
 * Full scale: 400 idle or 1-byte-per-second connections (more than serve's 256 slots, from eight
 * addresses so the per-address cap of 64 is not what stops them) against `swarm serve` with
 * default limits, topped up as the server closes them. Slots stay capped, an honest `swarm get`
 * is served during the attack (eviction), and once the attackers stop coming, the handshake
 * deadline closes every one of them.
 */
import t from 'tap';
import { Crowd, dribble, helloBytes, loopbackAddresses, waitUntil } from '../helpers/attack.js';
import { Sampler, gauges, honestCliGet, mib, startServeChild } from './common.js';

t.test('400 idle and slow connections against default limits', async (t) => {
  const s = await startServeChild(t);
  const base = gauges(s.pid);
  const sampler = new Sampler(t, s.pid, 50);
  const crowd = new Crowd(t);
  const addrs = loopbackAddresses(8, 2);
  const started = Date.now();
  const idle = await crowd.connectMany(s.port, 300, { localAddresses: addrs, concurrency: 100 });
  const slow = await crowd.connectMany(s.port, 100, { localAddresses: addrs, concurrency: 100 });
  const dribbling = dribble(slow, helloBytes(), { intervalMs: 1_000, stopAt: Date.now() + 15_000 });
  // a persistent attacker: whatever the server closes is opened again, for 8 s
  let topUps = 0;
  const topUp = setInterval(() => {
    const missing = 400 - crowd.open;
    if (missing > 0 && Date.now() - started < 8_000) {
      topUps += missing;
      void crowd.connectMany(s.port, missing, { localAddresses: addrs, concurrency: 50 });
    }
  }, 200);
  t.teardown(() => clearInterval(topUp));
  t.ok(await waitUntil(() => sampler.sample().sockets - base.sockets >= 250, 5_000), 'the attackers hold (nearly) every slot');
  const honest = await honestCliGet(t, s);
  t.equal(honest.code, 0, `an honest swarm get exits 0 during the attack (${honest.output})`);
  t.ok(honest.ok, 'with the right bytes');
  clearInterval(topUp);
  const closedAt = Date.now();
  t.ok(await waitUntil(() => crowd.open === 0, 12_000), `every attacker is closed once they stop coming (${crowd.open} open)`);
  const closeSeconds = (Date.now() - closedAt) / 1000;
  t.ok(await waitUntil(() => sampler.sample().sockets <= base.sockets, 5_000), 'serve holds no attacker socket afterwards');
  await dribbling;
  const end = sampler.stop();
  t.comment(
    `HOSTILE idle-slow: ${idle.length} idle + ${slow.length} slow + ${topUps} re-opened; serve sockets base ${base.sockets}, peak ${sampler.peak.sockets} (connections ≤ ${sampler.peak.sockets - base.sockets}), end ${end.sockets}; RSS base ${mib(base.rss)}, peak ${mib(sampler.peak.rss)}; honest get ${honest.seconds.toFixed(1)} s; all closed ${closeSeconds.toFixed(1)} s after the last top-up`,
  );
  t.ok(sampler.peak.sockets - base.sockets <= 256 + 8, `connections held at the peak: ${sampler.peak.sockets - base.sockets} (cap 256, plus refusals in flight)`);
  t.ok(sampler.peak.rss - base.rss < 128 * 2 ** 20, `RSS grew ${mib(sampler.peak.rss - base.rss)} (< 128 MiB)`);
});
