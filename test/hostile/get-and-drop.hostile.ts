/**
 * Full scale: 6,000 clients that send `get` (framed, or seed-002's plain name) and drop, at once
 * (1,000 in flight), from 100 addresses, against `swarm serve` with default limits. No file handle
 * outlives its connection: serve's open files and sockets return to what they were, and an
 * honest `swarm get` is served during the crowd.
 */
import t from 'tap';
import { PeerClient } from '../../lib/peer/client.js';
import { Crowd, frame, helloBytes, loopbackAddresses, waitUntil } from '../helpers/attack.js';
import { Sampler, gauges, honestCliGet, mib, startServeChild } from './common.js';

const TOTAL = 6_000;

t.test('6,000 get-and-drop clients', async (t) => {
  const s = await startServeChild(t);
  const c = new PeerClient('127.0.0.1', s.port);
  await c.connect();
  const cid = (await c.stat('big.bin')).cid;
  c.destroy();
  await waitUntil(() => gauges(s.pid).sockets <= 4, 2_000);
  const base = gauges(s.pid);
  const sampler = new Sampler(t, s.pid, 50);
  const crowd = new Crowd(t);
  const framed = Buffer.concat([helloBytes(), frame({ t: 'get', id: 1, cid, from: 0, to: 64 })]);
  const legacy = Buffer.from('big.bin\n');
  const addrs = loopbackAddresses(100, 2);
  let next = 0;
  let dropped = 0;
  const started = Date.now();
  const worker = async () => {
    while (next < TOTAL) {
      const i = next++;
      const sock = await crowd.connect(s.port, { localAddress: addrs[i % addrs.length]! });
      if (!sock) continue;
      sock.write(i % 4 === 3 ? legacy : framed);
      if (i % 3 === 1) await new Promise((r) => setImmediate(r));
      if (i % 3 === 2) await new Promise((r) => setTimeout(r, i % 20));
      crowd.drop(sock, i % 2 === 0);
      dropped++;
    }
  };
  const crowdDone = Promise.all(Array.from({ length: 1000 }, worker));
  await new Promise((r) => setTimeout(r, 500));
  const honest = await honestCliGet(t, s);
  await crowdDone;
  const crowdSeconds = (Date.now() - started) / 1000;
  t.equal(honest.code, 0, `an honest swarm get exits 0 during the crowd (${honest.output})`);
  t.ok(honest.ok, 'with the right bytes');
  const after = Date.now();
  t.ok(await waitUntil(() => sampler.sample().files <= base.files && sampler.sample().sockets <= base.sockets, 10_000, 100), 'open files and sockets back to what they were');
  const settle = (Date.now() - after) / 1000;
  const end = sampler.stop();
  t.comment(
    `HOSTILE get-and-drop: ${dropped} of ${TOTAL} clients connected, asked and dropped in ${crowdSeconds.toFixed(1)} s (${crowd.connectFailures} connect failures); serve open files base ${base.files}, peak ${sampler.peak.files}, end ${end.files}; sockets base ${base.sockets}, peak ${sampler.peak.sockets}, end ${end.sockets}; RSS base ${mib(base.rss)}, peak ${mib(sampler.peak.rss)}; settled ${settle.toFixed(1)} s after the last drop; honest get ${honest.seconds.toFixed(1)} s`,
  );
  t.ok(dropped >= TOTAL * 0.95, 'the crowd really came');
  t.ok(sampler.peak.files > base.files, 'the crowd made serve open files');
});
