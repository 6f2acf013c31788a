/**
 * piscina task entry: hashes file ranges and verifies+writes received chunks (lib/chunk-tasks.ts),
 * and verifies and stages batches of small files for sync (lib/stage-files.ts).
 * Chunk buffers arrive by transfer and go back by transfer inside the result (a piscina
 * "transferable" wrapper), so the main thread can hand them to a peer worker again.
 */
import { Piscina } from 'piscina';
import { hashRangeWithSums, verifyAndWrite, type HashRangeTask, type WriteTask, type WriteResult } from '../lib/chunk-tasks.js';
import { toWire } from '../lib/errors.js';
import { stageFiles, type StageTask } from '../lib/stage-files.js';

/** A result whose chunk buffer is transferred, not cloned, back to the caller. */
function movable(r: WriteResult): unknown {
  return Piscina.move({
    [Piscina.transferableSymbol]: r.bytes.buffer,
    [Piscina.valueSymbol]: r,
  } as unknown as ArrayBuffer);
}

export default function chunkTask(task: HashRangeTask | WriteTask | StageTask): unknown {
  try {
    if (task.op === 'hash') return hashRangeWithSums(task, task.sums === true);
    if (task.op === 'stage') return { staged: stageFiles(task) };
    return movable(verifyAndWrite(task));
  } catch (err) {
    return { error: toWire(err) };
  }
}
