// Claim: who owns which partition after a membership change. Each member
// gets a quota of floor(Q/S) or ceil(Q/S) partitions; a partition moves only
// when its owner left or is over quota, and it moves to a member under quota.
// Among the allowed moves, claim prefers placements that keep a node out of
// its neighbours' preference lists, so n distinct nodes are found within n
// partitions of walking.
import { type Ring, assertRing, ownerCounts, partitionCount } from './ring.js';
import { type NodeId, compareIds, invariant, isNodeId } from './types.js';

export interface ClaimMember {
  readonly id: NodeId;
  readonly zone?: string;
}

export interface ClaimOptions {
  /**
   * Replication factor to space owners for: claim tries to give a partition
   * an owner (and zone) different from those of the targetN − 1 partitions
   * on either side. Default 3.
   */
  readonly targetN?: number;
}

export interface Balance {
  /** Fewest partitions held by one node. */
  readonly min: number;
  /** Most partitions held by one node. */
  readonly max: number;
  /** Partitions per node. */
  readonly mean: number;
  /** mean / max: 1 is a perfect spread (Dynamo's load-balancing efficiency). */
  readonly efficiency: number;
}

const DEFAULT_TARGET_N = 3;

/**
 * Placement strictness, tried in order: first only spots where neither the
 * node nor its zone appears among the neighbours, then spots free of the
 * node only, then anywhere (so every quota is always met).
 */
type Fit = 'node-and-zone' | 'node' | 'anywhere';
const FITS: readonly Fit[] = ['node-and-zone', 'node', 'anywhere'];

/** The new owner table for `members`, moving as little as possible from `previous`. */
export function claim(
  previous: Ring | null,
  members: readonly ClaimMember[],
  partitionBits: number,
  options: ClaimOptions = {},
): NodeId[] {
  const q = partitionCount(partitionBits);
  const targetN = options.targetN ?? DEFAULT_TARGET_N;
  invariant(Number.isInteger(targetN) && targetN >= 1, () => `targetN must be a positive integer, got ${targetN}`);
  invariant(members.length > 0, 'claim needs at least one member');
  const zoneOf = new Map<NodeId, string | undefined>();
  for (const member of members) {
    invariant(isNodeId(member.id), () => `invalid member id ${JSON.stringify(member.id)}`);
    invariant(!zoneOf.has(member.id), () => `member ${member.id} listed twice`);
    zoneOf.set(member.id, member.zone ?? undefined);
  }
  if (previous !== null) {
    assertRing(previous);
    invariant(
      previous.partitionBits === partitionBits,
      () => `previous ring has partitionBits ${previous.partitionBits}, claim asked for ${partitionBits}`,
    );
  }

  // Partitions of departed owners are free (null); the rest stay put for now.
  const owners: (NodeId | null)[] =
    previous === null ? new Array<null>(q).fill(null) : previous.owners.map((o) => (zoneOf.has(o) ? o : null));
  const before = [...owners];
  const spare = spareByMember(owners, [...zoneOf.keys()]);
  const spacing = new Spacing(owners, zoneOf, Math.min(targetN - 1, Math.floor((q - 1) / 2)));

  handOver(owners, spare, spacing);
  // With fewer members than targetN some crowding is unavoidable: skip the search.
  if (zoneOf.size >= targetN) {
    respace(owners, spacing, (p) => owners[p] !== before[p]);
  }

  for (const [id, left] of spare) invariant(left === 0, () => `claim left ${id} off quota by ${left}`);
  invariant(owners.every((o) => o !== null), 'claim left a partition without owner');
  return owners as NodeId[];
}

/**
 * How many partitions each member must give up (> 0) or take (< 0) to reach
 * its quota. The ceil(Q/S) quotas go to the members already holding the
 * most, so as few partitions as possible have to move.
 */
function spareByMember(owners: readonly (NodeId | null)[], ids: readonly NodeId[]): Map<NodeId, number> {
  const held = ownerCounts(owners.filter((o): o is NodeId => o !== null));
  const byLoad = [...ids].sort((a, b) => (held.get(b) ?? 0) - (held.get(a) ?? 0) || compareIds(a, b));
  const base = Math.floor(owners.length / ids.length);
  const extra = owners.length % ids.length;
  return new Map(byLoad.map((id, rank) => [id, (held.get(id) ?? 0) - (base + (rank < extra ? 1 : 0))]));
}

/**
 * Moves free partitions, and partitions of members over quota, to members
 * under quota. Each partition goes to the hungriest taker that fits there
 * (ties: lower id), trying the strictest placement first.
 */
function handOver(owners: (NodeId | null)[], spare: Map<NodeId, number>, spacing: Spacing): void {
  const takers = [...spare.keys()].filter((id) => spare.get(id)! < 0).sort(compareIds);
  const isTakeable = (p: number): boolean => {
    const owner = owners[p]!;
    return owner === null || spare.get(owner)! > 0;
  };
  for (const fit of FITS) {
    for (const p of candidates(owners, isTakeable, spacing)) {
      if (!isTakeable(p)) continue; // its owner gave up enough meanwhile
      const around = spacing.neighbours(p);
      let best: NodeId | null = null;
      for (const taker of takers) {
        const want = -spare.get(taker)!;
        if (want > 0 && spacing.fits(taker, around, fit) && (best === null || want > -spare.get(best)!)) best = taker;
      }
      if (best === null) continue;
      const giver = owners[p];
      if (giver != null) spare.set(giver, spare.get(giver)! - 1);
      spare.set(best, spare.get(best)! + 1);
      owners[p] = best;
    }
  }
}

/**
 * Partitions open to takers, best first: free ones (they must go), then
 * ones whose owner crowds itself (moving them helps spacing), then the rest
 * of an over-quota owner's; index order within each group.
 */
function candidates(
  owners: readonly (NodeId | null)[],
  isTakeable: (p: number) => boolean,
  spacing: Spacing,
): number[] {
  const free: number[] = [];
  const crowded: number[] = [];
  const rest: number[] = [];
  owners.forEach((owner, p) => {
    if (!isTakeable(p)) return;
    if (owner === null) free.push(p);
    else if (spacing.neighbours(p).includes(owner)) crowded.push(p);
    else rest.push(p);
  });
  return [...free, ...crowded, ...rest];
}

/** Swap attempts respace may spend per moved partition: spacing is a preference, not worth unbounded work. */
const RESPACE_TRIES_PER_PARTITION = 64;

/**
 * Greedy hand-over can paint itself into a corner near the end. Swapping the
 * owners of two partitions that both moved in this claim keeps every count
 * and the amount of movement, so respace swaps while that strictly reduces
 * crowding (same node, then same zone, among neighbours).
 */
function respace(owners: (NodeId | null)[], spacing: Spacing, moved: (p: number) => boolean): void {
  const movable = owners.map((_, p) => p).filter(moved);
  let budget = RESPACE_TRIES_PER_PARTITION * movable.length;
  let improved = true;
  while (improved && budget > 0) {
    improved = false;
    for (const p of movable) {
      if (!spacing.isCrowded(p)) continue;
      const around = spacing.neighbours(p);
      for (const other of movable) {
        // A node already next to p would crowd it just the same.
        if (owners[other] === owners[p] || around.includes(owners[other]!)) continue;
        if (budget-- <= 0) return;
        const crowdingBefore = spacing.crowdingAt(p) + spacing.crowdingAt(other);
        [owners[p], owners[other]] = [owners[other]!, owners[p]!];
        if (spacing.crowdingAt(p) + spacing.crowdingAt(other) < crowdingBefore) {
          improved = true;
          break;
        }
        [owners[p], owners[other]] = [owners[other]!, owners[p]!];
      }
    }
  }
}

/** Who sits next to a partition, and how crowded that makes it; reads the live owner table. */
class Spacing {
  /** Outweighs any number of same-zone neighbours. */
  private readonly sameNodeWeight: number;

  constructor(
    private readonly owners: readonly (NodeId | null)[],
    private readonly zoneOf: ReadonlyMap<NodeId, string | undefined>,
    /** Partitions on each side whose owners share preference lists with this one. */
    private readonly window: number,
  ) {
    this.sameNodeWeight = 2 * window + 1;
  }

  /** Owners of the `window` partitions on either side (free ones skipped). */
  neighbours(p: number): NodeId[] {
    const q = this.owners.length;
    const around: NodeId[] = [];
    for (let d = 1; d <= this.window; d++) {
      for (const i of [(p - d + q) % q, (p + d) % q]) {
        const owner = this.owners[i];
        if (owner != null) around.push(owner);
      }
    }
    return around;
  }

  /** Whether `node` may sit among the neighbours `around` at this strictness. */
  fits(node: NodeId, around: readonly NodeId[], fit: Fit): boolean {
    if (fit === 'anywhere') return true;
    if (around.includes(node)) return false;
    const zone = this.zoneOf.get(node);
    return fit === 'node' || zone === undefined || !around.some((n) => this.zoneOf.get(n) === zone);
  }

  isCrowded(p: number): boolean {
    return this.crowdingAt(p) > 0;
  }

  /**
   * Neighbours sharing the owner of p, weighted far above neighbours only
   * sharing its zone: a repeated node costs a replica, a repeated zone
   * costs fault isolation.
   */
  crowdingAt(p: number): number {
    const owner = this.owners[p];
    if (owner == null) return 0;
    const zone = this.zoneOf.get(owner);
    let crowding = 0;
    for (const n of this.neighbours(p)) {
      if (n === owner) crowding += this.sameNodeWeight;
      else if (zone !== undefined && this.zoneOf.get(n) === zone) crowding += 1;
    }
    return crowding;
  }
}

/** Partition counts per node. `nodes`, when given, also counts nodes owning nothing. */
export function balance(owners: readonly NodeId[], nodes?: readonly NodeId[]): Balance {
  invariant(owners.length > 0, 'balance of an empty owner table');
  const counts = ownerCounts(owners);
  for (const node of nodes ?? []) if (!counts.has(node)) counts.set(node, 0);
  const values = [...counts.values()];
  const max = Math.max(...values);
  const mean = owners.length / values.length;
  return { min: Math.min(...values), max, mean, efficiency: mean / max };
}

/** Whether only `members` own partitions and each holds floor(Q/S) or ceil(Q/S). */
export function isBalanced(owners: readonly NodeId[], members: readonly NodeId[]): boolean {
  if (members.length === 0) return false;
  const counts = ownerCounts(owners);
  const memberSet = new Set(members);
  if ([...counts.keys()].some((owner) => !memberSet.has(owner))) return false;
  const low = Math.floor(owners.length / memberSet.size);
  const high = Math.ceil(owners.length / memberSet.size);
  return [...memberSet].every((m) => {
    const count = counts.get(m) ?? 0;
    return count >= low && count <= high;
  });
}
