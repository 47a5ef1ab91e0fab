// Coverage plans for listings (Riak's riak_core_coverage_plan.erl): which
// replicas a listing reads each partition from, and how the pages of those
// replicas combine into one stream without losses or duplicates. Pure: the
// node's view of health comes in as a predicate evaluated at one instant.
//
// Riak plans a one-shot fan-out and so minimises the vnodes it asks. A ringkv
// listing walks the partitions in index order, one page at a time, from a
// cursor the client holds (docs/listing.md), so the plan is made per
// partition, deterministically from the ring: this node first when it is a
// primary (no network hop), the other primaries rotated by blocks of
// partitions (so the load of many listings spreads over the replicas, and
// one request reads a run of neighbouring partitions), and a
// replica that fails or is still receiving the partition is replaced by the
// next one (re-planning the partition mid-listing).
import type { NodeId } from './types.js';
import { invariant } from './types.js';

/** Partitions per rotation block of planPartition. */
export const PLAN_BLOCK = 64;

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
  // Rotation by blocks of partitions: block b starts at its (b mod k)-th other
  // primary. Neighbouring partitions share a plan, so one request reads a run
  // of them; many blocks spread the load over the replicas.
  const block = Math.floor(c.partition / PLAN_BLOCK);
  for (let i = 0; i < others.length; i++) ordered.push(others[(block + i) % others.length]!);
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

/**
 * A point of a listing's walk: everything before it was scanned —
 * partitions before `partition`, and of `partition` the disk keys up to
 * `after` (null: none of it). The walk's end is `{ partition: Q, after: null }`.
 */
export interface ScanPoint {
  partition: number;
  after: Buffer | null;
}

/** Orders scan points (and so disk keys: a disk key's partition is its position's top bits). */
export function comparePoints(a: ScanPoint, b: ScanPoint): number {
  if (a.partition !== b.partition) return a.partition - b.partition;
  if (a.after === null || b.after === null) return a.after === b.after ? 0 : a.after === null ? -1 : 1;
  return Buffer.compare(a.after, b.after);
}

/** One replica's page of a run of partitions, read from one scan point, items in (partition, disk-key) order. */
export interface ReplicaPage<T> {
  items: ReadonlyArray<{ partition: number; diskKey: Buffer; item: T }>;
  /** How far the replica's scan got: it read every object before this point. */
  until: ScanPoint;
}

export interface MergedPages<T> {
  /** Every disk key some replica holds before `until`, once, ascending, with the items the replicas gave for it. */
  keys: Array<{ partition: number; diskKey: Buffer; items: T[] }>;
  /** How far the union is complete: the smallest `until` of the pages. */
  until: ScanPoint;
}

/**
 * The union of several replicas' pages read from the same scan point. Only
 * the range every replica scanned counts (before the smallest `until`):
 * beyond it one replica's items are known but another's are not, so those
 * items are left for the next page, which starts at `until`. No key is lost
 * (each replica scanned the whole range) and none is repeated (the next page
 * starts after it).
 */
export function mergePages<T>(pages: ReadonlyArray<ReplicaPage<T>>): MergedPages<T> {
  invariant(pages.length >= 1, 'merging no pages');
  let until = pages[0]!.until;
  for (const page of pages) {
    for (let i = 1; i < page.items.length; i++) {
      const a = page.items[i - 1]!;
      const b = page.items[i]!;
      invariant(comparePoints({ partition: a.partition, after: a.diskKey }, { partition: b.partition, after: b.diskKey }) < 0, 'a replica page is not in ascending disk-key order');
    }
    const last = page.items.at(-1);
    invariant(last === undefined || comparePoints({ partition: last.partition, after: last.diskKey }, page.until) <= 0, 'a replica page has items past its until');
    if (comparePoints(page.until, until) < 0) until = page.until;
  }
  const byKey = new Map<string, { partition: number; diskKey: Buffer; items: T[] }>();
  for (const page of pages) {
    for (const { partition, diskKey, item } of page.items) {
      if (comparePoints({ partition, after: diskKey }, until) > 0) break;
      const id = diskKey.toString('latin1');
      const entry = byKey.get(id);
      if (entry) entry.items.push(item);
      else byKey.set(id, { partition, diskKey, items: [item] });
    }
  }
  const keys = [...byKey.values()].sort((a, b) => a.partition - b.partition || Buffer.compare(a.diskKey, b.diskKey));
  return { keys, until };
}
