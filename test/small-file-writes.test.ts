/**
 * A small file's packet and its `done` leave the serving socket in one write (sender.ts corks the
 * socket for a request's last piece until the end of that turn): with Nagle off, two writes were
 * two system calls and two segments for every file of a sync of many small files. Counted on the server's sockets in process, with a client
 * that asks for 30 small files and one big one at once; every byte still arrives and checks out.
 */
import t from 'tap';
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { serve } from '../lib/serve.js';
import { FrameDecoder, encodeFrame, type Header } from '../lib/protocol/frame.js';
import { helloMessage } from '../lib/protocol/messages.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';

t.test('30 small files: one write each on the server (fails before: two); a big file is not held back', async (t) => {
  const dir = tempDir(t);
  const rand = prng(5);
  const want = new Map<string, Buffer>();
  for (let i = 0; i < 30; i++) {
    const data = randomBytes(rand, 1000 + i * 1500);
    writeFileSync(path.join(dir, `f${i}.bin`), data);
    want.set(`f${i}.bin`, data);
  }
  writeFileSync(path.join(dir, 'big.bin'), randomBytes(rand, 3 << 20));
  const node = await serve(dir, { port: 0, host: '127.0.0.1', noTracker: true, threads: 0, watch: false });
  t.teardown(() => node.close({ graceful: false }));

  // count writes on the server's side of connections (sockets it accepted)
  const proto = net.Socket.prototype as unknown as { _write: (...a: unknown[]) => unknown; _writev: (...a: unknown[]) => unknown };
  const [w1, wv] = [proto._write, proto._writev];
  let writes = 0;
  const serverSide = { has: (s: net.Socket) => s.localPort === node.port }; // (the client's local port is another)
  proto._write = function (this: net.Socket, ...a: unknown[]) {
    if (serverSide.has(this)) writes++;
    return w1.apply(this, a);
  };
  proto._writev = function (this: net.Socket, ...a: unknown[]) {
    if (serverSide.has(this)) writes++;
    return wv.apply(this, a);
  };
  t.teardown(() => {
    proto._write = w1;
    proto._writev = wv;
  });

  const sock = net.connect(node.port, '127.0.0.1');
  t.teardown(() => sock.destroy());
  await new Promise((r) => sock.once('connect', r));
  const send = (h: Header) => encodeFrame(h).forEach((b) => sock.write(b));
  const got = new Map<number, Buffer[]>();
  const done = new Set<number>();
  let bigId = -1;
  const allDone = new Promise<void>((resolve, reject) => {
    const d = new FrameDecoder({
      onMessage(h) {
        if (h.t === 'done') {
          done.add(h.id as number);
          if (done.size === 31) resolve();
        } else if (h.t === 'error') reject(new Error(`error: ${JSON.stringify(h)}`));
      },
      onPacket(h, _raw, payload) {
        const list = got.get(h.requestId) ?? [];
        list.push(Buffer.concat(payload));
        got.set(h.requestId, list);
      },
    });
    sock.on('data', (b: Buffer) => d.push(b));
  });
  send(helloMessage({ peer: '0123456789abcdef', agent: 'test', listen: null }));
  await new Promise((r) => setTimeout(r, 50));
  const before = writes;
  const names = [...want.keys()];
  names.forEach((name, i) => send({ t: 'get', id: i + 1, cid: node.library.stat(name)!.cid, from: 0, to: 1 }));
  bigId = 100;
  send({ t: 'get', id: bigId, cid: node.library.stat('big.bin')!.cid, from: 0, to: 3 });
  await allDone;
  const smallWrites = writes - before;
  names.forEach((name, i) => t.ok(Buffer.concat(got.get(i + 1) ?? []).equals(want.get(name)!), `${name}: every byte`));
  t.equal(Buffer.concat(got.get(bigId) ?? []).length, 3 << 20, 'the big file whole');
  // 30 small files, one write each; the big one: 12 pieces of 256 KiB (a connection's first 16 MiB
  // go in warm-up pieces: sender.ts) and its done, 13
  // (fewer when writes wait behind one the kernel has not taken yet: Node then sends them together)
  t.ok(smallWrites <= 30 + 13, `${smallWrites} writes for 30 small files and a 3-chunk one, at most ${30 + 13} (fails before: ${30 * 2 + 13})`);
});
