import t from 'tap';
import { Registry } from '../lib/tracker/registry.js';
import { checkAnnounced, checkDirectory, checkVersions } from '../lib/protocol/entries.js';

const cidOf = (tag: string) => Buffer.from(tag.padEnd(32, '.')).toString('hex').slice(0, 64);
const f = (name: string, mtime: number, tag: string, size = 10, partial = false) => ({ name, mtime, size, cid: cidOf(tag), partial });
const ports = (hs: { port: number }[]) => hs.map((h) => h.port);

t.test('register, update, delete, unregister, who-has', async (t) => {
  const r = new Registry();
  r.register('a', { ip: '127.0.0.1', port: 1 }, [f('x', 100, 'c1'), f('y', 100, 'c2')], 0);
  r.register('b', { ip: '127.0.0.1', port: 2 }, [f('x', 100, 'c1')], 0);
  t.same(r.whoHas('x')!.holders, [{ ip: '127.0.0.1', port: 1 }, { ip: '127.0.0.1', port: 2 }]);
  r.update('b', [f('z', 5, 'c3')], 1);
  t.same(ports(r.whoHas('z')!.holders), [2]);
  r.delete('a', ['x'], 2);
  t.same(r.whoHas('x')!.holders, [{ ip: '127.0.0.1', port: 2 }]);
  t.ok(r.unregister('b'));
  t.equal(r.whoHas('x'), null);
  t.equal(r.whoHas('z'), null);
  t.same([...r.directory().keys()], ['y']);
  t.equal(r.entryCount, 1, 'entries are counted down as well as up');
  t.throws(() => r.update('nobody', [], 0), { code: 'SWARM_ERR_USAGE' });
});

t.test('the newest version comes first; the others stay listed; partial holders are listed apart', async (t) => {
  const r = new Registry();
  r.register('old1', { ip: '127.0.0.1', port: 1 }, [f('doc', 100, 'old')], 0);
  r.register('old2', { ip: '127.0.0.1', port: 2 }, [f('doc', 100, 'old')], 0);
  r.register('new', { ip: '127.0.0.1', port: 3 }, [f('doc', 200, 'new', 20)], 0);
  r.register('leech', { ip: '127.0.0.1', port: 4 }, [f('doc', 200, 'new', 20, true)], 0);
  const e = r.whoHas('doc')!;
  t.equal(e.cid, cidOf('new'));
  t.equal(e.mtime, 200);
  t.equal(e.size, 20);
  t.equal(e.versions, 2);
  t.same(ports(e.holders), [3]);
  t.same(ports(e.partial), [4], 'a downloader that shares is a partial holder');
  t.same(r.versions('doc').map((v) => v.cid), [cidOf('new'), cidOf('old')]);
  t.same(r.legacyDirectory(), { doc: { ip: '127.0.0.1', port: 3, mtime: 200 } });
  t.same(ports(r.peersOf(cidOf('new'))!.partial), [4]);
  r.unregister('new');
  r.unregister('leech');
  t.equal(r.whoHas('doc')!.holders.length, 2, 'the older version is the newest once the newer leaves');
});

t.test('one address registered by many connections is one holder', async (t) => {
  const r = new Registry();
  for (let i = 0; i < 60; i++) r.register(`k${i}`, { ip: '127.0.0.9', port: 4000 }, [f('x', 1, 'c')], 0);
  t.same(r.whoHas('x')!.holders, [{ ip: '127.0.0.9', port: 4000 }]);
});

t.test('expiry after missed keepalives', async (t) => {
  const r = new Registry();
  r.register('a', { ip: '127.0.0.1', port: 1 }, [f('x', 1, 'c')], 0);
  r.register('b', { ip: '127.0.0.1', port: 2 }, [f('x', 1, 'c')], 0);
  r.keepalive('a', 14_000);
  t.same(r.expire(15_001, 15_000), ['b']);
  t.same(ports(r.whoHas('x')!.holders), [1]);
  t.same(r.expire(29_000, 15_000), []);
  t.same(r.expire(29_001, 15_000), ['a']);
  t.equal(r.peerCount, 0);
});

t.test('limits: peers, per address, files per peer, entries in total and per address', async (t) => {
  const r = new Registry({ maxPeers: 3, maxPeersPerIp: 2, maxFilesPerPeer: 2, maxEntries: 5, maxEntriesPerIp: 3 });
  r.register('a', { ip: '127.0.0.1', port: 1 }, [], 0);
  r.register('b', { ip: '127.0.0.1', port: 2 }, [], 0);
  t.throws(() => r.register('c', { ip: '127.0.0.1', port: 3 }, [], 0), { code: 'SWARM_ERR_LIMIT' }, 'third registration from one address');
  r.register('d', { ip: '127.0.0.2', port: 1 }, [], 0);
  t.throws(() => r.register('e', { ip: '127.0.0.3', port: 1 }, [], 0), { code: 'SWARM_ERR_LIMIT' }, 'tracker full');
  t.throws(() => r.update('a', [f('1', 1, 'c'), f('2', 1, 'c'), f('3', 1, 'c')], 0), { code: 'SWARM_ERR_LIMIT' }, 'files per peer');
  r.update('a', [f('1', 1, 'c'), f('2', 1, 'c')], 0);
  t.throws(() => r.update('b', [f('3', 1, 'c'), f('4', 1, 'c')], 0), { code: 'SWARM_ERR_LIMIT' }, 'entries per address');
  r.update('d', [f('5', 1, 'c'), f('6', 1, 'c')], 0);
  r.update('b', [f('3', 1, 'c')], 0);
  t.equal(r.entryCount, 5);
  t.throws(() => r.update('d', [f('7', 1, 'c')], 0), { code: 'SWARM_ERR_LIMIT' }, 'entries in total');
});

t.test('entry checks drop the bad entry, keep the rest', async (t) => {
  const cid = cidOf('c');
  const { ok, dropped } = checkAnnounced(
    [
      { name: 'good', mtime: 5, size: 1, cid },
      { name: '../etc', mtime: 1, size: 1, cid },
      { name: 'back\\slash', mtime: 1, size: 1, cid },
      { name: 'huge-mtime', mtime: 1e300, size: 1, cid },
      { name: 'neg', mtime: -1, size: 1, cid },
      { name: 'bad-size', mtime: 1, size: 1.5, cid },
      { name: 'bad-cid', mtime: 1, size: 1, cid: 'c' },
      'not an object',
      { name: 'also-good', mtime: 12.9, size: 0, cid, partial: true },
    ],
    false,
  );
  t.same(ok.map((x) => x.name), ['good', 'also-good']);
  t.equal(ok[1]!.mtime, 12, 'mtimes round down');
  t.ok(ok[1]!.partial);
  t.equal(dropped.length, 7);
  const legacy = checkAnnounced([{ name: 'a', mtime: 12.9 }, { name: 'b', mtime: 'x' }], true);
  t.same(legacy.ok, [{ name: 'a', mtime: 12, size: -1, cid: 'legacy:12', partial: false }]);
  t.equal(legacy.dropped.length, 1);
});

t.test('directory and version answers from a tracker are checked entry by entry', async (t) => {
  const cid = cidOf('c');
  const good = { cid, size: 3, mtime: 10, holders: [{ ip: '127.0.0.1', port: 1 }], partial: [], versions: 1 };
  const d = checkDirectory({
    ok: good,
    'x/../../etc': good,
    badMtime: { ...good, mtime: 1e300 },
    badPort: { ...good, holders: [{ ip: '127.0.0.1', port: 70000 }] },
    dupes: { ...good, holders: Array.from({ length: 60 }, () => ({ ip: '127.0.0.1', port: 7 })) },
    notAnIp: { ...good, holders: [{ ip: 'example.com', port: 7 }] },
  });
  t.same(d.ok.map(([n]) => n).sort(), ['dupes', 'ok']);
  t.same(d.ok.find(([n]) => n === 'dupes')![1].holders, [{ ip: '127.0.0.1', port: 7 }], 'duplicate holders collapse to one');
  t.equal(d.dropped.length, 4);
  const v = checkVersions([{ ...good, mtime: 5 }, { ...good, mtime: 50, cid: cidOf('n') }, 17]);
  t.same(v.ok.map((x) => x.mtime), [50, 5], 'newest first');
  t.equal(v.dropped.length, 1);
});
