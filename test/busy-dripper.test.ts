/**
 * Hostile review of `get --give-up` (give-up.ts GiveUp.ifStalled): a sole holder that answers
 * `busy` to every request and lets one real chunk through just inside the give-up time kept a
 * download alive at a rate the per-peer trickle rule would cut, for as long as it liked (`busy`
 * excused it from every deadline). Now a request kept waiting for 3 request timeouts is a
 * timeout strike, and the holder goes after three. Control: the same rate without `busy` is cut
 * as a trickle. Deadlines are the defaults scaled by 1/20 so the
 * scenario fits in seconds. All on 127.0.0.1; fake peers close at teardown.
 */
import t from 'tap';
import { SwarmError, ERROR_CODES } from '../lib/errors.js';
import { download, fake, MiB, scaled, source, manifestOf } from './helpers/timed-download.js';

const F = 0.05; // first chunk 250 ms, request timeout 1 s, stall 0.5 s: a trickle is < 1 chunk per 2 s
const GIVE_UP_MS = 3_000;
const DRIP_MS = 2_500; // slower than the trickle floor, just inside the give-up time

t.test('control: the same rate without `busy` is cut as a trickle', async (t) => {
  const { file, data } = source(t, 31, 6 * MiB);
  const m = manifestOf(data);
  const slow = await fake(t, file, m, 'trickle', { trickleBytesPerSec: MiB / (DRIP_MS / 1000), trickleEveryMs: 50 });
  const r = await download(t, [slow.address], 12_000, { ...scaled(F), giveUpMs: GIVE_UP_MS });
  t.comment(`trickler: ${r.error ? r.error.message : 'finished'} after ${r.ms} ms, drops: ${r.dropped.map((d) => d.reason).join('; ')}`);
  t.ok(r.dropped.length > 0 && r.ms < 4_000, 'dropped (trickle or request timeouts) within seconds');
  t.ok(r.error, 'the download did not wait for it');
});

t.test('a sole holder saying `busy` and dripping a chunk per (give-up - e): its requests time out after 3 request timeouts in its queue, it is dropped, the download ends', async (t) => {
  const { file, data } = source(t, 32, 6 * MiB);
  const m = manifestOf(data);
  const liar = await fake(t, file, m, 'busy', { busyEveryMs: 200, busyDripMs: DRIP_MS });
  // alone it ends at ~8 s (3 strikes of 3 s waits); the bound leaves room for a loaded machine (a full test run)
  const LIMIT = 20_000;
  const r = await download(t, [liar.address], LIMIT, { ...scaled(F), giveUpMs: GIVE_UP_MS });
  const code = r.error instanceof SwarmError ? r.error.code : String(r.error?.message);
  t.comment(`busy dripper: ${code} after ${r.ms} ms, ${r.chunks} chunks verified (${liar.dripped} dripped), drops: ${r.dropped.map((d) => d.reason).join('; ') || 'none'}`);
  const ended = r.error instanceof SwarmError && (r.error.code === ERROR_CODES.STALLED || r.error.code === ERROR_CODES.NO_PEERS);
  t.ok(ended, 'the download gives up (STALLED) or loses its only holder (NO_PEERS) instead of running until our outer bound');
  t.ok(r.dropped.some((d) => /waited in its queue/.test(d.reason)), 'the holder was dropped for keeping requests waiting');
  t.ok(r.ms >= LIMIT - 200 || r.error?.message !== `still running after ${LIMIT} ms`, 'bounded by the test');
});
