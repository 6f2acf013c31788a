/**
 * Hostile re-check of the seeder's spread (lib/scheduling/spread.ts, forward-only cursors): a
 * chunk shown to anyone is "given out" for good, so a peer that only claims (`have`, no byte
 * taken from us) each chunk it is shown makes the seeder show it the next fresh ones, until none
 * is fresh. Every later downloader is then shown the same chunks, in the same order (the given-out
 * list), instead of distinct ones: super-seeding is undone by one connection sending fake haves
 * (the picker before the cursors took a claim back off the chunk's count: it stayed fresh).
 * Pure: no sockets.
 */
import t from 'tap';
import { Spread } from '../lib/scheduling/spread.js';
import { bitSet } from '../lib/scheduling/availability.js';

function shown(bits: Uint8Array, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (bitSet(bits, i)) out.push(i);
  return out;
}

t.test('a peer claiming every chunk it is shown does not make later downloaders see the same chunks', async (t) => {
  const N = 1_000;
  let seed = 7;
  const s = new Spread(N, () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  s.join(1); // the first peer sees everything
  const queue = shown(s.join(2), N);
  let claims = 0;
  while (queue.length > 0 && claims < 10 * N) {
    claims++;
    queue.push(...s.had(2, queue.shift()!)); // "I have it" for each chunk shown, nothing taken
  }
  const a = shown(s.join(3), N);
  const b = shown(s.join(4), N);
  const common = a.filter((c) => b.includes(c));
  t.equal(a.length, 4, 'a window is shown');
  t.same(common, [], `after ${claims} claims: honest A is shown [${a}], B [${b}]: distinct`);
});
