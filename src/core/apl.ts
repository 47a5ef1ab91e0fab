// Who is asked (riak_core_apl.erl): given a key's preference list and this
// node's view of its peers' health, which nodes a read asks, which fallback
// replaces a suspected primary, where a write's copies go, and the order a
// non-primary forwards a write in. Pure: health comes in as predicates the
// node evaluates at one instant.
import type { ReplicaTarget } from './put-coordinator.js';
import type { ReadFanout } from './membership.js';
import type { PreferenceList } from './ring.js';
import { type NodeId, invariant } from './types.js';

export interface Health {
  /** Suspected now (phi above the threshold, or its last request failed); never this node itself. */
  isSuspect(node: NodeId): boolean;
  /** A member not yet left: one that may hold copies. */
  isMember(node: NodeId): boolean;
  /** Draining (docs/cluster.md "Drain"): still a replica, but not to be handed new writes to coordinate. */
  isDraining?(node: NodeId): boolean;
}

/**
 * Fallbacks usable as substitutes (members not left), healthy ones first,
 * each group in preference order. This node may be one: a read it
 * coordinates as a non-primary then answers locally, hints included.
 */
export function substitutes(pl: PreferenceList, health: Health): { healthy: NodeId[]; suspected: NodeId[] } {
  const usable = pl.fallbacks.filter((f) => health.isMember(f));
  return { healthy: usable.filter((f) => !health.isSuspect(f)), suspected: usable.filter((f) => health.isSuspect(f)) };
}

export interface ReadPlan {
  /**
   * One node per primary slot: the primary, or the healthy fallback
   * replacing it. With fan-out `all` in slot order; with `quorum` in the
   * order they are asked in (see readPlan).
   */
  replicas: NodeId[];
  /** The fallbacks among `replicas` (they answer with their hints too). */
  substitutes: Set<NodeId>;
  /**
   * The node this node's writes of the key go to (itself if it coordinates
   * them, else the first healthy primary it forwards to), when it is among
   * the replicas: its copy has every write it acknowledged, so the read
   * waits for it (read-your-writes, see get-coordinator.ts).
   */
  awaited: NodeId | undefined;
  /** How many of `replicas` (from the first) are asked at once; the rest only when the read needs them (get-coordinator.ts). */
  ask: number;
}

/** A read's fan-out and the answers it needs (src/core/quorum.ts). */
export interface ReadNeeds {
  fanout: ReadFanout;
  r: number;
  /** Answers required from primaries (Riak's pr). */
  pr: number;
}

/**
 * Reads ask the key's N primaries, replacing each suspected primary by the
 * next healthy fallback (sloppy quorum, Dynamo §4.6); a suspected primary
 * with no healthy fallback left is asked anyway.
 *
 * Fan-out `quorum` (Cassandra's way): the same replicas, ordered this node
 * first (its copy costs no peer message), then `awaited`, the healthy
 * primaries in preference order, the substitutes, and last the suspected
 * primaries asked for want of a fallback; `ask` is the shortest prefix that
 * holds R nodes, PR primaries and `awaited`. Fan-out `all` (the default):
 * every replica at once, in slot order.
 */
export function readPlan(pl: PreferenceList, health: Health, self: NodeId, coordinatesOwnWrites: boolean, needs?: ReadNeeds): ReadPlan {
  const spare = substitutes(pl, health).healthy;
  const subs = new Set<NodeId>();
  const slots = pl.primaries.map((p) => {
    if (!health.isSuspect(p) || spare.length === 0) return p;
    const f = spare.shift()!;
    subs.add(f);
    return f;
  });
  invariant(new Set(slots).size === slots.length, () => `a read asks a node twice (${slots.join(', ')})`);
  const writer = coordinatesOwnWrites ? self : pl.primaries.find((p) => p !== self && !health.isSuspect(p));
  const awaited = writer !== undefined && slots.includes(writer) ? writer : undefined;
  if (needs === undefined || needs.fanout === 'all') return { replicas: slots, substitutes: subs, awaited, ask: slots.length };
  const rank = (node: NodeId): number => {
    if (node === self) return 0;
    if (node === awaited) return 1;
    if (subs.has(node)) return 3;
    return health.isSuspect(node) ? 4 : 2;
  };
  // Array.prototype.sort is stable: equal ranks keep the slot (preference) order.
  const replicas = [...slots].sort((a, b) => rank(a) - rank(b));
  const primaries = new Set(pl.primaries);
  let ask = 0;
  let primariesAsked = 0;
  let awaitedAsked = awaited === undefined;
  while (ask < replicas.length && (ask < needs.r || primariesAsked < needs.pr || !awaitedAsked)) {
    const node = replicas[ask++]!;
    if (primaries.has(node)) primariesAsked++;
    if (node === awaited) awaitedAsked = true;
  }
  invariant(ask >= Math.min(needs.r, replicas.length), () => `a quorum read asks ${ask} of ${replicas.length} replicas at first, below r=${needs.r}`);
  return { replicas, substitutes: subs, awaited, ask };
}

export interface WritePlan {
  /** One copy per primary slot other than this node's own (and `heldFor`'s). */
  targets: ReplicaTarget[];
  /** Where a failed copy is retried: healthy fallbacks first, then suspected ones. */
  retries: NodeId[];
}

/**
 * A version this node made goes to each other primary, except that a
 * suspected primary is replaced by the next healthy fallback, which holds
 * the copy as a hint naming it. `heldFor`: the primary a fallback
 * coordinator already holds its own copy for.
 */
export function writePlan(pl: PreferenceList, health: Health, self: NodeId, heldFor: NodeId | null): WritePlan {
  const subs = substitutes(pl, health);
  // This node's copy is its own (never a second ack from it).
  const healthy = subs.healthy.filter((f) => f !== self);
  const suspected = subs.suspected.filter((f) => f !== self);
  const targets: ReplicaTarget[] = pl.primaries
    .filter((p) => p !== self && p !== heldFor)
    .map((p) => {
      if (!health.isSuspect(p) || healthy.length === 0) return { node: p, hintFor: null };
      return { node: healthy.shift()!, hintFor: p };
    });
  return { targets, retries: [...healthy, ...suspected] };
}

/**
 * The primaries a non-primary forwards a write to, in order: healthy ones
 * first, suspected ones last; when it may coordinate as a fallback itself
 * (no pw), only healthy ones.
 */
export function forwardOrder(pl: PreferenceList, health: Health, self: NodeId, canFallBack: boolean): NodeId[] {
  // Suspected primaries last, draining ones just before them (they refuse no forward, but are about to stop).
  const rank = (p: NodeId): number => (health.isSuspect(p) ? 2 : health.isDraining?.(p) === true ? 1 : 0);
  return [...pl.primaries].filter((p) => p !== self && (!canFallBack || !health.isSuspect(p))).sort((a, b) => rank(a) - rank(b));
}

/**
 * A write no primary could coordinate, made here as a fallback: the
 * primary this node's copy stands for (the first one that is not itself),
 * and the other healthy members of the list it can send copies to.
 */
export function fallbackCoordination(pl: PreferenceList, health: Health, self: NodeId): { heldFor: NodeId | undefined; reachable: NodeId[] } {
  return {
    heldFor: pl.primaries.find((p) => p !== self),
    reachable: [...pl.primaries, ...pl.fallbacks].filter((n) => n !== self && health.isMember(n) && !health.isSuspect(n)),
  };
}

/**
 * Times one client write may be handed from node to node: by the node the
 * client asked, and once more by a node whose ring (newer or older than the
 * forwarder's) names other primaries. Past it, the node asked coordinates
 * whatever its ring says (coordinatingList), so rings that keep disagreeing
 * cannot bounce a write around until its deadline.
 */
export const MAX_WRITE_FORWARDS = 2;

/**
 * What a node does with a write forwarded to it (`forwards`: how many times
 * it was handed on, this one included): coordinate it when its ring makes it
 * a primary of the key (a leaving primary too: it was asked, and its copy
 * still reaches the others); otherwise hand it on to the primaries of its
 * own ring — coordinated here, the write would reach only the first n − 1
 * of them (nothing for n = 1), and the key's other primaries would miss an
 * acknowledged write — unless it was handed on MAX_WRITE_FORWARDS times
 * already.
 */
export function forwardedWriteStep(pl: PreferenceList, self: NodeId, forwards: number): 'coordinate' | 'forward' {
  invariant(Number.isInteger(forwards) && forwards >= 1, () => `a forwarded write handed on ${forwards} times`);
  return pl.primaries.includes(self) || forwards >= MAX_WRITE_FORWARDS ? 'coordinate' : 'forward';
}

/** A forwarded write: whoever was asked coordinates, even if its ring disagrees for a moment (it takes the first slot). */
export function coordinatingList(pl: PreferenceList, self: NodeId, n: number): PreferenceList {
  if (pl.primaries.includes(self)) return pl;
  return { primaries: [self, ...pl.primaries.slice(0, n - 1)], fallbacks: pl.fallbacks.concat(pl.primaries.slice(n - 1)).filter((f) => f !== self) };
}
