/**
 * Full scale: 20,000 slow connections (one byte a second of a hello) to the tracker that
 * `swarm serve` embeds, from 100 loopback addresses so per-address caps do not stop them: the
 * tracker's own cap (1024) does. serve keeps its descriptors, keeps serving an honest `swarm get`,
 * and the tracker keeps answering an honest client and keeps serve's registration.
 */
import t from 'tap';
import { Crowd, helloBytes, loopbackAddresses, waitUntil } from '../helpers/attack.js';
import { trackerDirectory } from '../../lib/tracker/client.js';
import { Sampler, gauges, honestCliGet, mib, startServeChild } from './common.js';

const TOTAL = 20_000;

t.test('20,000 slow connections to the embedded tracker', async (t) => {
  const s = await startServeChild(t);
  const base = gauges(s.pid);
  const sampler = new Sampler(t, s.pid, 100);
  const crowd = new Crowd(t);
  const addrs = loopbackAddresses(100, 2);
  const hello = helloBytes();
  const started = Date.now();
  // every second, one more byte of the hello on every connection still open
  const drip = setInterval(() => {
    for (const sock of crowd.sockets) {
      const at = (sock as unknown as { dripped?: number }).dripped ?? 1;
      if (at < hello.length && sock.writableLength === 0) sock.write(hello.subarray(at, at + 1));
      (sock as unknown as { dripped?: number }).dripped = at + 1;
    }
  }, 1_000);
  t.teardown(() => clearInterval(drip));
  // 1,000 new connections a second for 20 s, each dripping its hello: the slow crowd is always there
  const flood = (async () => {
    const opened: unknown[] = [];
    for (let batch = 0; batch < TOTAL / 1000; batch++) {
      const next = Date.now() + 1_000;
      opened.push(...(await crowd.connectMany(s.trackerPort, 1000, { localAddresses: addrs, concurrency: 200, first: hello.subarray(0, 1) })));
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
    }
    return opened;
  })();
  // honest traffic in the middle of the flood
  await waitUntil(() => Date.now() - started > 8_000, 10_000, 100);
  const midFlood = sampler.sample();
  const honestGet = honestCliGet(t, s);
  const listing = await trackerDirectory(`127.0.0.1:${s.trackerPort}`).then(
    (l) => l.entries.map(([n]) => n).sort(),
    (e: Error) => [`error: ${e.message}`],
  );
  const honest = await honestGet;
  const opened = await flood;
  const floodSeconds = (Date.now() - started) / 1000;
  clearInterval(drip);
  t.same(listing, ['big.bin', 'mid.bin'], "an honest directory listing during the flood shows serve's files");
  t.equal(honest.code, 0, `an honest swarm get exits 0 during the flood (${honest.output})`);
  t.ok(honest.ok, 'with the right bytes');
  crowd.destroy();
  t.ok(await waitUntil(() => sampler.sample().sockets <= base.sockets + 2, 10_000), 'serve is back to its own sockets');
  const end = sampler.stop();
  t.comment(
    `HOSTILE tracker-flood: ${opened.length} of ${TOTAL} connects succeeded in ${floodSeconds.toFixed(1)} s (${crowd.closedByServer} closed by serve); serve sockets base ${base.sockets}, mid-flood ${midFlood.sockets}, peak ${sampler.peak.sockets}, end ${end.sockets}; fds peak ${sampler.peak.fds}; RSS base ${mib(base.rss)}, peak ${mib(sampler.peak.rss)}; honest get ${honest.seconds.toFixed(1)} s`,
  );
  t.ok(opened.length >= TOTAL * 0.95, 'the flood really connected');
  t.ok(sampler.peak.sockets - base.sockets <= 1024 + 16, `tracker connections at the peak ≤ 1024: ${sampler.peak.sockets - base.sockets}`);
  t.ok(sampler.peak.rss - base.rss < 256 * 2 ** 20, `RSS grew ${mib(sampler.peak.rss - base.rss)} (< 256 MiB)`);
});
