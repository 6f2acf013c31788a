/**
 * Where a download's work runs, chosen from the number of cores by measurement.
 *
 * On 1-2 cores everything runs on the main thread (no peer threads, no pool threads): measured on
 * this project's 2-core VM, `bench:get` 1 GiB from 4 local peers took 1.23 s/GiB inline against
 * 1.44 threaded, with half the memory; a flash crowd of 8 `swarm get` processes used 10.5 CPU s
 * inline against 14.4 threaded (each thread costs start-up and hand-offs that the few cores need
 * for the work itself). With more cores, peer connections get threads of their own (half the
 * cores) and hashing and writing a pool (one thread per core, at most 8), so receiving, hashing
 * and writing spread over the machine. `--threads` and `--peer-threads` override it; `--profile`
 * prints the layout used and why.
 */
import { availableParallelism } from 'node:os';

export interface Layout {
  poolThreads: number;
  peerThreads: number;
  why: string;
}

export function defaultLayout(cores = availableParallelism()): Layout {
  if (cores <= 2) return { poolThreads: 0, peerThreads: 0, why: `${cores} core(s): inline is faster here (measured)` };
  return { poolThreads: Math.min(cores, 8), peerThreads: Math.max(1, Math.floor(cores / 2)), why: `${cores} cores: peer threads and a hashing pool` };
}
