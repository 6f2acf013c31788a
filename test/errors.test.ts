import t from 'tap';
import { Worker } from 'node:worker_threads';
import { ERROR_CODES, EXIT_CODES, SwarmError, exitCodeFor, fromWire, toWire, asSwarmError } from '../lib/errors.js';

t.test('codes survive a trip through a worker thread and JSON', async (t) => {
  const err = new SwarmError(ERROR_CODES.BAD_CHECKSUM, 'packet 3 bad', { peer: 'a:1' });
  const worker = new Worker('const { parentPort } = require("node:worker_threads"); parentPort.on("message", (m) => { parentPort.postMessage(m); });', { eval: true });
  const echoed = await new Promise<unknown>((resolve) => {
    worker.once('message', resolve);
    worker.postMessage(toWire(err));
  });
  await worker.terminate();
  const back = fromWire(JSON.parse(JSON.stringify(echoed)));
  t.equal(back.code, ERROR_CODES.BAD_CHECKSUM);
  t.equal(back.message, 'packet 3 bad');
  t.same(back.details, { peer: 'a:1' });
  t.equal(fromWire({ code: 'NOT_A_CODE', message: 'x' }).code, ERROR_CODES.INTERNAL);
});

t.test('system errors get codes', async (t) => {
  const enospc = Object.assign(new Error('no space'), { code: 'ENOSPC' });
  t.equal(asSwarmError(enospc).code, ERROR_CODES.DISK_FULL);
  t.equal(exitCodeFor(asSwarmError(enospc).code), EXIT_CODES.IO);
});

t.test('exit codes are distinct per failure family', async (t) => {
  t.equal(exitCodeFor(ERROR_CODES.NOT_FOUND), 3);
  t.equal(exitCodeFor(ERROR_CODES.NO_PEERS), 4);
  t.equal(exitCodeFor(ERROR_CODES.HASH_MISMATCH), 5);
  t.equal(exitCodeFor(ERROR_CODES.IO), 6);
  t.equal(exitCodeFor(ERROR_CODES.INTERRUPTED), 130);
  for (const code of Object.values(ERROR_CODES)) t.type(exitCodeFor(code), 'number');
});
