// Seeded gossip simulation: K nodes join through a seed (one may leave),
// every simulated second each node push-pulls its state with a random peer
// and runs maybeReclaim. Whatever the schedule, all nodes must agree on one
// state soon after the last membership change, with a balanced ring owned
// only by valid members.
import { describe, expect, it } from 'vitest';
import { isBalanced } from '../../src/core/claim.js';
import {
  type ClusterState,
  addMember,
  claimantOf,
  createCluster,
  digest,
  gossipTarget,
  markLeaving,
  maybeReclaim,
  merge,
  validMembers,
} from '../../src/core/membership.js';
import { Rand } from '../helpers/random.js';

const SEEDS = 200;
/** Rounds allowed between the last membership change and agreement. */
const ROUND_BOUND = 30;

interface SimNode {
  readonly id: string;
  readonly joinAt: number;
  state: ClusterState | null;
}

/** Still taking part in gossip, as far as the node itself knows. */
const isActive = (node: SimNode): node is SimNode & { state: ClusterState } =>
  node.state !== null && node.state.members[node.id]?.status !== 'left';

function shuffle<T>(rand: Rand, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rand.int(0, i);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** The agreed state when every active node holds the same, settled one; otherwise null. */
function agreement(nodes: readonly SimNode[]): ClusterState | null {
  const active = nodes.filter(isActive);
  const state = active[0]?.state;
  if (state === undefined || active.some((n) => digest(n.state) !== digest(state))) return null;
  const claimant = claimantOf(state);
  if (claimant === null || maybeReclaim(state, claimant) !== null) return null;
  // Everyone the state still counts in must be among the nodes that agree.
  const agreeing = new Set(active.map((n) => n.id));
  const counted = Object.values(state.members).filter((m) => m.status !== 'left');
  return counted.every((m) => agreeing.has(m.id)) ? state : null;
}

function simulate(seed: number): { roundsAfterLastChange: number; state: ClusterState; joined: string[]; leaver?: string } {
  const rand = new Rand(seed);
  const k = rand.int(3, 7);
  const partitionBits = rand.int(4, 8);
  const ids = new Set<string>();
  while (ids.size < k) ids.add(`n${rand.int(0, 99)}`);
  const [seedId, ...joiners] = [...ids];
  const joinTimes = joiners.map(() => rand.int(0, 10)).sort((a, b) => a - b);
  const nodes: SimNode[] = [
    { id: seedId!, joinAt: 0, state: createCluster({ id: seedId!, address: `${seedId}:7000` }, partitionBits, 'sim') },
    ...joiners.map((id, i) => ({ id, joinAt: joinTimes[i]!, state: null })),
  ];
  const seedNode = nodes[0]!;
  const lastJoin = joinTimes.at(-1) ?? 0;
  // Half the runs: after the joins, an operator tells a random node that another node leaves.
  const leave = rand.chance(0.5) ? { at: rand.int(lastJoin, lastJoin + 5), id: rand.pick(nodes).id } : undefined;
  const lastChange = leave?.at ?? lastJoin;
  const byId = new Map(nodes.map((n) => [n.id, n]));

  for (let second = 0; second <= lastChange + ROUND_BOUND; second++) {
    // Membership changes due this second.
    for (const node of nodes) {
      if (node.state === null && node.joinAt === second) {
        seedNode.state = addMember(seedNode.state!, { id: node.id, address: `${node.id}:7000` });
        node.state = seedNode.state;
      }
    }
    if (leave?.at === second) {
      // Any node that already knows the leaver can take the command.
      const admin = rand.pick(nodes.filter(isActive).filter((n) => n.state.members[leave.id] !== undefined));
      admin.state = markLeaving(admin.state, leave.id);
    }

    // One gossip round, nodes in random order.
    for (const node of shuffle(rand, nodes.filter(isActive))) {
      if (!isActive(node)) continue; // learned this round that it has left
      const peer = byId.get(gossipTarget(node.state, node.id, (n) => rand.int(0, n - 1)) ?? '');
      if (peer !== undefined && isActive(peer)) {
        const merged = merge(node.state, peer.state);
        node.state = merged;
        peer.state = merged;
      }
      node.state = maybeReclaim(node.state, node.id) ?? node.state;
    }

    const agreed = second >= lastChange ? agreement(nodes) : null;
    if (agreed !== null) {
      return { roundsAfterLastChange: second - lastChange, state: agreed, joined: [...ids], leaver: leave?.id };
    }
  }
  throw new Error(`seed ${seed}: no agreement within ${ROUND_BOUND} rounds of the last change`);
}

describe('gossip convergence', () => {
  it(`agrees on one balanced ring within ${ROUND_BOUND} rounds for ${SEEDS} seeds`, () => {
    const rounds: number[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      const { roundsAfterLastChange, state, joined, leaver } = simulate(seed);
      rounds.push(roundsAfterLastChange);
      const valid = validMembers(state).map((m) => m.id);
      expect(valid.sort(), `seed ${seed}`).toEqual(joined.filter((id) => id !== leaver).sort());
      if (leaver !== undefined) expect(state.members[leaver]?.status, `seed ${seed}`).toBe('left');
      expect(isBalanced(state.ring.owners, valid), `seed ${seed}`).toBe(true);
      expect(state.ring.owners.every((o) => valid.includes(o)), `seed ${seed}`).toBe(true);
      expect(state.ring.claimant, `seed ${seed}`).toBe(claimantOf(state));
    }
    rounds.sort((a, b) => a - b);
    console.log(
      `rounds after last change: median ${rounds[SEEDS >> 1]}, p95 ${rounds[Math.floor(SEEDS * 0.95)]}, max ${rounds.at(-1)}`,
    );
  });
});
