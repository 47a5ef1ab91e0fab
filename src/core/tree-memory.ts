// Memory the engine's TicTac trees take (crates/engine/src/tictac.rs): one
// slot per partition (a OnceLock of a root and two boxed slices: 48 bytes),
// and for each partition written to since the engine opened its arrays of
// 2^B branch and 2^(B+S) segment hashes, 8 bytes each. Allocator overhead is
// left out: an estimate from the geometry, not a measurement.

/** Bytes of one partition's slot, allocated or not (OnceLock<PartitionTree> on x86_64). */
export const TREE_SLOT_BYTES = 48;

export interface TreeGeometry {
  partitionBits: number;
  treeBranchBits: number;
  treeSegmentBits: number;
}

/** Estimated bytes of the trees when `allocatedPartitions` partitions have their arrays. */
export function treeMemoryBytes(g: TreeGeometry, allocatedPartitions: number): number {
  const hashesPerPartition = 2 ** g.treeBranchBits + 2 ** (g.treeBranchBits + g.treeSegmentBits);
  return 2 ** g.partitionBits * TREE_SLOT_BYTES + allocatedPartitions * hashesPerPartition * 8;
}

/** Partitions whose root hash is not 0 in a `treeRoots()` buffer: those certainly have their arrays (a tree that XORs back to 0 is missed; rare). */
export function nonZeroRoots(roots: Uint8Array): number {
  let n = 0;
  const view = new DataView(roots.buffer, roots.byteOffset, roots.byteLength);
  for (let off = 0; off + 8 <= roots.byteLength; off += 8) {
    if (view.getUint32(off) !== 0 || view.getUint32(off + 4) !== 0) n++;
  }
  return n;
}
