/**
 * The CLI as a newcomer meets it, following the README: results on stdout and diagnostics on
 * stderr (`get`'s `saved …` line), an error said once on the channel chosen (with `--json` one
 * `error` line on stdout and nothing on stderr; without it one `swarm: …` line on stderr), `ip`
 * fields that hold IPs when a peer was typed by name, `-o` that can never be written refused
 * before any peer is asked (no connection made, no folder left behind), `--no-tracker` with
 * nowhere to ask a usage error, `peers` with only a dead tracker exit 4, and the fields and help
 * texts the README promises; a sync peer refused is named by where it listens. The seeders run in this process; only the commands under test are child processes.
 * Everything on 127.0.0.1 (and `localhost`, looked up from the hosts file).
 */
import t from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import path from 'node:path';
import type { Command } from 'commander';
import { serve, type ServeHandle } from '../lib/serve.js';
import { createFolderKey } from '../lib/sync/folder-key.js';
import { buildProgram } from '../bin/program.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import { swarm, type Proc } from './helpers/procs.js';
import { syncPeer } from './helpers/sync-peers.js';

type T = { teardown(fn: () => unknown): void };
/** One core's worth of work per process on this 2-core machine. */
const LEAN = ['--threads', '0', '--peer-threads', '0'];
const NAME = 'hello.bin';
const DATA = randomBytes(prng(7401), 200_000);

/** An in-process seeder of NAME on 127.0.0.1, no tracker. */
async function seeder(t: T): Promise<ServeHandle> {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, NAME), DATA);
  const h = await serve(dir, { port: 0, host: '127.0.0.1', noTracker: true, threads: 0, watch: false });
  t.teardown(() => h.close({ graceful: false }));
  return h;
}

/** The process exited and all its stdout was read; killed (code null) after `ms`. */
async function ended(p: Proc, ms = 15_000): Promise<number | null> {
  const timer = setTimeout(() => p.kill('SIGKILL'), ms);
  const { code } = await p.exit;
  clearTimeout(timer);
  const out = p.child.stdout!;
  if (!out.readableEnded) await once(out, 'end');
  return code;
}

/** Run to the end: exit code, stdout lines, stderr. */
async function run(t: T, args: string[], ms?: number): Promise<{ code: number | null; lines: string[]; err: string }> {
  const p = swarm(t, args);
  const code = await ended(p, ms);
  return { code, lines: p.lines, err: p.stderr() };
}

t.test('get in text mode: the result on stdout, the start line on stderr', async (t) => {
  const s = await seeder(t);
  const out = tempDir(t);
  const first = await run(t, ['get', NAME, '--peer', `127.0.0.1:${s.port}`, '-o', out, ...LEAN]);
  t.equal(first.code, 0, `exit 0 (${first.err})`);
  t.equal(first.lines.length, 1, 'one result line on stdout');
  t.ok(first.lines[0]?.startsWith(`saved ${path.join(out, NAME)}: 195.3 KiB in `) && first.lines[0].endsWith(', 1 peer used'), `the summary (${first.lines[0]})`);
  t.notMatch(first.err, /saved/, 'not on stderr');
  t.match(first.err, /hello\.bin: 195\.3 KiB from 1 peer via /, 'the start line is progress: stderr');
  const again = await run(t, ['get', NAME, '--peer', `127.0.0.1:${s.port}`, '-o', out, ...LEAN]);
  t.equal(again.code, 0);
  t.same(again.lines, [`${path.join(out, NAME)} is already up to date`], 'up to date: said on stdout');
  t.notMatch(again.err, /up to date/);
  const quiet = await run(t, ['get', NAME, '--peer', `127.0.0.1:${s.port}`, '-o', out, '-q', ...LEAN]);
  t.same([quiet.code, quiet.lines, quiet.err], [0, [], ''], '-q: nothing at all');
});

t.test('an error is said once, on the channel chosen', async (t) => {
  const s = await seeder(t);
  const out = tempDir(t);
  const peer = `127.0.0.1:${s.port}`;
  const [notFoundJson, notFoundText, badOption, lsMissing, getNowhere, searchNowhere, dashName] = await Promise.all([
    run(t, ['get', 'nope.bin', '--peer', peer, '-o', out, '--json', ...LEAN]),
    run(t, ['get', 'nope.bin', '--peer', peer, '-o', out, ...LEAN]),
    run(t, ['get', 'x', '--bogus', '--json']),
    run(t, ['ls', path.join(out, 'no-such-folder'), '--json']),
    run(t, ['get', 'x', '--no-tracker', '-o', out, '--json']),
    run(t, ['search', 'x', '--no-tracker', '--json']),
    // a name after `--` is a name, not the --json option
    run(t, ['get', '--peer', peer, '-o', out, ...LEAN, '--', '--json']),
  ]);
  const jsonError = (r: { lines: string[] }) => (r.lines.length === 1 ? (JSON.parse(r.lines[0]!) as Record<string, unknown>) : { lines: r.lines });
  t.equal(notFoundJson.code, 3);
  t.match(jsonError(notFoundJson), { event: 'error', code: 'SWARM_ERR_NOT_FOUND', message: /no named peer has nope\.bin/ }, '--json: one error line on stdout');
  t.equal(notFoundJson.err, '', '--json: nothing on stderr');
  t.equal(notFoundText.code, 3);
  t.same(notFoundText.lines, [], 'text: nothing on stdout');
  t.match(notFoundText.err, /^swarm: no named peer has nope\.bin \[SWARM_ERR_NOT_FOUND\]\n$/, 'text: one line on stderr');
  t.equal(badOption.code, 2);
  t.match(jsonError(badOption), { event: 'error', code: 'SWARM_ERR_USAGE', message: /unknown option '--bogus'/ }, 'a usage error with --json: one line');
  t.equal(badOption.err, '', 'and commander says nothing on stderr');
  t.equal(lsMissing.code, 3);
  t.match(jsonError(lsMissing), { event: 'error', code: 'SWARM_ERR_NOT_FOUND' });
  t.equal(lsMissing.err, '', 'ls --json: nothing on stderr');
  t.equal(getNowhere.code, 2, 'get --no-tracker with nowhere to look: a usage error, as who says it (not "no peers", exit 4)');
  t.match(jsonError(getNowhere), { code: 'SWARM_ERR_USAGE', message: /--no-tracker needs --peer, --neighbor or --lan/ });
  t.equal(searchNowhere.code, 2, 'search --no-tracker with nowhere to search: exit 2 too');
  t.equal(dashName.code, 3, 'a file named --json is looked for');
  t.same(dashName.lines, [], '-- --json is no --json: nothing on stdout');
  t.match(dashName.err, /no named peer has --json/);
});

const localhost = (await lookup('localhost').catch(() => null))?.address;
const noLocalhost = localhost === '127.0.0.1' ? false : `localhost is ${localhost ?? 'unresolvable'} here, not 127.0.0.1 (where the seeder listens)`;

t.test('ip fields hold IPs: a peer or neighbour typed by name is looked up once', { skip: noLocalhost }, async (t) => {
  const s = await seeder(t);
  const g = swarm(t, ['get', NAME, '--peer', `localhost:${s.port}`, '--peer', `127.0.0.1:${s.port}`, '-o', tempDir(t), '--json', ...LEAN]);
  const start = await g.waitFor((o) => o.event === 'start');
  t.same(start.peers, [{ ip: '127.0.0.1', port: s.port }], 'start.peers: the IP, and the same peer typed twice is one');
  t.equal(await ended(g), 0);
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'x.txt'), 'x');
  const sv = swarm(t, ['serve', dir, '--port', '0', '--no-tracker', '--neighbor', `localhost:${s.port}`, '--threads', '0', '--json']);
  const serving = await sv.waitFor((o) => o.event === 'serving');
  t.same(serving.neighbors, [{ ip: '127.0.0.1', port: s.port }], 'serving.neighbors: the IP, not "localhost"');
  sv.kill('SIGINT');
  t.equal(await ended(sv), 0);
});

t.test('-o that can never be written: refused before any peer is asked, nothing left behind', async (t) => {
  // a peer that accepts and never answers: a get that dials it first would hang on it
  const sockets: Socket[] = [];
  const silent = createServer((c) => void sockets.push(c));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  t.teardown(() => {
    for (const c of sockets) c.destroy();
    silent.close();
  });
  const peer = `127.0.0.1:${(silent.address() as { port: number }).port}`;
  const scratch = tempDir(t);
  writeFileSync(path.join(scratch, 'plain'), 'x');
  const began = Date.now();
  const [proc, underFile] = await Promise.all([
    run(t, ['get', NAME, '--peer', peer, '-o', '/proc/x/y', '--json'], 10_000),
    run(t, ['get', NAME, '--peer', peer, '-o', path.join(scratch, 'plain', 'sub')], 10_000),
  ]);
  t.equal(proc.code, 6, '-o /proc/x/y: the I/O exit code');
  t.match(proc.lines.length === 1 ? JSON.parse(proc.lines[0]!) : proc.lines, { event: 'error', code: 'SWARM_ERR_IO', message: /cannot create the folder \/proc\/x .*nothing was fetched/ }, 'one error line naming the folder');
  t.equal(proc.err, '');
  t.equal(underFile.code, 2, 'a file where a folder of -o should be: a bad option value, as -o FILE is');
  t.match(underFile.err, /--output <dir>' argument .* is invalid\. .*plain is a file, not a folder/);
  t.ok(Date.now() - began < 5_000, `both failed in ${Date.now() - began} ms`);
  t.equal(sockets.length, 0, 'no peer was dialled');
  // the probe that a missing folder can be made leaves nothing when nothing is fetched
  const s = await seeder(t);
  const none = await run(t, ['get', 'nope.bin', '--peer', `127.0.0.1:${s.port}`, '-o', path.join(scratch, 'made', 'deeper'), ...LEAN]);
  t.equal(none.code, 3);
  t.notOk(existsSync(path.join(scratch, 'made')), 'no folder left by the check');
});

t.test('what the README promises: get --help names every event, sync key event carries the folder id, results on stdout', async (t) => {
  const program = buildProgram();
  const get = (program.commands as Command[]).find((c) => c.name() === 'get')!;
  const json = get.options.find((o) => o.long === '--json')!;
  for (const ev of ['start', 'progress', 'warning', 'peer-dropped', 'done', 'seeding', 'stopped', 'error']) t.match(json.description, new RegExp(`\\b${ev}\\b`), `get --json help names ${ev}`);
  const dir = tempDir(t);
  const r = await run(t, ['sync', dir, '--new-key', '--once', '--no-tracker', '--port', '0', '--threads', '0', '--json']);
  t.equal(r.code, 4, 'no other member: exit 4');
  const events = r.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const key = events.find((e) => e.event === 'key');
  const syncing = events.find((e) => e.event === 'syncing');
  t.match(key, { path: path.join(dir, '.swarm', 'sync-key'), folder: /^[0-9a-f]{32}$/ }, 'key: the folder id in its own field');
  t.equal(key?.folder, syncing?.folder, 'the same id as syncing.folder');
  t.match(events.at(-1), { event: 'error', code: 'SWARM_ERR_NO_PEERS' });
  t.equal(r.err, '', 'nothing on stderr');
  // an empty result is a result, on stdout (as `ls` says "no files")
  const none = await run(t, ['peers', '--no-tracker', '--wait', '0.1']);
  t.equal(none.code, 0);
  t.same(none.lines, ['no peers known; name one with --neighbor, or try --lan, or a tracker'], 'peers with none known: said on stdout');
  t.equal(none.err, '');
  // (newcomer 60) what was asked is said, and --lan is not suggested to one who gave it
  const lanOnly = await run(t, ['peers', '--no-tracker', '--lan', '--lan-port', String(21000 + Math.floor(Math.random() * 20000)), '--lan-broadcast', '127.255.255.255', '--wait', '0.1']);
  t.equal(lanOnly.code, 0);
  t.same(lanOnly.lines, ['no peers known (asked the LAN); name one with --neighbor, or a tracker'], `--lan with nobody there: ${lanOnly.err}`);
  const who = await run(t, ['who', '', '--no-tracker', '--neighbor', '127.0.0.1:1']);
  t.equal(who.code, 2, `who with an empty name: a usage error, as search's empty pattern (it was exit 3): ${who.err}`);
});

t.test('peers with a tracker that does not answer and nowhere else to look: exit 4, said once (as search)', async (t) => {
  // a port that was just free: nothing listens there
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const json = await run(t, ['peers', '-t', `127.0.0.1:${port}`, '--json', '--wait', '0.1']);
  t.equal(json.code, 4, 'exit 4 (no peers: the tracker is unreachable)');
  t.match(JSON.parse(json.lines.at(-1) ?? '{}'), { event: 'error', code: 'SWARM_ERR_TRACKER_UNREACHABLE' }, 'the error as the last line');
  t.equal(json.err, '', 'nothing on stderr');
  const text = await run(t, ['peers', '-t', `127.0.0.1:${port}`, '--wait', '0.1']);
  t.equal(text.code, 4);
  t.equal(text.err.trim().split('\n').length, 1, `one line on stderr (${text.err.trim()})`);
  t.same(text.lines, [], 'nothing on stdout');
});

t.test('a sync peer refused is named by where it listens, not by its connection\'s source port', async (t) => {
  const a = await syncPeer(t, tempDir(t), { key: await createFolderKey(tempDir(t)) });
  const r = swarm(t, ['sync', tempDir(t), '--new-key', '--once', '--no-tracker', '--port', '0', '--neighbor', `127.0.0.1:${a.node.port}`, '--threads', '0', '--json']);
  const syncing = await r.waitFor((o) => o.event === 'syncing');
  t.equal(await ended(r), 7, 'every member refused: exit 7');
  const deadline = Date.now() + 3_000;
  while (!a.infos.some((i) => i.code === 'SWARM_ERR_SYNC_DENIED') && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
  const refused = a.infos.find((i) => i.code === 'SWARM_ERR_SYNC_DENIED');
  t.ok(refused, 'the other side says it refused the peer');
  // named where it serves (its hello's listen port), not by the connection's ephemeral source port
  t.equal(refused?.peer, `127.0.0.1:${syncing.port as number}`, `named by its listening address (${refused?.message})`);
  t.match(refused?.message, new RegExp(`127\\.0\\.0\\.1:${syncing.port as number}\\b`), 'and so is the text');
});
