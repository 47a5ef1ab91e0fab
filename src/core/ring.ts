// The ring: Q = 2^partitionBits fixed, equal partitions of the 64-bit hash
// space (Dynamo's strategy 3), each owned by one node. Boundaries never move,
// so only the owner table changes, and it travels in gossip as plain data.
import { type NodeId, invariant, isNodeId } from './types.js';

export const MIN_PARTITION_BITS = 1;
export const MAX_PARTITION_BITS = 16;

export interface Ring {
  readonly partitionBits: number;
  /** Owner of each partition, indexed by partition; length Q. */
  readonly owners: readonly NodeId[];
  /** Bumped by the claimant on every change; the higher version wins in gossip. */
  readonly version: number;
  /** The node that computed this owner table. */
  readonly claimant: NodeId;
}

export interface PreferenceList {
  /** The first n distinct owners met clockwise (spread over zones when known). */
  readonly primaries: NodeId[];
  /** Every other owner, in clockwise first-seen order: substitutes for failed primaries. */
  readonly fallbacks: NodeId[];
}

/** Q for a partitionBits value; throws outside 1..16. */
export function partitionCount(partitionBits: number): number {
  invariant(
    Number.isInteger(partitionBits) &&
      partitionBits >= MIN_PARTITION_BITS &&
      partitionBits <= MAX_PARTITION_BITS,
    () => `partitionBits must be an integer in ${MIN_PARTITION_BITS}..${MAX_PARTITION_BITS}, got ${partitionBits}`,
  );
  return 2 ** partitionBits;
}

/** Checks a ring's shape; throws on the first violation. */
export function assertRing(ring: Ring): void {
  const q = partitionCount(ring.partitionBits);
  invariant(ring.owners.length === q, () => `ring has ${ring.owners.length} owners for ${q} partitions`);
  for (const [partition, owner] of ring.owners.entries()) {
    invariant(isNodeId(owner), () => `partition ${partition} has invalid owner ${JSON.stringify(owner)}`);
  }
  invariant(Number.isSafeInteger(ring.version) && ring.version >= 0, () => `bad ring version ${ring.version}`);
  invariant(isNodeId(ring.claimant), () => `bad ring claimant ${JSON.stringify(ring.claimant)}`);
}

/** A validated ring holding its own copy of the owner table. */
export function makeRing(ring: Ring): Ring {
  const copy: Ring = {
    partitionBits: ring.partitionBits,
    owners: [...ring.owners],
    version: ring.version,
    claimant: ring.claimant,
  };
  assertRing(copy);
  return copy;
}

const U64_END = 1n << 64n;

/** The partition holding a 64-bit ring position: its top partitionBits bits. */
export function partitionOf(ring: Pick<Ring, 'partitionBits'>, position: bigint): number {
  partitionCount(ring.partitionBits);
  invariant(position >= 0n && position < U64_END, () => `position ${position} is not a u64`);
  return Number(position >> BigInt(64 - ring.partitionBits));
}

/** How many partitions each node owns (nodes owning none are absent). */
export function ownerCounts(owners: readonly NodeId[]): Map<NodeId, number> {
  const counts = new Map<NodeId, number>();
  for (const owner of owners) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  return counts;
}

/** Distinct owners of each owner table seen, so a walk can stop once it has met them all. */
const distinctOwners = new WeakMap<readonly NodeId[], number>();

/** How many distinct nodes own partitions (cached per owner table: the request path asks). */
export function distinctOwnerCount(owners: readonly NodeId[]): number {
  let distinct = distinctOwners.get(owners);
  if (distinct === undefined) {
    distinct = new Set(owners).size;
    distinctOwners.set(owners, distinct);
  }
  return distinct;
}

/** Every owner once, in the order met walking clockwise from `partition`. */
function ownersClockwise(ring: Ring, partition: number): NodeId[] {
  const q = ring.owners.length;
  const distinct = distinctOwnerCount(ring.owners);
  // A spread-out claim meets every owner within a few S steps: with a large Q,
  // walking all Q partitions on every request would dominate the lookup.
  const seen = new Set<NodeId>();
  for (let step = 0; step < q && seen.size < distinct; step++) {
    seen.add(ring.owners[(partition + step) % q]!);
  }
  return [...seen];
}

/**
 * Where a key of `partition` lives: the first n distinct owners clockwise,
 * then all the others as fallbacks. With `zones`, each next primary comes
 * from a zone not used yet while one is left (a node with no declared zone
 * counts as a zone of its own), so one zone failing loses few replicas.
 */
export function preferenceList(
  ring: Ring,
  partition: number,
  n: number,
  zones?: ReadonlyMap<NodeId, string>,
): PreferenceList {
  const q = partitionCount(ring.partitionBits);
  invariant(ring.owners.length === q, 'ring owner table does not match partitionBits');
  invariant(Number.isInteger(partition) && partition >= 0 && partition < q, () => `partition ${partition} not in 0..${q - 1}`);
  invariant(Number.isInteger(n) && n >= 1, () => `n must be a positive integer, got ${n}`);

  const clockwise = ownersClockwise(ring, partition);
  if (zones === undefined || zones.size === 0) {
    return { primaries: clockwise.slice(0, n), fallbacks: clockwise.slice(n) };
  }

  const primaries: NodeId[] = [];
  const remaining = [...clockwise];
  const usedZones = new Set<string>();
  while (primaries.length < n && remaining.length > 0) {
    const fresh = remaining.findIndex((node) => {
      const zone = zones.get(node);
      return zone === undefined || !usedZones.has(zone);
    });
    const [chosen] = remaining.splice(fresh === -1 ? 0 : fresh, 1);
    primaries.push(chosen!);
    const zone = zones.get(chosen!);
    if (zone !== undefined) usedZones.add(zone);
  }
  return { primaries, fallbacks: remaining };
}
