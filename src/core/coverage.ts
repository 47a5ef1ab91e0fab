// Coverage plans for listings (Riak's riak_core_coverage_plan.erl): which
// replicas a listing reads each partition from, and how the pages of those
// replicas combine into one stream without losses or duplicates. Pure: the
// node's view of health comes in as a predicate evaluated at one instant.
//
// Riak plans a one-shot fan-out and so minimises the vnodes it asks. A ringkv
// listing walks the partitions in index order, one page at a time, from a
// cursor the client holds (docs/listing.md), so the plan is made per
// partition, deterministically from the ring: this node first when it is a
// primary (no network hop), the other primaries rotated by the partition
// index (so the load of many listings spreads over the replicas), and a
// replica that fails or is still receiving the partition is replaced by the
// next one (re-planning the partition mid-listing).
import type { NodeId } from './types.js';
import { invariant } from './types.js';

export interface PartitionCandidates {
  partition: number;
  /** The partition's primaries under the coordinator's ring, in preference order. */
  primaries: readonly NodeId[];
  /** The coordinating node. */
  self: NodeId;
  /** Whether a node may be asked now (a member not left and not suspected; self always). */
  usable: (node: NodeId) => boolean;
  /** Nodes already tried for this partition and refused or failed (not asked again). */
  excluded?: ReadonlySet<NodeId>;
  /**
   * Nodes named by a replica still receiving the partition (the givers of
   * its transfer): complete copies, asked after the primaries.
   */
  extra?: readonly NodeId[];
}

/**
 * The replicas to read one partition from: up to `want` distinct usable
 * nodes, never an excluded one. Fewer when fewer are usable (possibly none:
 * the caller then cannot cover the partition and says so).
 */
export function planPartition(c: PartitionCandidates, want: number): NodeId[] {
  invariant(Number.isInteger(want) && want >= 1, () => `want must be a positive integer, got ${want}`);
  invariant(Number.isInteger(c.partition) && c.partition >= 0, () => `bad partition ${c.partition}`);
  const excluded = c.excluded ?? new Set<NodeId>();
  const ok = (n: NodeId) => !excluded.has(n) && (n === c.self || c.usable(n));
  const others = c.primaries.filter((n) => n !== c.self && ok(n));
  const ordered: NodeId[] = c.primaries.includes(c.self) && ok(c.self) ? [c.self] : [];
  // Rotation by partition: partition p starts at its (p mod k)-th other primary.
  for (let i = 0; i < others.length; i++) ordered.push(others[(c.partition + i) % others.length]!);
  for (const n of c.extra ?? []) if (ok(n) && !ordered.includes(n)) ordered.push(n);
  const chosen = ordered.slice(0, want);
  invariant(new Set(chosen).size === chosen.length, 'a plan names a replica twice');
  return chosen;
}

/** The plan of every partition at once (for tests and for showing a listing's spread). */
export function coveragePlan(
  primariesOf: (partition: number) => readonly NodeId[],
  partitions: number,
  self: NodeId,
  usable: (node: NodeId) => boolean,
  want: number,
): NodeId[][] {
  const plan: NodeId[][] = [];
  for (let p = 0; p < partitions; p++) plan.push(planPartition({ partition: p, primaries: primariesOf(p), self, usable }, want));
  return plan;
}

/**
 * Replicas read per partition so that a key acknowledged by `w` of `n`
 * primaries is on at least one replica read: n − w + 1 (the R + W > N rule),
 * at least 1, at most n.
 */
export function replicasToRead(n: number, w: number): number {
  invariant(Number.isInteger(n) && n >= 1 && Number.isInteger(w) && w >= 1, () => `bad n=${n} w=${w}`);
  return Math.min(n, Math.max(1, n - Math.min(w, n) + 1));
}

/** One replica's page of one partition, items in ascending disk-key order. */
export interface ReplicaPage<T> {
  /** Each item with its disk key. */
  items: ReadonlyArray<{ diskKey: Buffer; item: T }>;
  /** The last disk key the replica's scan passed (it read every object up to it), or null when it reached the end of the partition. */
  through: Buffer | null;
}

export interface MergedPages<T> {
  /** Every disk key some replica holds up to `through`, once, ascending, with the items the replicas gave for it. */
  keys: Array<{ diskKey: Buffer; items: T[] }>;
  /** How far the union is complete: the smallest `through` of the pages (null: every page reached the end). */
  through: Buffer | null;
}

/**
 * The union of several replicas' pages of one partition read from the same
 * cursor. Only the range every replica scanned counts (up to the smallest
 * `through`): beyond it one replica's items are known but another's are
 * not, so those items are left for the next page, which starts strictly
 * after `through`. No key is lost (each replica scanned the whole range) and
 * none is repeated (the next page starts after it).
 */
export function mergePages<T>(pages: ReadonlyArray<ReplicaPage<T>>): MergedPages<T> {
  invariant(pages.length >= 1, 'merging no pages');
  let through: Buffer | null = null;
  let ended = true;
  for (const page of pages) {
    for (let i = 1; i < page.items.length; i++) {
      invariant(Buffer.compare(page.items[i - 1]!.diskKey, page.items[i]!.diskKey) < 0, 'a replica page is not in ascending disk-key order');
    }
    const last = page.items.at(-1);
    if (page.through !== null) {
      invariant(last === undefined || Buffer.compare(last.diskKey, page.through) <= 0, 'a replica page has items past its through');
    }
    if (page.through === null) continue;
    if (ended || Buffer.compare(page.through, through!) < 0) through = page.through;
    ended = false;
  }
  const byKey = new Map<string, { diskKey: Buffer; items: T[] }>();
  for (const page of pages) {
    for (const { diskKey, item } of page.items) {
      if (through !== null && Buffer.compare(diskKey, through) > 0) break;
      const id = diskKey.toString('latin1');
      const entry = byKey.get(id);
      if (entry) entry.items.push(item);
      else byKey.set(id, { diskKey, items: [item] });
    }
  }
  const keys = [...byKey.values()].sort((a, b) => Buffer.compare(a.diskKey, b.diskKey));
  return { keys, through };
}
