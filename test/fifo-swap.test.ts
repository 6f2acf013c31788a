/**
 * A named pipe swapped in for a shared file after it was scanned (by anyone who can write in the
 * share): opening it must not wait for a writer. The serving path and the inline hasher open files
 * synchronously on the main thread, so an open that blocked would stop the whole process (every
 * connection, every download) for as long as nobody writes into the pipe. O_NONBLOCK makes the open
 * return at once; the inode check then refuses it.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { realpathSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ERROR_CODES } from '../lib/errors.js';
import { hashRangeWithSums } from '../lib/chunk-tasks.js';
import { MIN_CHUNK_BYTES } from '../lib/constants.js';
import { openChecked, fileHandles } from '../lib/share/file-source.js';
import { tempDir } from './helpers/tmp.js';

const hasMkfifo = spawnSync('mkfifo', ['--version']).status === 0;

t.test('a FIFO swapped in for a scanned file is refused at once, by the server and by the hasher', { skip: hasMkfifo ? false : 'mkfifo (coreutils) is not installed here' }, async (t) => {
  const dir = realpathSync(tempDir(t));
  const file = path.join(dir, 'a.bin');
  writeFileSync(file, Buffer.alloc(MIN_CHUNK_BYTES + 10, 7));
  const s = statSync(file);
  const st = { size: s.size, mtimeMs: s.mtimeMs, dev: s.dev, ino: s.ino };
  unlinkSync(file);
  t.equal(spawnSync('mkfifo', [file]).status, 0, 'a named pipe now has the name');
  const open0 = fileHandles().open;

  const started = Date.now();
  const err = await openChecked(dir, 'a.bin', st).then(
    () => null,
    (e: unknown) => e as { code?: string },
  );
  t.match(err, { code: ERROR_CODES.FILE_CHANGED }, 'the server refuses it as another file');
  t.ok(Date.now() - started < 1_000, `without waiting for a writer (${Date.now() - started} ms)`);
  t.equal(fileHandles().open, open0, 'and holds no descriptor');

  t.throws(
    () => hashRangeWithSums({ op: 'hash', path: file, ...st, firstChunk: 0, endChunk: 1, chunkBytes: MIN_CHUNK_BYTES }),
    { code: ERROR_CODES.FILE_CHANGED },
    'the hasher refuses it too, at once',
  );
});
