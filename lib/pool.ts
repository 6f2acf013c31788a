/**
 * The chunk pool: where chunks are hashed and written. `ThreadChunkPool` is a fixed-size piscina
 * pool (workers/chunk-task.js); `InlineChunkPool` runs the same tasks on the calling thread and
 * is the baseline for benchmarks and the choice for `--threads 0`.
 *
 * Fixed size (min = max threads) with a long idle timeout: piscina's defaults retire idle threads
 * and start new ones, which on a 2-core VM made the pool slower than inline. Write buffers are
 * transferred to the pool and come back in the result for reuse.
 */
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { workerUrl } from './paths.js';
import type { Piscina } from 'piscina';
import { ERROR_CODES, SwarmError, fromWire, type WireError } from './errors.js';
import { hashRange, hashRangeWithSums, verifyAndWrite, type HashRangeTask, type WriteResult, type WriteTask } from './chunk-tasks.js';
import { stageFiles, type StageResult, type StageTask } from './stage-files.js';

export interface ChunkPool {
  readonly threads: number;
  /** BLAKE3 of a range of a file's chunks, 32 bytes each. */
  hashRange(task: Omit<HashRangeTask, 'op'>): Promise<Uint8Array>;
  /** The same, with every packet payload's sum (see chunk-tasks.ts). */
  hashRangeWithSums(task: Omit<HashRangeTask, 'op' | 'sums'>): Promise<{ hashes: Uint8Array; sums: Uint16Array }>;
  /** Hash `bytes[0, length)`; if it matches `expected`, write it at `position`. `bytes` is transferred. */
  verifyAndWrite(task: Omit<WriteTask, 'op'>): Promise<WriteResult>;
  /** Verify a batch of small files and write each good one to its temp file (stage-files.ts). `bytes` are transferred. */
  stageFiles(task: Omit<StageTask, 'op'>): Promise<StageResult[]>;
  /** Tasks queued or running. */
  readonly pending: number;
  destroy(): Promise<void>;
}

export const CHUNK_TASK_URL = workerUrl('chunk-task.js');

export function defaultPoolThreads(): number {
  return Math.max(1, Math.min(availableParallelism(), 8));
}

/**
 * piscina is loaded when a thread pool is first made (a process that hashes and writes on its own
 * thread never pays for it: ~20 ms of start-up, which counts when many peers start at once).
 */
let piscinaClass: typeof Piscina | null = null;
function loadPiscina(): typeof Piscina {
  piscinaClass ??= (createRequire(import.meta.url)('piscina') as { Piscina: typeof Piscina }).Piscina;
  return piscinaClass;
}

type TaskResult = { hashes?: Uint8Array; sums?: Uint16Array; error?: WireError; staged?: StageResult[] } & Partial<WriteResult>;

export class ThreadChunkPool implements ChunkPool {
  private readonly pool: Piscina;
  readonly threads: number;
  private inFlight = 0;

  constructor(threads = defaultPoolThreads()) {
    this.threads = threads;
    const PiscinaPool = loadPiscina();
    this.pool = new PiscinaPool({
      filename: CHUNK_TASK_URL.href,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 60_000,
      // a few queued tasks per thread keep every thread busy; the coordinator bounds the rest
      concurrentTasksPerWorker: 1,
    });
  }

  get pending(): number {
    return this.inFlight;
  }

  private async run(task: HashRangeTask | WriteTask | StageTask, transferList?: ArrayBuffer[]): Promise<TaskResult> {
    this.inFlight++;
    try {
      const r = (await this.pool.run(task, transferList ? { transferList } : {})) as TaskResult;
      if (r.error) throw fromWire(r.error);
      return r;
    } finally {
      this.inFlight--;
    }
  }

  async hashRange(task: Omit<HashRangeTask, 'op'>): Promise<Uint8Array> {
    const r = await this.run({ op: 'hash', ...task });
    if (!r.hashes) throw new SwarmError(ERROR_CODES.INTERNAL, 'hash task returned no hashes');
    return r.hashes;
  }

  async hashRangeWithSums(task: Omit<HashRangeTask, 'op' | 'sums'>): Promise<{ hashes: Uint8Array; sums: Uint16Array }> {
    const r = await this.run({ op: 'hash', ...task, sums: true });
    if (!r.hashes || !r.sums) throw new SwarmError(ERROR_CODES.INTERNAL, 'hash task returned no hashes');
    return { hashes: r.hashes, sums: r.sums };
  }

  async verifyAndWrite(task: Omit<WriteTask, 'op'>): Promise<WriteResult> {
    const r = await this.run({ op: 'write', ...task }, [task.bytes.buffer as ArrayBuffer]);
    return { ok: r.ok === true, bytes: r.bytes!, hashMs: r.hashMs ?? 0, writeMs: r.writeMs ?? 0 };
  }

  async stageFiles(task: Omit<StageTask, 'op'>): Promise<StageResult[]> {
    // each file's bytes own their memory (small.ts allocates them so); a view into shared memory is copied
    const bytes = task.bytes.map((b) => (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b)));
    const r = await this.run({ op: 'stage', files: task.files, bytes }, bytes.filter((b) => b.byteLength > 0).map((b) => b.buffer as ArrayBuffer));
    if (!r.staged) throw new SwarmError(ERROR_CODES.INTERNAL, 'stage task returned nothing');
    return r.staged;
  }

  async destroy(): Promise<void> {
    await this.pool.destroy();
  }
}

export class InlineChunkPool implements ChunkPool {
  readonly threads = 0;
  private inFlight = 0;

  get pending(): number {
    return this.inFlight;
  }

  async hashRange(task: Omit<HashRangeTask, 'op'>): Promise<Uint8Array> {
    return hashRange({ op: 'hash', ...task });
  }

  async hashRangeWithSums(task: Omit<HashRangeTask, 'op' | 'sums'>): Promise<{ hashes: Uint8Array; sums: Uint16Array }> {
    return hashRangeWithSums({ op: 'hash', ...task });
  }

  async verifyAndWrite(task: Omit<WriteTask, 'op'>): Promise<WriteResult> {
    this.inFlight++;
    try {
      return verifyAndWrite({ op: 'write', ...task });
    } finally {
      this.inFlight--;
    }
  }

  async stageFiles(task: Omit<StageTask, 'op'>): Promise<StageResult[]> {
    return stageFiles({ op: 'stage', ...task });
  }

  async destroy(): Promise<void> {}
}

export function createChunkPool(threads?: number): ChunkPool {
  return threads === 0 ? new InlineChunkPool() : new ThreadChunkPool(threads);
}
