/**
 * Finding peers without a tracker, through the CLI: three `swarm serve --no-tracker` processes in
 * a chain of `--neighbor`s; `swarm search` (JSON and text), `swarm peers --discover`, and `swarm
 * get --no-tracker --neighbor` that finds its holder through the overlay alone (byte-identical);
 * and the discovery options' bad values (exit 2, a message naming the option). 127.0.0.1 only.
 */
import t from 'tap';
import { writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import { swarm, type Proc } from './helpers/procs.js';

type T = { teardown(fn: () => unknown): void };

async function ended(p: Proc): Promise<{ code: number | null }> {
  const exit = await p.exit;
  const out = p.child.stdout!;
  if (!out.readableEnded) await once(out, 'end');
  return exit;
}

/** `swarm serve DIR --json` on a free port; resolves with its port once it serves. */
async function serveProc(t: T, dir: string, extra: string[]): Promise<{ p: Proc; port: number }> {
  const p = swarm(t, ['serve', dir, '--port', '0', '--no-tracker', '--threads', '0', '--json', ...extra]);
  const ev = await p.waitFor((o) => o.event === 'serving', 20_000);
  return { p, port: ev.port as number };
}

t.test('search, peers and get through a chain of serve processes, no tracker', async (t) => {
  const data = randomBytes(prng(3), 2 * 1024 * 1024 + 77);
  const dirs = [tempDir(t), tempDir(t), tempDir(t)];
  mkdirSync(path.join(dirs[2]!, 'films'));
  writeFileSync(path.join(dirs[2]!, 'films', 'Holiday.MP4'), data);
  writeFileSync(path.join(dirs[1]!, 'notes.txt'), 'hello\n');
  // c (holder) ← b ← a: each names the next as its neighbour
  const c = await serveProc(t, dirs[2]!, []);
  const b = await serveProc(t, dirs[1]!, ['--neighbor', `127.0.0.1:${c.port}`]);
  const a = await serveProc(t, dirs[0]!, ['--neighbor', `127.0.0.1:${b.port}`]);
  const via = ['--no-tracker', '--neighbor', `127.0.0.1:${a.port}`];

  const s = swarm(t, ['search', '*.mp4', ...via, '--json']);
  t.equal((await ended(s)).code, 0, 'search exits 0 when something matches');
  const results = JSON.parse(s.lines[0]!);
  t.equal(results.length, 1);
  t.match(results[0], { name: 'films/Holiday.MP4', kind: 'video', size: data.length, holders: [{ ip: '127.0.0.1', port: c.port }], sources: ['overlay'] }, 'found two hops away, with its holder');

  const s1 = swarm(t, ['search', 'holiday', ...via, '--ttl', '1']);
  t.equal((await ended(s1)).code, 3, 'TTL 1 does not reach two hops: nothing matches, exit 3');
  t.match(s1.stderr(), /nothing matches holiday/);

  const text = swarm(t, ['search', 'NOTES', ...via]);
  t.equal((await ended(text)).code, 0);
  t.match(text.lines.join('\n'), /notes\.txt\s+document\s+6 B/, 'text table: name, type, size');

  const peers = swarm(t, ['peers', ...via, '--discover', '3', '--json']);
  t.equal((await ended(peers)).code, 0);
  const known = JSON.parse(peers.lines[0]!) as { port: number; sources: string[] }[];
  t.same(known.map((k) => k.port).sort(), [a.port, b.port, c.port].sort(), 'DISCOVER found the three peers');
  t.ok(known.find((k) => k.port === a.port)!.sources.includes('neighbor'), 'the named one is a neighbour');
  t.ok(known.find((k) => k.port === c.port)!.sources.includes('discover'), 'the far one came from DISCOVER');

  const who = swarm(t, ['who', 'films/Holiday.MP4', ...via, '--json']);
  t.equal((await ended(who)).code, 0);
  t.match(JSON.parse(who.lines[0]!), { name: 'films/Holiday.MP4', versions: [{ size: data.length, holders: [{ port: c.port }] }] }, 'who: the versions the overlay found');
  const whoNone = swarm(t, ['who', 'nothing.bin', ...via]);
  t.equal((await ended(whoNone)).code, 3, 'who: nothing found is exit 3');
  const nowhere = swarm(t, ['who', 'x', '--no-tracker']);
  t.equal((await ended(nowhere)).code, 2, 'who --no-tracker alone has nowhere to ask: exit 2');

  const out = tempDir(t);
  const g = swarm(t, ['get', 'films/Holiday.MP4', ...via, '-o', out, '--json', '--threads', '0', '--peer-threads', '0']);
  const r = await ended(g);
  t.equal(r.code, 0, `get through the overlay exits 0 ${g.stderr()}`);
  t.ok(readFileSync(path.join(out, 'films', 'Holiday.MP4')).equals(data), 'byte-identical');

  const none = swarm(t, ['get', 'no-such-file.bin', ...via, '-o', out]);
  t.equal((await ended(none)).code, 3, 'a name the overlay does not find: exit 3');
  t.match(none.stderr(), /overlay found no peer that has no-such-file\.bin/);
});

t.test('links are two-way: in a star where everyone names one hub, a search through the hub finds them all', async (t) => {
  const hubDir = tempDir(t);
  const hub = await serveProc(t, hubDir, []);
  const leafDirs = [tempDir(t), tempDir(t)];
  writeFileSync(path.join(leafDirs[0]!, 'song.mp3'), 'la la');
  writeFileSync(path.join(leafDirs[1]!, 'photos-cat.jpg'), 'meow');
  const leaves = [];
  for (const d of leafDirs) leaves.push(await serveProc(t, d, ['--neighbor', `127.0.0.1:${hub.port}`]));
  // the leaves opened their links at start: the hub knows them without being told
  const s = swarm(t, ['search', '*', '--no-tracker', '--neighbor', `127.0.0.1:${hub.port}`, '--json']);
  t.equal((await ended(s)).code, 0, s.stderr());
  const names = (JSON.parse(s.lines[0]!) as { name: string }[]).map((r) => r.name).sort();
  t.same(names, ['photos-cat.jpg', 'song.mp3'], 'both leaves found through the hub that never named them');
  const glob = swarm(t, ['search', 'PHOTOS*', '--no-tracker', '--neighbor', `127.0.0.1:${hub.port}`, '--json']);
  t.equal((await ended(glob)).code, 0, 'a glob without / matches the file name');
  // a second neighbour that is not there: found things still come, and its warning is JSON on stderr
  const warned = swarm(t, ['search', '*', '--no-tracker', '--neighbor', `127.0.0.1:${hub.port}`, '--neighbor', '127.0.0.1:1', '--json', '--wait', '1']);
  t.equal((await ended(warned)).code, 0, warned.stderr());
  t.equal(warned.lines.length, 1, '--json: stdout is the one document');
  const errs = warned.stderr().split('\n').filter(Boolean);
  t.ok(errs.length > 0 && errs.every((l) => (JSON.parse(l) as { event?: string }).event === 'warning'), `the warnings are NDJSON on stderr: ${errs.join(' | ')}`);
});

t.test('a neighbour that does not answer is said, and is "no peers" (exit 4), not "not found"', async (t) => {
  const s = swarm(t, ['search', 'iso', '--no-tracker', '--neighbor', '127.0.0.1:1', '--wait', '1']);
  t.equal((await ended(s)).code, 4, 'exit 4');
  t.match(s.stderr(), /no neighbour answered: 127\.0\.0\.1:1 \(/, 'names the neighbour and why');
  const g = swarm(t, ['get', 'x.iso', '--no-tracker', '--neighbor', '127.0.0.1:1', '-o', tempDir(t)]);
  t.equal((await ended(g)).code, 4, 'get: exit 4');
  t.match(g.stderr(), /no neighbour answered/);
  const j = swarm(t, ['search', 'zzz', '--no-tracker', '--neighbor', '127.0.0.1:1', '--wait', '0.5', '--json']);
  await ended(j);
  t.equal(j.lines.length, 1, '--json: one document');
  t.match(JSON.parse(j.lines[0]!), { event: 'error', code: 'SWARM_ERR_NO_PEERS' });
});

t.test('search whose only source, a named tracker, is unreachable: exit 4, not "nothing matches"', async (t) => {
  const net = await import('node:net');
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r())); // a port nobody listens on now
  const s = swarm(t, ['search', 'anything', '--tracker', `127.0.0.1:${port}`, '--wait', '0.2']);
  t.equal((await ended(s)).code, 4, 'exit 4');
  t.match(s.stderr(), /SWARM_ERR_TRACKER_UNREACHABLE/);
  t.notMatch(s.stderr(), /nothing matches/);
});

t.test('discovery options: bad values are refused with exit 2, naming the option', async (t) => {
  const cases: [string[], RegExp][] = [
    [['search', 'x', '--neighbor', 'nohost'], /--neighbor/],
    [['search', 'x', '--neighbor', '127.0.0.1:0'], /--neighbor/],
    [['search', 'x', '--neighbor', '127.0.0.1:70000'], /--neighbor/],
    [['search', 'x', '--ttl', '0'], /--ttl/],
    [['search', 'x', '--ttl', '99'], /--ttl/],
    [['search', 'x', '--wait', 'abc'], /--wait/],
    [['peers', '--lan', '--lan-port', '70000'], /--lan-port/],
    [['peers', '--lan', '--lan-broadcast', 'everyone'], /--lan-broadcast/],
    [['peers', '--lan-port', '7071'], /need --lan/],
    [['get', 'x', '--no-tracker', '--tracker', '127.0.0.1:1'], /contradict/],
    [['serve', '.', '--neighbor', 'a:b'], /--neighbor/],
  ];
  for (const [args, msg] of cases) {
    const p = swarm(t, args);
    const r = await ended(p);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(p.stderr(), msg, `${args.join(' ')}: says what is wrong`);
  }
});

t.test('LAN: serve --lan peers are found by peers, search and get --lan (loopback broadcast only)', async (t) => {
  const lanPort = 21000 + Math.floor(Math.random() * 20000);
  const lan = ['--lan', '--lan-port', String(lanPort), '--lan-broadcast', '127.255.255.255'];
  const data = randomBytes(prng(5), 1024 * 1024 + 5);
  const d1 = tempDir(t);
  const d2 = tempDir(t);
  writeFileSync(path.join(d1, 'lan-file.iso'), data);
  writeFileSync(path.join(d2, 'other.txt'), 'x');
  const s1 = await serveProc(t, d1, lan);
  const s2 = await serveProc(t, d2, lan);

  const peers = swarm(t, ['peers', '--no-tracker', ...lan, '--wait', '1', '--json']);
  t.equal((await ended(peers)).code, 0);
  const known = JSON.parse(peers.lines[0]!) as { ip: string; port: number; sources: string[]; id: string | null }[];
  t.same(known.map((k) => k.port).sort(), [s1.port, s2.port].sort(), 'a listener hears both serving peers (it asks; they answer at once)');
  t.ok(known.every((k) => k.sources.includes('lan') && k.ip === '127.0.0.1' && /^[0-9a-f]{16}$/.test(k.id ?? '')), 'learnt from the LAN, with address and peer id');

  const s = swarm(t, ['search', 'iso', '--no-tracker', ...lan, '--json']);
  t.equal((await ended(s)).code, 0);
  t.match(JSON.parse(s.lines[0]!), [{ name: 'lan-file.iso', holders: [{ port: s1.port }] }], 'search through LAN neighbours');
  const said = swarm(t, ['search', 'iso', '--no-tracker', ...lan]);
  t.equal((await ended(said)).code, 0);
  t.match(said.lines.join('\n') + said.stderr(), /\[2 of 2 neighbours/, 'both LAN peers asked, not only the first heard');

  const out = tempDir(t);
  const g = swarm(t, ['get', 'lan-file.iso', '--no-tracker', ...lan, '-o', out, '--threads', '0', '--peer-threads', '0', '--json']);
  t.equal((await ended(g)).code, 0, `get --lan exits 0 ${g.stderr()}`);
  t.ok(readFileSync(path.join(out, 'lan-file.iso')).equals(data), 'byte-identical from a peer found on the LAN');

  // a serving peer that stops says so: the other drops it (seen through a fresh listener's view)
  s2.p.kill('SIGINT');
  await s2.p.exit;
  const after = swarm(t, ['peers', '--no-tracker', ...lan, '--wait', '1', '--json']);
  t.equal((await ended(after)).code, 0);
  t.same((JSON.parse(after.lines[0]!) as { port: number }[]).map((k) => k.port), [s1.port], 'only the peer still running answers');
});
