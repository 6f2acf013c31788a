/**
 * One `--json` schema for every command (README "JSON output"): every command that has `--json`
 * is run against a small swarm on this machine (a `swarm tracker` and a `swarm serve` on port 0,
 * 127.0.0.1 only), and every line it prints must parse and follow the shared rules. A field name
 * means one thing with one type wherever it appears (FIELDS below); a field not in the table fails
 * the test, so a new field is either one of the shared ones or added here and to the README.
 * NDJSON lines carry `event`; peers in lists are {ip, port}; a single peer is "ip:port" in `peer`;
 * sizes, byte counts and rates are whole bytes (per second); times are whole seconds since the
 * epoch; durations are seconds; content ids are 64 hex digits in `cid`.
 */
import t, { type Test } from 'tap';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { swarm, type Proc } from './helpers/procs.js';
import { tempDir } from './helpers/tmp.js';
import { prng, randomBytes } from './helpers/prng.js';

type Check = (v: unknown, where: string) => string | null;

const isInt = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v);
const count: Check = (v) => (isInt(v) && (v as number) >= 0 ? null : 'a whole number, 0 or more');
const bytes: Check = (v) => (isInt(v) && (v as number) >= 0 ? null : 'whole bytes, 0 or more');
const rate: Check = (v) => (isInt(v) && (v as number) >= 0 ? null : 'whole bytes per second (rounded)');
const epoch: Check = (v) => (isInt(v) && (v as number) >= 0 && (v as number) < 2 ** 32 ? null : 'whole seconds since the epoch (not ms)');
const str: Check = (v) => (typeof v === 'string' ? null : 'a string');
const nonEmpty: Check = (v) => (typeof v === 'string' && v !== '' ? null : 'a non-empty string');
const bool: Check = (v) => (typeof v === 'boolean' ? null : 'true or false');
const orNull = (c: Check): Check => (v, w) => (v === null ? null : c(v, w));
const oneOf = (...xs: string[]): Check => (v) => (typeof v === 'string' && xs.includes(v) ? null : `one of ${xs.join(', ')}`);
const hostPort: Check = (v) => (typeof v === 'string' && /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/.test(v) ? null : '"host:port"');
const cid: Check = (v) => (typeof v === 'string' && /^([0-9a-f]{64}|legacy:\d+)$/.test(v) ? null : '64 hex digits (or legacy:MTIME, a stock seed-002 version)');
const seconds: Check = (v) => (typeof v === 'number' && v >= 0 && Math.round(v * 1000) === v * 1000 ? null : 'seconds (at most 3 decimals)');
const absPath: Check = (v) => (typeof v === 'string' && path.isAbsolute(v) ? null : 'an absolute path');
const port: Check = (v) => (isInt(v) && (v as number) >= 0 && (v as number) <= 65535 ? null : 'a port number');
const listOf = (c: Check): Check => (v, w) => (Array.isArray(v) ? (v.map((x, i) => c(x, `${w}[${i}]`)).find((e) => e) ?? null) : 'a list');
const object: Check = (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? null : 'an object');
/** A peer in a list: an object with at least ip and port (its other fields are checked by name too). */
const peerObj: Check = (v) => (v !== null && typeof v === 'object' && typeof (v as { ip?: unknown }).ip === 'string' && isInt((v as { port?: unknown }).port) && (v as { port: number }).port > 0 ? null : '{ip, port}');
const SOURCES = ['tracker', 'overlay', 'lan', 'peer', 'neighbor', 'discover'];

/** Every field any command prints, with what it means everywhere. */
const FIELDS: Record<string, Check> = {
  event: nonEmpty,
  name: nonEmpty,
  path: absPath,
  dir: absPath,
  size: orNull(bytes), // null: only a stock seed-002 version's size in get's start (its directory has none)
  bytes,
  total: bytes,
  bytesDone: bytes,
  bytesToGo: bytes,
  bytesTotal: bytes,
  uploaded: bytes,
  chunkBytes: bytes,
  rate,
  uploadRate: rate,
  mtime: epoch,
  lastSeen: orNull(epoch),
  seconds: orNull(seconds),
  cid: orNull(cid), // null only where a file is not hashed yet (ls DIR)
  peers: listOf(peerObj),
  holders: listOf(peerObj),
  partial: listOf(peerObj),
  neighbors: listOf(peerObj),
  ip: nonEmpty,
  port,
  host: nonEmpty,
  peer: hostPort,
  tracker: orNull(hostPort),
  id: orNull((v) => (typeof v === 'string' && /^[0-9a-f]{16}$/.test(v) ? null : '16 hex digits')),
  kind: oneOf('video', 'music', 'picture', 'document', 'archive', 'other'),
  sources: listOf(oneOf(...SOURCES)),
  code: (v) => (typeof v === 'string' && /^SWARM_ERR_[A-Z_]+$/.test(v) ? null : 'SWARM_ERR_…'),
  message: str,
  reason: str,
  state: oneOf('connecting', 'active', 'dropped'),
  versions: listOf(object), // who: the versions themselves
  versionCount: count, // ls --tracker: how many there are
  chunks: count,
  resumedChunks: count,
  fetchedChunks: count,
  peersUsed: count,
  peersDropped: count,
  peersServed: count,
  badPackets: count,
  badChunks: count,
  filesDone: count,
  filesToGo: count,
  filesTotal: count,
  files: count,
  inflight: count,
  strikes: count,
  pending: count,
  upToDate: bool,
  replaced: bool, // sync's fetched: the version it replaced is in the trash
  folder: orNull((v) => (typeof v === 'string' && /^[0-9a-f]{32}$/.test(v) ? null : '32 hex digits')), // sync: the folder id (null: open)
  verified: oneOf('size', 'none'), // get's done, from a stock seed-002 peer: what could be checked
  complete: bool,
  connected: bool,
  embedded: bool,
  embeddedTracker: bool,
  trackerConnected: bool,
  added: listOf(nonEmpty),
  changed: listOf(nonEmpty),
  removed: listOf(nonEmpty),
  dropped: listOf(object),
  lan: orNull(object),
  copy: nonEmpty,
  breakdown: object,
};

/** Every field of `v` (and of the objects inside it) checked against FIELDS; returns the problems. */
function problems(v: unknown, where: string): string[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => problems(x, `${where}[${i}]`));
  if (v === null || typeof v !== 'object') return [];
  const out: string[] = [];
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    const check = FIELDS[k];
    if (!check) {
      out.push(`${where}.${k}: a field the shared schema does not have`);
      continue;
    }
    const p = check(x, `${where}.${k}`);
    if (p) out.push(`${where}.${k} = ${JSON.stringify(x)?.slice(0, 80)}: expected ${p}`);
    if (k !== 'breakdown') out.push(...problems(x, `${where}.${k}`));
  }
  return out;
}

/** Every stdout line of `p` parses; NDJSON lines carry `event`; every field follows the schema. */
function checkOutput(t: Test, what: string, p: Proc, ndjson: boolean): Record<string, unknown>[] {
  const docs: Record<string, unknown>[] = [];
  t.ok(p.lines.length > 0, `${what}: prints something`);
  p.lines.forEach((line, i) => {
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      t.fail(`${what}: line ${i + 1} is not JSON: ${line.slice(0, 100)}`);
      return;
    }
    const last = i === p.lines.length - 1;
    if (ndjson || (o as { event?: unknown }).event === 'error') t.equal(typeof (o as { event?: unknown }).event, 'string', `${what}: line ${i + 1} has an event`);
    else t.ok(last && p.lines.length === 1, `${what}: one document`);
    t.same(problems(o, what), [], `${what}: line ${i + 1} follows the shared schema`);
    docs.push(o as Record<string, unknown>);
  });
  return docs;
}

async function run(t: Test, args: string[], ndjson: boolean, code = 0): Promise<Record<string, unknown>[]> {
  const p = swarm(t, [...args, '--json']);
  const exit = await Promise.race([p.exit, new Promise<null>((r) => setTimeout(() => r(null), 30_000).unref())]);
  t.equal(exit?.code, code, `swarm ${args.join(' ')}: exit ${code} ${p.stderr().slice(0, 300)}`);
  return checkOutput(t, `swarm ${args[0]}${args[1]?.startsWith('-') ? ` ${args[1]}` : ''}`, p, ndjson);
}

t.test('every command with --json follows the one schema', async (t) => {
  const share = tempDir(t);
  mkdirSync(path.join(share, 'music'));
  writeFileSync(path.join(share, 'music', 'song.mp3'), 'la la la');
  writeFileSync(path.join(share, 'notes.txt'), 'hello');
  // big enough for a progress event and a peer line
  writeFileSync(path.join(share, 'big.iso'), randomBytes(prng(13), 3 * 2 ** 20 + 5));
  // a symlink out of the share: a warning with a code and the file's name
  const outside = tempDir(t);
  writeFileSync(path.join(outside, 'private.txt'), 'not shared');
  symlinkSync(path.join(outside, 'private.txt'), path.join(share, 'escape.txt'));

  const tr = swarm(t, ['tracker', '--port', '0', '--json']);
  const listening = await tr.waitFor((o) => o.event === 'tracker-listening');
  const tracker = `127.0.0.1:${listening.port as number}`;
  // an upload cap makes the 3 MiB download last a second or two: progress events with peer lines
  const sv = swarm(t, ['serve', share, '--port', '0', '--tracker', tracker, '--threads', '0', '--max-upload', '1.5', '--json']);
  const serving = await sv.waitFor((o) => o.event === 'serving');
  t.match(
    sv.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((o) => o.event === 'warning'),
    { event: 'warning', code: 'SWARM_ERR_SKIPPED', name: 'escape.txt', message: /escape\.txt: symlink leads outside the share/ },
    'serve: a skipped file is a warning with code and name',
  );
  await sv.waitFor((o) => (o.event === 'serving' && o.trackerConnected === true) || (o.event === 'tracker' && o.connected === true));
  const peer = `127.0.0.1:${serving.port as number}`;
  // a file added while it serves: a `change` event
  writeFileSync(path.join(share, 'added.txt'), 'new');
  await sv.waitFor((o) => o.event === 'change', 25_000);

  // the one-document commands, all at once (each is a process of its own)
  const plain = tempDir(t);
  writeFileSync(path.join(plain, 'unhashed.txt'), 'x');
  const [[local], [shared], , [dir], , , , , [known], [named]] = await Promise.all([
    run(t, ['ls', plain], false),
    run(t, ['ls', share], false),
    run(t, ['ls', '--peer', peer], false),
    run(t, ['ls', '--tracker', tracker], false),
    run(t, ['who', 'notes.txt', '--tracker', tracker], false),
    run(t, ['who', './notes.txt', '--tracker', tracker], false),
    run(t, ['search', 'o', '--tracker', tracker, '--wait', '0.5'], false),
    run(t, ['search', 'o', '--no-tracker', '--neighbor', peer, '--wait', '0.5'], false),
    run(t, ['peers', '--tracker', tracker, '--wait', '0.5'], false),
    run(t, ['peers', '--no-tracker', '--neighbor', peer, '--wait', '0.5'], false),
    run(t, ['search', 'nothing-matches-this', '--tracker', tracker, '--wait', '0.5'], false, 3),
    run(t, ['who', 'nope.txt', '--tracker', tracker], false, 3),
    run(t, ['ls', '--peer', '127.0.0.1:70000'], false, 2),
  ]);
  t.same((local as unknown as { cid: unknown }[]).map((f) => f.cid), [null], 'ls DIR: cid null for a file not hashed yet');
  t.ok((shared as unknown as { name: string; cid: unknown }[]).filter((f) => f.name !== 'added.txt').every((f) => typeof f.cid === 'string'), 'ls DIR of a served folder: the cids of what it hashed');
  t.ok((dir as unknown as unknown[]).length >= 3, 'ls --tracker: the files');
  t.match(known, [{ ip: '127.0.0.1', port: serving.port }], 'peers: {ip, port}');
  // a peer only the tracker listed was never seen by us (newcomer 60: "0 s ago"); one that answered was
  t.equal((known as unknown as { lastSeen: unknown }[])[0]?.lastSeen, null, 'peers --tracker: lastSeen null for a peer only listed');
  t.type((named as unknown as { lastSeen: unknown }[])[0]?.lastSeen, 'number', 'peers --neighbor: lastSeen once it answered');

  // get: a fresh download, the same again (up to date), a missing name, a seeding run
  const out = tempDir(t);
  const [got, , seeded] = await Promise.all([
    run(t, ['get', 'big.iso', '--tracker', tracker, '-o', out, '--threads', '0', '--peer-threads', '0'], true),
    run(t, ['get', 'missing.bin', '--tracker', tracker, '-o', out], true, 3),
    run(t, ['get', 'notes.txt', '--peer', peer, '-o', tempDir(t), '--seed', '0.2'], true),
  ]);
  t.same(got.map((e) => e.event).filter((e) => e !== 'progress' && e !== 'warning'), ['start', 'done'], 'get: start ... done');
  t.match(got.find((e) => e.event === 'progress'), { peers: [{ ip: '127.0.0.1', port: serving.port }] }, 'a progress event, its peers as {ip, port}');
  t.match(got[0], { event: 'start', peers: [{ ip: '127.0.0.1', port: serving.port }], sources: ['tracker'], tracker }, 'start: peers as {ip, port}, sources as words');
  const again = await run(t, ['get', 'big.iso', '--tracker', tracker, '-o', out], true);
  t.same(again.map((e) => e.event), ['start', 'done'], 'up to date: a start too');
  t.equal(again[1]!.upToDate, true);
  // (a progress line comes too when the machine is slow enough that the small get outlasts a bar tick)
  t.same(seeded.map((e) => e.event).filter((e) => e !== 'progress'), ['start', 'done', 'seeding', 'stopped'], 'get --seed: seeding and stopped');

  // sync: one that keeps a folder (until Ctrl-C), and one --once into an empty folder that fetches from it
  const synced = tempDir(t);
  writeFileSync(path.join(synced, 'kept.txt'), 'in step');
  const sy = swarm(t, ['sync', synced, '--open', '--port', '0', '--tracker', tracker, '--threads', '0', '--json']);
  await sy.waitFor((o) => o.event === 'in-step');
  const once = await run(t, ['sync', tempDir(t), '--open', '--once', '--port', '0', '--tracker', tracker, '--threads', '0'], true);
  t.ok(once.some((e) => e.event === 'fetched' && e.name === 'kept.txt'), 'sync --once: a fetched event');
  sy.kill('SIGINT');
  t.equal((await sy.exit).code, 0, 'sync: exit 0 after Ctrl-C');
  checkOutput(t, 'swarm sync', sy, true);

  // the long-running ones: stopped by Ctrl-C, then every line they printed is checked
  sv.kill('SIGINT');
  tr.kill('SIGINT');
  t.equal((await sv.exit).code, 0, 'serve: exit 0 after Ctrl-C');
  t.equal((await tr.exit).code, 0, 'tracker: exit 0 after Ctrl-C');
  const served = checkOutput(t, 'swarm serve', sv, true);
  t.same(served.map((e) => e.event).slice(-2), ['stopping', 'stopped']);
  const tracked = checkOutput(t, 'swarm tracker', tr, true);
  t.same(tracked.map((e) => e.event), ['tracker-listening', 'stopped']);
});
