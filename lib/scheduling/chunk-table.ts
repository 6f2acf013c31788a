/**
 * The chunk table of one download: each chunk is missing → assigned → received → verified.
 * Pure bookkeeping (no I/O, no clock). A chunk may be assigned to two peers at once in the
 * endgame; it returns to missing when every assignment has failed, and is verified once.
 */

export const enum ChunkState {
  Missing = 0,
  Assigned = 1,
  Received = 2,
  Verified = 3,
}

export class ChunkTable {
  readonly count: number;
  private readonly state: Uint8Array;
  /** How many peers hold an assignment for each chunk (endgame allows 2). */
  private readonly owners: Uint8Array;
  private verifiedCount = 0;
  /** Times a chunk went back to Missing (an assignment failed): a picker that found nothing may find something now. */
  private reopenedCount = 0;
  /** Chunks in the Missing state (nobody asked, not verified). */
  private missingCount: number;
  /** Lowest index that may still be missing: picking starts here, so it stays cheap. */
  private lowMissing = 0;
  /**
   * Chunks with an assignment and not verified: at most the requests in flight (the byte
   * budget's worth), so the endgame looks at these instead of scanning the table (8.5 ms per
   * idle peer and pump with 65,536 chunks and one straggler at the low end).
   */
  private readonly inFlight = new Set<number>();

  constructor(count: number, verified?: (i: number) => boolean) {
    this.count = count;
    this.state = new Uint8Array(count);
    this.owners = new Uint8Array(count);
    if (verified) {
      for (let i = 0; i < count; i++) {
        if (verified(i)) {
          this.state[i] = ChunkState.Verified;
          this.verifiedCount++;
        }
      }
    }
    this.missingCount = count - this.verifiedCount;
  }

  /** Chunks nobody has been asked for (and not verified). 0: every chunk left is in flight. */
  get missing(): number {
    return this.missingCount;
  }

  /**
   * Grows whenever a chunk becomes Missing again. Otherwise the Missing set only shrinks, so a
   * search for a missing chunk that found none finds none until this or the peer's chunks change.
   */
  get reopened(): number {
    return this.reopenedCount;
  }

  get verified(): number {
    return this.verifiedCount;
  }

  get complete(): boolean {
    return this.verifiedCount === this.count;
  }

  stateOf(i: number): ChunkState {
    return this.state[i] as ChunkState;
  }

  ownersOf(i: number): number {
    return this.owners[i]!;
  }

  isVerified(i: number): boolean {
    return this.state[i] === ChunkState.Verified;
  }

  /** No chunk below this index is missing (a cheap place to start scanning). */
  firstMaybeMissing(): number {
    while (this.lowMissing < this.count && this.state[this.lowMissing] !== ChunkState.Missing) this.lowMissing++;
    return this.lowMissing;
  }

  isMissing(i: number): boolean {
    return this.state[i] === ChunkState.Missing;
  }

  /** First run of missing chunks, at most `max` long, starting at or after `from`. */
  nextMissingRun(max: number, from = 0): { start: number; end: number } | null {
    let i = Math.max(from, this.lowMissing);
    if (from <= this.lowMissing) {
      while (this.lowMissing < this.count && this.state[this.lowMissing] !== ChunkState.Missing) this.lowMissing++;
      i = this.lowMissing;
    } else {
      while (i < this.count && this.state[i] !== ChunkState.Missing) i++;
    }
    if (i >= this.count) return null;
    let end = i;
    while (end < this.count && end - i < max && this.state[end] === ChunkState.Missing) end++;
    return { start: i, end };
  }

  assign(start: number, end: number): void {
    for (let i = start; i < end; i++) {
      if (this.state[i] === ChunkState.Verified) continue;
      if (this.state[i] === ChunkState.Missing) this.missingCount--;
      this.state[i] = ChunkState.Assigned;
      this.owners[i]!++;
      this.inFlight.add(i);
    }
  }

  /** Bytes of chunk i arrived and are being checked. */
  received(i: number): void {
    if (this.state[i] === ChunkState.Assigned) this.state[i] = ChunkState.Received;
  }

  /** One assignment of chunk i ended without a verified result. */
  release(i: number): void {
    if (this.owners[i]! > 0) this.owners[i]!--;
    if (this.state[i] === ChunkState.Verified) return;
    if (this.owners[i] === 0) {
      if (this.state[i] !== ChunkState.Missing) {
        this.missingCount++;
        this.reopenedCount++;
      }
      this.state[i] = ChunkState.Missing;
      this.inFlight.delete(i);
      if (i < this.lowMissing) this.lowMissing = i;
    } else if (this.state[i] === ChunkState.Received) {
      this.state[i] = ChunkState.Assigned;
    }
  }

  /** Chunk i is on disk and matched its hash. Returns false if it already was. */
  verify(i: number): boolean {
    if (this.owners[i]! > 0) this.owners[i]!--;
    if (this.state[i] === ChunkState.Verified) return false;
    if (this.state[i] === ChunkState.Missing) this.missingCount--;
    this.state[i] = ChunkState.Verified;
    this.verifiedCount++;
    this.inFlight.delete(i);
    return true;
  }

  /** Chunks still assigned (not received) to exactly one peer: endgame candidates. */
  assignedSingly(): Generator<number> {
    return this.assignedToFewer(2);
  }

  /** Chunks still assigned (not received) to at least one peer and fewer than `max`, lowest first. */
  *assignedToFewer(max: number): Generator<number> {
    const chunks = [...this.inFlight].sort((a, b) => a - b);
    for (const i of chunks) {
      if (this.state[i] === ChunkState.Assigned && this.owners[i]! >= 1 && this.owners[i]! < max) yield i;
    }
  }
}
