// Which partitions must move when the ring changes (Dynamo §4.9): for each
// partition whose preference list gains nodes, exactly one giver — the first
// node of the old list that is still a member — streams the partition's
// objects to each node that joined the list. One giver per (partition,
// target) means no duplicate transfers. Pure.
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
    const giver = old.find((node) => members.has(node));
    if (giver === undefined) continue; // every old replica is gone: nothing to copy from
    for (const to of next) {
      if (!old.includes(to)) transfers.push({ partition, from: giver, to });
    }
  }
  return transfers;
}

/** The transfers this node gives. */
export function transfersFrom(plan: readonly Transfer[], self: NodeId): Transfer[] {
  return plan.filter((t) => t.from === self);
}
