import t from 'tap';
import { openSync, writeSync, closeSync, ftruncateSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { serve } from '../lib/serve.js';
import { get } from '../lib/download/get.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';

const GiB = 2 ** 30;

function readAt(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

t.test('a file over 4 GiB (sparse source) arrives with the right bytes at high offsets', async (t) => {
  const src = tempDir(t);
  const file = path.join(src, 'vm.img');
  const size = 4 * GiB + 3 * 2 ** 20 + 5;
  const fd = openSync(file, 'w');
  ftruncateSync(fd, size);
  const marks = [
    { at: 2 ** 32 - 100, bytes: randomBytes(prng(41), 300) }, // straddles the 4 GiB line
    { at: 4 * GiB + 2 ** 20 + 12345, bytes: randomBytes(prng(42), 70_000) },
    { at: size - 1000, bytes: randomBytes(prng(43), 1000) }, // the tail of the last, short chunk
    { at: 7, bytes: randomBytes(prng(44), 10) },
  ];
  for (const m of marks) writeSync(fd, m.bytes, 0, m.bytes.length, m.at);
  closeSync(fd);
  const peers = [];
  for (let i = 0; i < 2; i++) {
    const h = await serve(src, { port: 0, noTracker: true, watch: false, threads: 2 });
    t.teardown(() => h.close({ graceful: false }));
    peers.push(`127.0.0.1:${h.port}`);
  }
  const out = tempDir(t);
  const r = await get('vm.img', { peers, outDir: out });
  const dest = path.join(out, 'vm.img');
  t.equal(statSync(dest).size, size);
  for (const m of marks) t.ok(readAt(dest, m.at, m.bytes.length).equals(m.bytes), `bytes at offset ${m.at}`);
  t.ok(readAt(dest, 3 * GiB, 4096).equals(Buffer.alloc(4096)), 'zeros stay zeros');
  t.equal(r.fetchedChunks, Math.ceil(size / 2 ** 20), 'every chunk verified against its hash');
  t.ok(statSync(dest).blocks * 512 < GiB, 'zero chunks were not written: the result is sparse too');
});
