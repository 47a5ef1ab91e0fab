// Which partitions must move when the ring changes (Dynamo §4.9): for each
// partition whose preference list gains nodes, exactly one giver streams the
// partition's objects to each node that joined the list: the node it
// replaces in the list (paired in list order), or, when that one cannot give
// (it left), the first node of the old list that still can. Giving the
// replaced node's copy keeps the union of the list's copies whole: the nodes
// that stay keep theirs, the new one gets the one that goes — so a write
// held by only one old replica (w = 1) is not dropped by the move. One giver
// per (partition, target) means no duplicate transfers. Pure.
import { preferenceList, type Ring } from './ring.js';
import type { NodeId } from './types.js';

export interface Transfer {
  partition: number;
  from: NodeId;
  to: NodeId;
}

/**
 * Transfers needed to go from `before` to `after` for `n` replicas.
 * `members` are the nodes still able to give (valid or leaving members).
 */
export function planTransfers(before: Ring, after: Ring, n: number, members: ReadonlySet<NodeId>, zones?: ReadonlyMap<NodeId, string>): Transfer[] {
  if (before.partitionBits !== after.partitionBits) throw new Error('rings of different sizes');
  const transfers: Transfer[] = [];
  for (let partition = 0; partition < after.owners.length; partition++) {
    const old = preferenceList(before, partition, n, zones).primaries;
    const next = preferenceList(after, partition, n, zones).primaries;
    for (const { to, giver } of giversOf(old, next, members)) transfers.push({ partition, from: giver, to });
  }
  return transfers;
}

/** Each node new in `next`, with its giver (see the top of the file); none when every old replica is gone. */
function giversOf(old: readonly NodeId[], next: readonly NodeId[], members: ReadonlySet<NodeId>): Array<{ to: NodeId; giver: NodeId; replaced: NodeId | undefined }> {
  const fallback = old.find((node) => members.has(node));
  const replaced = old.filter((node) => !next.includes(node));
  const out: Array<{ to: NodeId; giver: NodeId; replaced: NodeId | undefined }> = [];
  for (const [i, to] of next.filter((node) => !old.includes(node)).entries()) {
    const r = replaced[i];
    const giver = r !== undefined && members.has(r) ? r : fallback;
    if (giver !== undefined) out.push({ to, giver, replaced: r });
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
// other nodes compute it). A giver stops counting when
//   - its 'finish' arrives (sent after its catch-up pass), before or after
//     this node adopted the ring (early finishes are remembered by ring
//     version);
//   - asked, it answers from this ring or a later one that it has no transfer
//     for this node (a finish that was lost, or plans that differ);
//   - it left the cluster and no longer answers (nothing more will come).
// The partition stops being pending when no giver counts any more, when this
// node stops being its replica, or after `limitMs` (a giver that never
// answers cannot keep it pending for ever).

/** A partition this node is to receive, and where reads of it go meanwhile. */
export interface Inbound {
  partition: number;
  /** Givers this node still waits for. */
  givers: NodeId[];
  /**
   * Where reads go meanwhile, in order: the node this one replaces, then the
   * other giver (when that one left); for a list that grew, the giver, then
   * the other old replicas that were members and stay in the list.
   */
  sources: NodeId[];
  /** Ring version under which this node became a replica of the partition. */
  ring: number;
  /** When this node learned of it (its clock, ms). */
  since: number;
}

/**
 * The partitions `self` gains from `before` to `after` that have a giver,
 * with their givers and where to read them meanwhile. No giver (every old
 * replica is gone): nothing to wait for.
 */
export function inboundTransfers(
  before: Ring,
  after: Ring,
  n: number,
  members: ReadonlySet<NodeId>,
  self: NodeId,
  zones?: ReadonlyMap<NodeId, string>,
): Array<{ partition: number; givers: NodeId[]; sources: NodeId[] }> {
  if (before.partitionBits !== after.partitionBits) throw new Error('rings of different sizes');
  const out: Array<{ partition: number; givers: NodeId[]; sources: NodeId[] }> = [];
  for (let partition = 0; partition < after.owners.length; partition++) {
    const next = preferenceList(after, partition, n, zones).primaries;
    if (!next.includes(self)) continue;
    const old = preferenceList(before, partition, n, zones).primaries;
    const mine = giversOf(old, next, members).find((g) => g.to === self);
    if (mine === undefined) continue;
    // A replaced node that is no member any more may still run (a leaving node gives its own copy).
    const first = mine.replaced !== undefined ? [mine.replaced] : [];
    const givers = [...new Set([...first, mine.giver])];
    // Only a giver's copy stands for this node's: another old replica lacks what only the replaced node held.
    // No one replaced (the list grew): the old replicas that stay in the list are read as replicas too, and any one's copy does.
    const others = mine.replaced === undefined ? old.filter((node) => next.includes(node) && members.has(node) && !givers.includes(node)) : [];
    out.push({ partition, givers, sources: [...givers, ...others] });
  }
  return out;
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

  constructor(saved?: InboundState) {
    for (const e of saved?.entries ?? []) if (Array.isArray(e.givers)) this.entries.set(e.partition, e);
    for (const [k, v] of saved?.early ?? []) this.early.set(k, v);
  }

  /** Where reads of `partition` go while it is pending here; null: this node has it. */
  sourcesOf(partition: number): readonly NodeId[] | null {
    return this.entries.get(partition)?.sources ?? null;
  }

  list(): readonly Inbound[] {
    return [...this.entries.values()].sort((a, b) => a.partition - b.partition);
  }

  get size(): number {
    return this.entries.size;
  }

  /** This node moved from ring `before` to `after` (`members`: the members that have not left). */
  onRingChange(before: Ring, after: Ring, n: number, members: ReadonlySet<NodeId>, self: NodeId, now: number, zones?: ReadonlyMap<NodeId, string>): void {
    for (const p of [...this.entries.keys()]) {
      if (!preferenceList(after, p, n, zones).primaries.includes(self)) this.entries.delete(p);
    }
    for (const { partition, givers, sources } of inboundTransfers(before, after, n, members, self, zones)) {
      if (this.entries.has(partition)) continue;
      const waiting = givers.filter((g) => (this.early.get(`${partition} ${g}`) ?? -1) < after.version);
      if (waiting.length > 0) this.entries.set(partition, { partition, givers: waiting, sources, ring: after.version, since: now });
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
    return ringVersion >= e.ring && this.drop(e, giver);
  }

  /** `giver`, asked from its ring `ringVersion`, is (or is not) still sending `partition` here. */
  onGiverStatus(partition: number, giver: NodeId, ringVersion: number, sending: boolean): boolean {
    const e = this.entries.get(partition);
    if (!e || sending || ringVersion < e.ring) return false;
    return this.drop(e, giver);
  }

  /** `giver` left the cluster and no longer answers: nothing more will come from it. */
  onGiverGone(partition: number, giver: NodeId): boolean {
    const e = this.entries.get(partition);
    return e !== undefined && this.drop(e, giver);
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

  private drop(e: Inbound, giver: NodeId): boolean {
    e.givers = e.givers.filter((g) => g !== giver);
    if (e.givers.length > 0) return false;
    this.entries.delete(e.partition);
    return true;
  }
}
