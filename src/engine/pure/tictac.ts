// TicTac Merkle trees (docs/engine.md "TicTac trees"): XOR of leaf hashes per
// segment, branch and partition root, so a write updates a tree in O(1).
import { blake3 } from '@noble/hashes/blake3.js';
import { encodeLeafMessage, type DecodedRecord } from '../../record/codec.js';
import type { Layout } from '../../record/keys.js';
import { bufferView } from '../../util/bytes.js';

/** LEAF_KEY = blake3("ringkv tictac leaf v1"). */
export const LEAF_KEY: Uint8Array = blake3(new TextEncoder().encode('ringkv tictac leaf v1'));

/** Leaf hash of a stored object: keyed blake3 of its causal state, first 8 bytes as a u64. */
export function leafHash(bkey: Buffer, rec: DecodedRecord): bigint {
  const h = blake3(encodeLeafMessage(bkey, rec), { key: LEAF_KEY });
  return bufferView(h).readBigUInt64BE(0);
}

interface PartitionTree {
  segments: BigUint64Array;
  branches: BigUint64Array;
}

/** Big-endian 8-byte groups, the wire form of hashes. */
export function u64sToBuffer(values: ArrayLike<bigint>): Buffer {
  const out = Buffer.allocUnsafe(values.length * 8);
  for (let i = 0; i < values.length; i++) out.writeBigUInt64BE(values[i]!, i * 8);
  return out;
}

export class TicTacTrees {
  private readonly roots: BigUint64Array;
  /** Allocated on a partition's first write: a full tree is 8 × 2^(B+S) bytes. */
  private readonly trees: Array<PartitionTree | undefined>;

  constructor(readonly layout: Layout) {
    this.roots = new BigUint64Array(layout.partitions);
    this.trees = new Array<PartitionTree | undefined>(layout.partitions).fill(undefined);
  }

  /** XOR `delta` (= old leaf ^ new leaf) into a segment, its branch and the root. */
  update(partition: number, segment: number, delta: bigint): void {
    if (delta === 0n) return;
    let t = this.trees[partition];
    if (t === undefined) {
      t = {
        segments: new BigUint64Array(this.layout.segments),
        branches: new BigUint64Array(this.layout.branches),
      };
      this.trees[partition] = t;
    }
    t.segments[segment]! ^= delta;
    t.branches[this.layout.branchOf(segment)]! ^= delta;
    this.roots[partition]! ^= delta;
  }

  rootsBuffer(): Buffer {
    return u64sToBuffer(this.roots);
  }

  branchesBuffer(partition: number): Buffer {
    const t = this.trees[partition];
    return t ? u64sToBuffer(t.branches) : Buffer.alloc(this.layout.branches * 8);
  }

  segmentsBuffer(partition: number, branch: number): Buffer {
    const t = this.trees[partition];
    const n = this.layout.segmentsPerBranch;
    if (!t) return Buffer.alloc(n * 8);
    return u64sToBuffer(t.segments.subarray(branch * n, (branch + 1) * n));
  }
}
