/**
 * Where the time of a download goes (`swarm get --profile`): seconds per stage, summed over the
 * threads that run it, beside the wall time. Stages: resolve (tracker + manifest), setup (part
 * file, ticket, threads), receive (socket reads and packet decoding in the peer threads: their
 * busy time less copy and checksum), copy, checksum, hash, write, coordinate (main thread busy),
 * finish (fsync, rename, mtime), and wait (pool threads idle during the transfer: the share of
 * hashing/writing capacity left unused because chunks were not there yet).
 */

export interface PeerThreadTimes {
  /** Busy milliseconds of the thread's event loop. */
  busyMs: number;
  copyMs: number;
  checksumMs: number;
}

export interface Breakdown {
  wallSeconds: number;
  phases: { resolve: number; setup: number; transfer: number; finish: number };
  stages: { receive: number; copy: number; checksum: number; hash: number; write: number; coordinate: number; wait: number };
  threads: { peer: number; pool: number };
}

export function formatBreakdown(b: Breakdown): string {
  const rows: [string, number, string][] = [
    ['resolve (tracker, manifest)', b.phases.resolve, 'main'],
    ['setup (part file, ticket, threads)', b.phases.setup, 'main'],
    ['transfer (first request to last chunk on disk)', b.phases.transfer, 'wall'],
    ['  receive + decode', b.stages.receive, `${b.threads.peer || 'main'} peer thread(s)`],
    ['  copy into chunk buffers', b.stages.copy, 'peer'],
    ['  packet checksums', b.stages.checksum, 'peer'],
    ['  BLAKE3 of chunks', b.stages.hash, `${b.threads.pool || 'main'} pool thread(s)`],
    ['  positional writes', b.stages.write, 'pool'],
    ['  coordinate (main thread busy)', b.stages.coordinate, 'main'],
    ['  pool idle, waiting for chunks', b.stages.wait, 'pool'],
    ['finish (fsync, rename, mtime)', b.phases.finish, 'main'],
  ];
  const lines = rows.map(([name, secs, where]) => `${name.padEnd(48)} ${secs.toFixed(3).padStart(7)} s ${((secs / b.wallSeconds) * 100).toFixed(0).padStart(4)}%  ${where}`);
  return [`time breakdown (wall ${b.wallSeconds.toFixed(3)} s; stages inside transfer are summed over threads)`, ...lines].join('\n');
}
