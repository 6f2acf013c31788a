/**
 * Who has which chunk: one bitfield per peer (from its `bitfield`, grown by its `have`s) and, per
 * chunk, how many peers have it. Pure bookkeeping, no clock. The picker reads the counts to fetch
 * the rarest chunks first; the coordinator asks `has(peer, i)` so a peer is only ever asked for
 * chunks it has.
 */

/** Bit i (LSB first within a byte) of a bitfield. */
export function bitSet(bits: Uint8Array, i: number): boolean {
  return (bits[i >> 3]! & (1 << (i & 7))) !== 0;
}

/** A bitfield of `count` chunks with every bit set. */
export function fullBitfield(count: number): Uint8Array {
  const bits = new Uint8Array(Math.ceil(count / 8)).fill(0xff);
  if (count % 8) bits[bits.length - 1] = (1 << count % 8) - 1;
  return bits;
}

export class Availability {
  /** How many known peers have each chunk. */
  readonly counts: Uint16Array;
  private readonly peers = new Map<number, Uint8Array>();
  /**
   * Per known peer, the value of `clock` when its chunks last changed (versionOf). One counter for
   * all: a removed peer's entry goes (a server meets many sessions), and an id added again gets a
   * value it never had.
   */
  private readonly versions = new Map<number, number>();
  private clock = 0;

  constructor(readonly chunkCount: number) {
    this.counts = new Uint16Array(chunkCount);
  }

  /** A peer's whole bitfield (replacing what it said before). Bits past the end are ignored. */
  setPeer(peer: number, bits: Uint8Array): void {
    this.removePeer(peer);
    const own = new Uint8Array(Math.ceil(this.chunkCount / 8));
    own.set(bits.subarray(0, own.length));
    if (this.chunkCount % 8 && own.length) own[own.length - 1]! &= (1 << this.chunkCount % 8) - 1;
    this.peers.set(peer, own);
    this.count(own, 1);
    this.versions.set(peer, ++this.clock);
  }

  /** Changes whenever `peer`'s chunks change (bitfield, have, removal; 0: unknown): unchanged, what it had not it still has not. */
  versionOf(peer: number): number {
    return this.versions.get(peer) ?? 0;
  }

  /** Adds `d` to the count of every chunk set in `bits`, a byte at a time (empty bytes skipped). */
  private count(bits: Uint8Array, d: 1 | -1): void {
    for (let j = 0; j < bits.length; j++) {
      const b = bits[j]!;
      if (b === 0) continue;
      for (let k = 0; k < 8; k++) if (b & (1 << k)) this.counts[j * 8 + k]! += d;
    }
  }

  /** A peer newly has chunk i. Returns false when it is out of range or already known. */
  have(peer: number, i: number): boolean {
    const bits = this.peers.get(peer);
    if (!bits || !Number.isInteger(i) || i < 0 || i >= this.chunkCount || bitSet(bits, i)) return false;
    bits[i >> 3]! |= 1 << (i & 7);
    this.counts[i]!++;
    this.versions.set(peer, ++this.clock);
    return true;
  }

  removePeer(peer: number): void {
    const bits = this.peers.get(peer);
    if (!bits) return;
    this.peers.delete(peer);
    this.versions.delete(peer);
    this.count(bits, -1);
  }

  has(peer: number, i: number): boolean {
    const bits = this.peers.get(peer);
    return !!bits && bitSet(bits, i);
  }

  known(peer: number): boolean {
    return this.peers.has(peer);
  }

  /**
   * The first chunk that is `wanted` and that none of `peers` has, or -1. Their bitfields are
   * OR-ed first: a byte per 8 chunks and peer, not a lookup per chunk and peer (called each tick).
   */
  firstUnheld(wanted: (i: number) => boolean, peers: number[]): number {
    const union = new Uint8Array(Math.ceil(this.chunkCount / 8));
    for (const p of peers) {
      const bits = this.peers.get(p);
      if (bits) for (let j = 0; j < union.length; j++) union[j]! |= bits[j]!;
    }
    for (let j = 0; j < union.length; j++) {
      if (union[j] === 0xff) continue;
      for (let i = j * 8; i < Math.min(j * 8 + 8, this.chunkCount); i++) if (!bitSet(union, i) && wanted(i)) return i;
    }
    return -1;
  }

  /** How many chunks a peer has. */
  countOf(peer: number): number {
    const bits = this.peers.get(peer);
    if (!bits) return 0;
    let n = 0;
    for (const b of bits) for (let x = b; x; x &= x - 1) n++;
    return n;
  }

  isComplete(peer: number): boolean {
    return this.countOf(peer) === this.chunkCount;
  }
}
