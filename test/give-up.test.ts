/**
 * A download that verifies nothing gives up (SWARM_ERR_STALLED, exit 4) after its give-up time,
 * whatever its peers say: a sole holder that answers every request `busy` for ever kept `get`
 * waiting without end (per-peer deadlines forgive a peer that says it is queueing us). The part
 * file and ticket stay for a resume; an honest holder beside the liar finishes the download. All
 * on 127.0.0.1; the fake peers close at teardown.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { ERROR_CODES, exitCodeFor, EXIT_CODES, SwarmError } from '../lib/errors.js';
import { download, fake, MiB, scaled, source, manifestOf } from './helpers/timed-download.js';

const GIVE_UP_MS = 1_500;

t.test('a sole holder that says busy for ever: the download gives up after --give-up, ticket kept', async (t) => {
  const { file, data } = source(t, 21, 3 * MiB);
  const m = manifestOf(data);
  const busy = await fake(t, file, m, 'busy');
  const r = await download(t, [busy.address], 20_000, { ...scaled(1), giveUpMs: GIVE_UP_MS });
  t.ok(r.error, 'the download failed');
  t.ok(r.error instanceof SwarmError && r.error.code === ERROR_CODES.STALLED, `SWARM_ERR_STALLED (got ${(r.error as SwarmError | null)?.code}: ${r.error?.message})`);
  t.equal(exitCodeFor((r.error as SwarmError).code), EXIT_CODES.NO_PEERS, 'exit code 4');
  t.match(r.error!.message, /no chunk verified for \d+ s \(1 peer\(s\) connected, 1 asked for chunks, 1 of them saying busy; 3 of 3 chunks missing/, 'the message says what the peers did');
  t.ok(r.ms >= GIVE_UP_MS && r.ms < GIVE_UP_MS + 5_000, `gave up after ${r.ms} ms (limit ${GIVE_UP_MS} ms)`);
  t.ok(busy.requests > 0, 'the busy peer was asked');
  t.ok(existsSync(`${r.file}.swarm-ticket`), 'the ticket is kept for a resume');
  t.notOk(existsSync(r.file), 'nothing under the final name');
});

t.test('the give-up time counts from the last verified chunk: a slow honest holder is not given up on', async (t) => {
  // 6 chunks trickled (each request at 0.6 MiB/s): the whole download takes longer than the
  // give-up time, no gap between chunks does (~1 s; 2.5 s leaves room for a loaded machine)
  const limit = 2_500;
  const { file, data } = source(t, 22, 6 * MiB);
  const m = manifestOf(data);
  const slow = await fake(t, file, m, 'trickle', { trickleBytesPerSec: 0.6 * MiB, trickleEveryMs: 20 });
  const r = await download(t, [slow.address], 40_000, { ...scaled(1), giveUpMs: limit });
  t.equal(r.error, null, `finished (${r.error?.message ?? 'ok'})`);
  t.ok(r.transferMs > limit, `took ${r.transferMs} ms, longer than the give-up time`);
  t.ok((await readFile(r.file)).equals(data), 'the bytes are right');
});

t.test('a busy liar beside an honest holder: the download finishes from the honest one', async (t) => {
  const { file, data } = source(t, 23, 4 * MiB);
  const m = manifestOf(data);
  const busy = await fake(t, file, m, 'busy');
  const honest = await fake(t, file, m, 'honest');
  const r = await download(t, [busy.address, honest.address], 20_000, { ...scaled(1), giveUpMs: 5_000 });
  t.equal(r.error, null, `finished (${r.error?.message ?? 'ok'})`);
  t.ok((await readFile(r.file)).equals(data), 'the bytes are right');
});
