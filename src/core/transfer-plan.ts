// Which partitions must move when the ring changes (Dynamo §4.9): for each
// partition whose preference list gains nodes, exactly one giver streams the
// partition's objects to each node that joined the list: the node it
// replaces in the list (paired in list order), or, when that one cannot give
// (it left), the first node of the old list that still can. Giving the
// replaced node's copy keeps the union of the list's copies whole: the nodes
// that stay keep theirs, the new one gets the one that goes — so a write
// held by only one old replica (w = 1) is not dropped by the move. One giver
// per (partition, target) and bucket n means no duplicate transfers. Pure.
//
// Per bucket n: a key lives on the first n nodes of its partition's list, n
// being its bucket's. Buckets of different n share the partition but not its
// replicas, so the plan is made for each n in use (bucketNsInUse) and a
// transfer carries the n values it is for: its giver sends only the keys of
// buckets with one of them. Planning for the largest n alone would copy a
// smaller n's keys to nodes past that n (stray copies), and filtering such a
// plan by n would miss a node that moves up into a smaller n's list within
// the larger one. The lists of different n are prefixes of one another
// (ring.ts picks primaries greedily), so one list per partition serves all.
import { preferenceList, type Ring } from './ring.js';
import type { NodeId } from './types.js';
import { DEFAULT_BUCKET_PROPS, type BucketEntry } from './membership.js';

export interface Transfer {
  partition: number;
  from: NodeId;
  to: NodeId;
  /** The bucket n values whose keys this transfer carries, ascending. */
  ns: number[];
}

/** The distinct bucket n values in use: every configured bucket's, and the default one (buckets with no props of their own), ascending. */
export function bucketNsInUse(buckets: Readonly<Record<string, BucketEntry>>, defaultN: number = DEFAULT_BUCKET_PROPS.n): number[] {
  const ns = new Set<number>([defaultN]);
  for (const entry of Object.values(buckets)) ns.add(entry.props.n);
  return [...ns].sort((a, b) => a - b);
}

function nsOf(ns: number | readonly number[]): number[] {
  const list = [...new Set(typeof ns === 'number' ? [ns] : ns)].sort((a, b) => a - b);
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`bucket n values must be positive integers, got ${JSON.stringify(ns)}`);
  return list;
}

/** The primaries of `partition` for each n of `ns`: prefixes of the list for the largest. */
function listsByN(ring: Ring, partition: number, ns: readonly number[], zones?: ReadonlyMap<NodeId, string>): NodeId[][] {
  const full = preferenceList(ring, partition, ns[ns.length - 1]!, zones).primaries;
  return ns.map((n) => full.slice(0, n));
}

/** Whether two lists are the same (then so are their prefixes: nothing moves for any n). */
function sameList(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.length === b.length && a.every((node, i) => node === b[i]);
}

/**
 * Transfers needed to go from `before` to `after` for the bucket n values
 * `ns` (one n, or those of bucketNsInUse). `members` are the nodes still
 * able to give (valid or leaving members). One transfer per (partition,
 * giver, target), carrying every n it is for.
 */
export function planTransfers(before: Ring, after: Ring, ns: number | readonly number[], members: ReadonlySet<NodeId>, zones?: ReadonlyMap<NodeId, string>): Transfer[] {
  if (before.partitionBits !== after.partitionBits) throw new Error('rings of different sizes');
  const values = nsOf(ns);
  const transfers: Transfer[] = [];
  for (let partition = 0; partition < after.owners.length; partition++) {
    const olds = listsByN(before, partition, values, zones);
    const nexts = listsByN(after, partition, values, zones);
    if (sameList(olds[olds.length - 1]!, nexts[nexts.length - 1]!)) continue;
    const byPair = new Map<string, Transfer>();
    values.forEach((n, i) => {
      for (const { to, giver } of giversOf(olds[i]!, nexts[i]!, members)) {
        if (giver === undefined) continue;
        const key = `${giver}>${to}`;
        const t = byPair.get(key);
        if (t) t.ns.push(n);
        else byPair.set(key, { partition, from: giver, to, ns: [n] });
      }
    });
    transfers.push(...byPair.values());
  }
  return transfers;
}

/** A transfer as its giver keeps it; `ns` absent: one saved before plans were made per n (it carries every key). */
export interface HeldTransfer {
  partition: number;
  to: NodeId;
  ns?: number[];
}

/**
 * Transfers `self` still has pending from an earlier ring, against the new
 * ring `after` (bucket n values `ns` in use): a transfer whose target is no
 * longer a replica for some of its n would only leave a stray copy there,
 * so those n values go to the partition's replicas for them under `after`
 * instead (the data it was to carry may exist nowhere else); the rest of it
 * is kept. One without n values is judged by the largest n in use.
 */
export function carryOverTransfers<T extends HeldTransfer>(
  pending: readonly T[],
  after: Ring,
  ns: readonly number[],
  self: NodeId,
  zones?: ReadonlyMap<NodeId, string>,
): { kept: T[]; moved: Array<{ partition: number; from: NodeId; to: NodeId; ns: number[] | undefined }> } {
  const values = nsOf(ns);
  const largest = values[values.length - 1]!;
  const kept: T[] = [];
  const moved: Array<{ partition: number; from: NodeId; to: NodeId; ns: number[] | undefined }> = [];
  for (const p of pending) {
    const list = preferenceList(after, p.partition, Math.max(largest, ...(p.ns ?? [])), zones).primaries;
    const stays = (n: number) => list.slice(0, n).includes(p.to);
    const moving = (p.ns ?? [largest]).filter((n) => !stays(n));
    if (moving.length === 0) {
      kept.push(p);
      continue;
    }
    if (p.ns !== undefined && moving.length < p.ns.length) kept.push({ ...p, ns: p.ns.filter(stays) });
    for (const n of moving) {
      for (const to of list.slice(0, n)) if (to !== self) moved.push({ partition: p.partition, from: self, to, ns: p.ns === undefined ? undefined : [n] });
    }
  }
  return { kept, moved };
}

/**
 * Each node new in `next`, with the node it replaces in the list (paired in
 * list order) and its giver (see the top of the file). The giver is
 * undefined when no node that can give is left in the old list: planTransfers
 * then has no transfer for it, but the receiver still waits for the replaced
 * node, which may be a leaving node that was marked 'left' and still runs
 * and gives its own copy (inboundTransfers).
 */
function giversOf(old: readonly NodeId[], next: readonly NodeId[], members: ReadonlySet<NodeId>): Array<{ to: NodeId; giver: NodeId | undefined; replaced: NodeId | undefined }> {
  const fallback = old.find((node) => members.has(node));
  const replaced = old.filter((node) => !next.includes(node));
  const out: Array<{ to: NodeId; giver: NodeId | undefined; replaced: NodeId | undefined }> = [];
  for (const [i, to] of next.filter((node) => !old.includes(node)).entries()) {
    const r = replaced[i];
    const giver = r !== undefined && members.has(r) ? r : fallback;
    if (giver !== undefined || r !== undefined) out.push({ to, giver, replaced: r });
  }
  return out;
}

/** The transfers this node gives. */
export function transfersFrom(plan: readonly Transfer[], self: NodeId): Transfer[] {
  return plan.filter((t) => t.from === self);
}

// ---------------------------------------------------------------------------
// The receiving side (docs/cluster.md "Partition transfer"): a node that
// joins a partition's preference list does not hold the partition's data
// until its givers have streamed it, so until then it is not a source for
// reads of the partition on its own: it names its givers (the node it
// replaces first), and its copy counts in a read only together with one of
// theirs — or, when it replaces no one (the list grew: a cluster of fewer
// than n nodes grew), with that of any old replica that stays in the list:
// each of those is read as a replica too, so the giver's copy is no more
// complete than theirs. Reading only through the giver failed every read of
// such a partition at r = n while that giver was dead (issue 9: it died
// before its catch-up pass and was replaced; the receiver gave it up only
// after receiveGoneMs, test/ops/replace-pending-giver.test.ts). Its givers: the node
// it replaces, if that one can give (a member, or a leaving node that still
// runs and gives its own copy), and otherwise — or as well, for a node that
// left — the first old replica still a member (planTransfers above, as the
// other nodes compute it). All this per bucket n: the node may be new in the
// list of one n and not of another (it then had that n's keys already), and
// the givers of different n differ, so each n it is new for is waited for
// (and read through) on its own. A giver stops counting when
//   - its 'finish' arrives (sent after its catch-up pass), before or after
//     this node adopted the ring (early finishes are remembered by ring
//     version);
//   - asked, it answers from this ring or a later one that it has no transfer
//     for this node (a finish that was lost, or plans that differ);
//   - it left the cluster and no longer answers (nothing more will come).
// An n stops being pending when no giver counts for it any more, or when
// this node stops being a replica for it; the partition stops being pending
// when no n is, or after `limitMs` (a giver that never answers cannot keep
// it pending for ever).

/** One bucket n of a partition this node is to receive. */
export interface InboundForN {
  /** The bucket n; null: every n (an entry saved before transfers were planned per n). */
  n: number | null;
  /** Givers this node still waits for, for this n. */
  givers: NodeId[];
  /**
   * Where reads of this n's keys go meanwhile, in order: the node this one
   * replaces, then the other giver (when that one left); for a list that
   * grew, the giver, then the other old replicas that were members and stay
   * in the list.
   */
  sources: NodeId[];
  /** Ring version under which this node became a replica of the partition for this n. */
  ring: number;
}

/** A partition this node is to receive, and where reads of it go meanwhile. */
export interface Inbound {
  partition: number;
  /** Givers this node still waits for, over every n. */
  givers: NodeId[];
  /** Where reads go meanwhile when the bucket n is not known (listing every bucket): every n's sources. */
  sources: NodeId[];
  /** Ring version under which this node became a replica of the partition (its first n). */
  ring: number;
  /** When this node learned of it (its clock, ms). */
  since: number;
  /** Per bucket n this node is new for (absent in state saved before: then one entry for every n). */
  byN: InboundForN[];
}

/** What inboundTransfers finds for one partition. */
export interface InboundPlan {
  partition: number;
  givers: NodeId[];
  sources: NodeId[];
  byN: Array<{ n: number; givers: NodeId[]; sources: NodeId[] }>;
}

/**
 * The partitions `self` gains from `before` to `after` for the bucket n
 * values `ns` that have a giver, with their givers and where to read them
 * meanwhile, per n. No giver (every old replica is gone): nothing to wait for.
 */
export function inboundTransfers(
  before: Ring,
  after: Ring,
  ns: number | readonly number[],
  members: ReadonlySet<NodeId>,
  self: NodeId,
  zones?: ReadonlyMap<NodeId, string>,
): InboundPlan[] {
  if (before.partitionBits !== after.partitionBits) throw new Error('rings of different sizes');
  const values = nsOf(ns);
  const out: InboundPlan[] = [];
  for (let partition = 0; partition < after.owners.length; partition++) {
    const nexts = listsByN(after, partition, values, zones);
    // The list of a smaller n is a prefix: not in the largest, in none.
    if (!nexts[nexts.length - 1]!.includes(self)) continue;
    const olds = listsByN(before, partition, values, zones);
    if (sameList(olds[olds.length - 1]!, nexts[nexts.length - 1]!)) continue;
    const byN: InboundPlan['byN'] = [];
    values.forEach((n, i) => {
      if (!nexts[i]!.includes(self)) return;
      const mine = giversOf(olds[i]!, nexts[i]!, members).find((g) => g.to === self);
      if (mine === undefined) return;
      // A replaced node that is no member any more may still run (a leaving node gives its own copy).
      // It may be the only old replica (n = 1, or every other one gone): the claimant marks a leaving
      // node 'left' as soon as the ring gives it nothing, before it has given its copy, and a node
      // that adopts the ring only then would otherwise wait for no one and answer reads from an empty
      // copy (issue 9: test/sim/transfer-mixed-n.sim.test.ts with n = 1 buckets, seeds 16 and 24).
      // One that stopped is given up after receiveGoneMs (node/transfer.ts).
      const first = mine.replaced !== undefined ? [mine.replaced] : [];
      const givers = [...new Set([...first, ...(mine.giver === undefined ? [] : [mine.giver])])];
      // Only a giver's copy stands for this node's: another old replica lacks what only the replaced node held.
      // No one replaced (the list grew): the old replicas that stay in the list are read as replicas too, and any one's copy does.
      const others = mine.replaced === undefined ? olds[i]!.filter((node) => nexts[i]!.includes(node) && members.has(node) && !givers.includes(node)) : [];
      byN.push({ n, givers, sources: [...givers, ...others] });
    });
    if (byN.length === 0) continue;
    out.push({ partition, givers: union(byN.map((g) => g.givers)), sources: union(byN.map((g) => g.sources)), byN });
  }
  return out;
}

function union(lists: ReadonlyArray<readonly NodeId[]>): NodeId[] {
  return [...new Set(lists.flat())];
}

export interface InboundState {
  entries: Inbound[];
  /** `partition giver` → highest ring version of a finish that came before this node expected it. */
  early: Array<[string, number]>;
}

/** The partitions a node is still receiving. Pure: time comes in as arguments; JSON-able state. */
export class InboundTransfers {
  private readonly entries = new Map<number, Inbound>();
  private readonly early = new Map<string, number>();

  /** `saved` may be state written before transfers were planned per n (entries without byN): each such entry then stands for every n. */
  constructor(saved?: InboundState) {
    for (const e of saved?.entries ?? []) {
      if (!Array.isArray(e.givers)) continue;
      const byN = Array.isArray(e.byN) ? e.byN : [{ n: null, givers: [...e.givers], sources: [...(e.sources ?? e.givers)], ring: e.ring }];
      this.entries.set(e.partition, { ...e, byN });
    }
    for (const [k, v] of saved?.early ?? []) this.early.set(k, v);
  }

  /**
   * Where reads of `partition` go while it is pending here, for keys of a
   * bucket with `n` replicas (no n: of any bucket); null: this node has them.
   */
  sourcesOf(partition: number, n?: number): readonly NodeId[] | null {
    const e = this.entries.get(partition);
    if (e === undefined) return null;
    if (n === undefined) return e.sources;
    return e.byN.find((g) => g.n === n || g.n === null)?.sources ?? null;
  }

  list(): readonly Inbound[] {
    return [...this.entries.values()].sort((a, b) => a.partition - b.partition);
  }

  get size(): number {
    return this.entries.size;
  }

  /** This node moved from ring `before` to `after` for the bucket n values `ns` (`members`: the members that have not left). */
  onRingChange(before: Ring, after: Ring, ns: number | readonly number[], members: ReadonlySet<NodeId>, self: NodeId, now: number, zones?: ReadonlyMap<NodeId, string>): void {
    const values = nsOf(ns);
    const largest = values[values.length - 1]!;
    // An n this node no longer replicates the partition for is not waited for any more.
    for (const e of [...this.entries.values()]) {
      const list = preferenceList(after, e.partition, Math.max(largest, ...e.byN.map((g) => g.n ?? 0)), zones).primaries;
      const replicaFor = (n: number | null) => list.slice(0, n ?? largest).includes(self);
      this.update(e, e.byN.filter((g) => replicaFor(g.n)));
    }
    for (const plan of inboundTransfers(before, after, values, members, self, zones)) {
      const e = this.entries.get(plan.partition);
      const fresh: InboundForN[] = [];
      for (const g of plan.byN) {
        // Already pending for this n (or for every n): the earlier givers stand.
        if (e?.byN.some((h) => h.n === g.n || h.n === null)) continue;
        const waiting = g.givers.filter((giver) => (this.early.get(`${plan.partition} ${giver}`) ?? -1) < after.version);
        if (waiting.length > 0) fresh.push({ n: g.n, givers: waiting, sources: g.sources, ring: after.version });
      }
      if (fresh.length === 0) continue;
      if (e) this.update(e, [...e.byN, ...fresh]);
      else this.update({ partition: plan.partition, givers: [], sources: [], ring: after.version, since: now, byN: [] }, fresh);
    }
  }

  /** `giver` finished streaming `partition` to this node, at its ring `ringVersion`. Returns whether the partition stopped being pending. */
  onFinish(partition: number, giver: NodeId, ringVersion: number): boolean {
    const e = this.entries.get(partition);
    if (!e || !e.givers.includes(giver)) {
      const k = `${partition} ${giver}`;
      this.early.set(k, Math.max(ringVersion, this.early.get(k) ?? -1));
      return false;
    }
    return this.drop(e, giver, ringVersion);
  }

  /** `giver`, asked from its ring `ringVersion`, is (or is not) still sending `partition` here. Returns whether the partition stopped being pending. */
  onGiverStatus(partition: number, giver: NodeId, ringVersion: number, sending: boolean): boolean {
    const e = this.entries.get(partition);
    if (!e || sending) return false;
    return this.drop(e, giver, ringVersion);
  }

  /** `giver` left the cluster and no longer answers: nothing more will come from it. */
  onGiverGone(partition: number, giver: NodeId): boolean {
    const e = this.entries.get(partition);
    return e !== undefined && this.drop(e, giver, Infinity);
  }

  /** Ends the entries pending for `limitMs` or longer; returns them. */
  expire(now: number, limitMs: number): Inbound[] {
    const ended = [...this.entries.values()].filter((e) => now - e.since >= limitMs);
    for (const e of ended) this.entries.delete(e.partition);
    return ended;
  }

  toJSON(): InboundState {
    return { entries: this.list() as Inbound[], early: [...this.early] };
  }

  /** `giver` gives nothing more for the n values it was waited for under rings up to `ringVersion` (an answer from an older ring proves nothing). */
  private drop(e: Inbound, giver: NodeId, ringVersion: number): boolean {
    const byN = e.byN.map((g) => (ringVersion >= g.ring ? { ...g, givers: g.givers.filter((x) => x !== giver) } : g));
    return this.update(e, byN.filter((g) => g.givers.length > 0));
  }

  /** Sets the entry's n values (the unions follow); none left: the partition is not pending any more (returns true). */
  private update(e: Inbound, byN: InboundForN[]): boolean {
    if (byN.length === 0) {
      this.entries.delete(e.partition);
      return true;
    }
    if (byN.length === 1) {
      // The common case (one n new here), without the unions: a join at Q = 4096 makes thousands.
      const g = byN[0]!;
      Object.assign(e, { byN, givers: [...g.givers], sources: g.sources, ring: g.ring });
    } else {
      byN.sort((a, b) => (a.n ?? Infinity) - (b.n ?? Infinity));
      Object.assign(e, { byN, givers: union(byN.map((g) => g.givers)), sources: union(byN.map((g) => g.sources)), ring: Math.min(...byN.map((g) => g.ring)) });
    }
    this.entries.set(e.partition, e);
    return false;
  }
}
