import t from 'tap';
import { Registry, parseAnnounced } from '../lib/tracker/registry.js';

const f = (name: string, mtime: number, cid: string, size = 10) => ({ name, mtime, size, cid });

t.test('register, update, delete, unregister, who-has', async (t) => {
  const r = new Registry();
  r.register('a', { ip: '127.0.0.1', port: 1 }, [f('x', 100, 'c1'), f('y', 100, 'c2')], 0);
  r.register('b', { ip: '127.0.0.1', port: 2 }, [f('x', 100, 'c1')], 0);
  t.same(r.whoHas('x')!.holders, [{ ip: '127.0.0.1', port: 1 }, { ip: '127.0.0.1', port: 2 }]);
  r.update('b', [f('z', 5, 'c3')], 1);
  t.equal(r.whoHas('z')!.port, 2);
  r.delete('a', ['x'], 2);
  t.same(r.whoHas('x')!.holders, [{ ip: '127.0.0.1', port: 2 }]);
  t.ok(r.unregister('b'));
  t.equal(r.whoHas('x'), null);
  t.equal(r.whoHas('z'), null);
  t.same([...r.directory().keys()], ['y']);
  t.throws(() => r.update('nobody', [], 0), { code: 'SWARM_ERR_USAGE' });
});

t.test('the newest version wins; holders of older versions are not offered', async (t) => {
  const r = new Registry();
  r.register('old1', { ip: '127.0.0.1', port: 1 }, [f('doc', 100, 'old')], 0);
  r.register('old2', { ip: '127.0.0.1', port: 2 }, [f('doc', 100, 'old')], 0);
  r.register('new', { ip: '127.0.0.1', port: 3 }, [f('doc', 200, 'new', 20)], 0);
  const e = r.whoHas('doc')!;
  t.equal(e.cid, 'new');
  t.equal(e.mtime, 200);
  t.equal(e.size, 20);
  t.same(e.holders, [{ ip: '127.0.0.1', port: 3 }]);
  t.same(r.legacyDirectory(), { doc: { ip: '127.0.0.1', port: 3, mtime: 200 } });
  r.unregister('new');
  t.equal(r.whoHas('doc')!.holders.length, 2, 'the older version comes back when the newer leaves');
});

t.test('expiry after missed keepalives', async (t) => {
  const r = new Registry();
  r.register('a', { ip: '127.0.0.1', port: 1 }, [f('x', 1, 'c')], 0);
  r.register('b', { ip: '127.0.0.1', port: 2 }, [f('x', 1, 'c')], 0);
  r.keepalive('a', 14_000);
  t.same(r.expire(15_001, 15_000), ['b']);
  t.same(r.whoHas('x')!.holders, [{ ip: '127.0.0.1', port: 1 }]);
  t.same(r.expire(29_000, 15_000), []);
  t.same(r.expire(29_001, 15_000), ['a']);
  t.equal(r.peerCount, 0);
});

t.test('limits and entry checks', async (t) => {
  const r = new Registry({ maxPeers: 1, maxFilesPerPeer: 2 });
  r.register('a', { ip: '127.0.0.1', port: 1 }, [], 0);
  t.throws(() => r.register('b', { ip: '127.0.0.1', port: 2 }, [], 0), { code: 'SWARM_ERR_LIMIT' });
  t.throws(() => r.update('a', [f('1', 1, 'c'), f('2', 1, 'c'), f('3', 1, 'c')], 0), { code: 'SWARM_ERR_LIMIT' });
  t.throws(() => parseAnnounced({ name: '../etc', mtime: 1, size: 1, cid: 'c' }, false), { code: 'SWARM_ERR_BAD_MESSAGE' });
  t.throws(() => parseAnnounced({ name: 'a', mtime: 'x' }, true), { code: 'SWARM_ERR_BAD_MESSAGE' });
  t.same(parseAnnounced({ name: 'a', mtime: 12.9 }, true), { name: 'a', mtime: 12, size: -1, cid: 'legacy:12' });
});
