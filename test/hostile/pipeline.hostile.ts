/**
 * Full scale: for 15 s, one connection pipelines `list` to the peer port, one pipelines `dir` to
 * the tracker port, one sends seed-002 keepalives after its initial message, none of them ever
 * reading, against `swarm serve` with default limits (the issue measured 2 GiB in 15 s). serve's
 * RSS stays bounded and an honest `swarm get` is served in the middle of it.
 */
import t from 'tap';
import { Crowd, frame, helloBytes, pipelineFor } from '../helpers/attack.js';
import { Sampler, gauges, honestCliGet, mib, MiB, startServeChild } from './common.js';

t.test('15 s of pipelined list, dir and seed-002 keepalives, never read', async (t) => {
  const s = await startServeChild(t);
  const warm = await honestCliGet(t, s);
  t.equal(warm.code, 0, 'warm-up get');
  const base = gauges(s.pid);
  const sampler = new Sampler(t, s.pid, 100);
  const crowd = new Crowd(t);
  const lister = (await crowd.connect(s.port, { read: false }))!;
  lister.write(helloBytes());
  const dirs = (await crowd.connect(s.trackerPort, { read: false }))!;
  dirs.write(helloBytes());
  const legacy = (await crowd.connect(s.trackerPort, { read: false, localAddress: '127.0.0.2' }))!;
  legacy.write(JSON.stringify({ port: 9, files: Array.from({ length: 500 }, (_, i) => ({ name: `legacy/file-with-a-longish-name-${i}.bin`, mtime: 1_600_000_000 + i })) }));
  const keepalive = Buffer.from(JSON.stringify({ port: 9 }));
  const attackStart = Date.now();
  const timed = <T>(p: Promise<T>, sock: { destroyed: boolean }) => p.then((r) => ({ ...r, seconds: (Date.now() - attackStart) / 1000, closed: sock.destroyed }));
  const attack = Promise.all([
    timed(pipelineFor(lister, (i) => frame({ t: 'list', id: i }), 15_000), lister),
    timed(pipelineFor(dirs, (i) => frame({ t: 'dir', id: i }), 15_000), dirs),
    timed(pipelineFor(legacy, () => keepalive, 15_000), legacy),
  ]);
  await new Promise((r) => setTimeout(r, 5_000));
  const honest = await honestCliGet(t, s);
  const [l, d, k] = await attack;
  const end = sampler.stop();
  t.equal(honest.code, 0, `an honest swarm get exits 0 during the attack (${honest.output})`);
  t.ok(honest.ok, 'with the right bytes');
  t.comment(
    `HOSTILE pipeline: attackers ran ${l.seconds}/${d.seconds}/${k.seconds} s (closed by serve: ${l.closed}/${d.closed}/${k.closed}); requests in: list ${l.requests} (${mib(l.bytes)}), dir ${d.requests} (${mib(d.bytes)}), keepalive ${k.requests} (${mib(k.bytes)}); serve RSS base ${mib(base.rss)}, peak ${mib(sampler.peak.rss)} (+${mib(sampler.peak.rss - base.rss)}), end ${mib(end.rss)}; honest get ${honest.seconds.toFixed(1)} s`,
  );
  t.ok(l.requests > 10_000 && d.requests > 10_000 && k.requests > 10_000, 'every attacker pipelined tens of thousands of requests');
  t.notOk(l.closed || d.closed || k.closed, 'paused, not taken for dribblers: within 15 s no deadline closes them (the send stall, 30 s, will)');
  t.ok(sampler.peak.rss - base.rss < 64 * MiB, `RSS grew ${mib(sampler.peak.rss - base.rss)} (< 64 MiB; the issue measured > 2 GiB)`);
});
