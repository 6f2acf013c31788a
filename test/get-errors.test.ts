import t from 'tap';
import { TrackerServer } from '../lib/tracker/server.js';
import { FramedClient } from '../lib/net/framed-client.js';
import { tempDir } from './helpers/tmp.js';
import { swarm } from './helpers/procs.js';
import { freePort } from '../bench/lib/ports.js';

t.test('unknown name: exit 3; unreachable tracker: exit 4; holders that are all gone: exit 4', async (t) => {
  const tr = new TrackerServer({ port: 0 });
  await tr.listen();
  t.teardown(() => tr.close());
  const out = tempDir(t);

  const unknown = swarm(t, ['get', 'nope.iso', '-t', `127.0.0.1:${tr.port}`, '-o', out, '--json']);
  t.equal((await unknown.exit).code, 3);
  t.match(unknown.lines.join('\n'), /SWARM_ERR_NOT_FOUND/);

  const dead = await freePort();
  const noTracker = swarm(t, ['get', 'x.iso', '-t', `127.0.0.1:${dead}`, '-o', out, '--json']);
  t.equal((await noTracker.exit).code, 4);
  t.match(noTracker.lines.join('\n'), /SWARM_ERR_TRACKER_UNREACHABLE/);

  // a peer registers x.iso with a serving port where nobody listens
  const ghost = new FramedClient('127.0.0.1', tr.port, { side: 'trackerReply' });
  await ghost.connect();
  await ghost.request({ t: 'register', port: await freePort(), files: [{ name: 'x.iso', mtime: 1, size: 10, cid: 'ab'.repeat(32) }] }, 'ok');
  t.teardown(() => ghost.destroy());
  const noPeers = swarm(t, ['get', 'x.iso', '-t', `127.0.0.1:${tr.port}`, '-o', out, '--json']);
  t.equal((await noPeers.exit).code, 4);
  t.match(noPeers.lines.join('\n'), /SWARM_ERR_NO_PEERS/);

  const escape = swarm(t, ['get', '../etc/passwd', '-t', `127.0.0.1:${tr.port}`, '-o', out]);
  t.equal((await escape.exit).code, 2, 'a name that escapes the output folder is a usage error');
});

t.test('--help lists the commands; unknown options are usage errors', async (t) => {
  const help = swarm(t, ['--help']);
  t.equal((await help.exit).code, 0);
  const text = help.lines.join('\n');
  for (const cmd of ['get', 'serve', 'tracker', 'ls', 'who']) t.match(text, new RegExp(`\\b${cmd}\\b`));
  const bad = swarm(t, ['get', '--frobnicate']);
  t.equal((await bad.exit).code, 2);
});

t.test('serve and tracker: a missing folder is exit 3, a taken port exit 2, both with a clear message', async (t) => {
  const missing = swarm(t, ['serve', '/nonexistent/swarm-share', '--port', '0', '--no-tracker', '--json']);
  t.equal((await missing.exit).code, 3);
  t.match(missing.lines.join('\n'), /"code":"SWARM_ERR_NOT_FOUND".*not a folder/);
  const tr = new TrackerServer({ port: 0 });
  await tr.listen();
  t.teardown(() => tr.close());
  const taken = swarm(t, ['tracker', '--port', String(tr.port), '--json']);
  t.equal((await taken.exit).code, 2);
  t.match(taken.lines.join('\n'), /"code":"SWARM_ERR_LISTEN".*in use/);
  const share = tempDir(t);
  const serveTaken = swarm(t, ['serve', share, '--port', String(tr.port), '--no-tracker', '--json']);
  t.equal((await serveTaken.exit).code, 2);
  t.notMatch(serveTaken.lines.join('\n'), /internal error/);
});
