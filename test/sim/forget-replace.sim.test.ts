// Seeded gossip simulation of the membership rules forget and replace added
// (src/core/membership.ts: tombstones of forgotten members, replacement
// marks, the drain flag). K nodes form a cluster; one dies (stops taking
// part). Then, by seed, an operator either forgets it (forced: marked
// 'left', removed once the claimant reclaimed its partitions) or a fresh
// node joins as its replacement. One live node is cut off from before the
// change until well after it (it holds the dead node as a valid member),
// and a random node drains and undrains meanwhile. Every round each node
// push-pulls its state with a random peer (mergeGossip, as nodes do) and
// runs maybeReclaim and expireDeparted. Whatever the schedule: all nodes
// agree on one state, the dead node owns nothing and — once forgotten —
// never comes back, also after the cut-off node's old state is merged in.
import { describe, expect, it } from 'vitest';
import { isBalanced } from '../../src/core/claim.js';
import {
  type ClusterState,
  addMember,
  claimantOf,
  createCluster,
  digest,
  expireDeparted,
  forgetStep,
  gossipTarget,
  markLeft,
  markReplacing,
  maybeReclaim,
  mergeGossip,
  removeMember,
  setDraining,
  validMembers,
} from '../../src/core/membership.js';
import { Rand } from '../helpers/random.js';

const SEEDS = 150;
/** Rounds the simulation runs after the last change; agreement must come within them. */
const ROUND_BOUND = 40;
const EXPIRY_MS = 1_000_000_000; // expiry on, but far away: forget is what removes here

interface SimNode {
  id: string;
  state: ClusterState;
  alive: boolean;
  /** Rounds during which it gossips with nobody. */
  cutOff: { from: number; to: number } | null;
}

const member = (id: string) => ({ id, address: `${id}.sim:7000` });

function shuffle<T>(rand: Rand, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rand.int(0, i);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function simulate(seed: number) {
  const rand = new Rand(seed);
  const k = rand.int(4, 6);
  const ids = Array.from({ length: k }, (_, i) => `n${i}`);
  let state = createCluster(member(ids[0]!), rand.int(4, 7), 'sim');
  for (const id of ids.slice(1)) {
    state = addMember(state, member(id));
    for (let i = 0; i < 3; i++) state = maybeReclaim(state, claimantOf(state)!, 0) ?? state;
  }
  const nodes: SimNode[] = ids.map((id) => ({ id, state, alive: true, cutOff: null }));
  const dead = rand.pick(nodes);
  const mode: 'forget' | 'replace' = rand.chance(0.5) ? 'forget' : 'replace';
  const changeAt = rand.int(2, 6);
  const isolated = rand.pick(nodes.filter((n) => n !== dead));
  isolated.cutOff = { from: changeAt - 1, to: changeAt + rand.int(5, 20) };
  const drainer = rand.pick(nodes.filter((n) => n !== dead));
  const drainAt = rand.int(0, changeAt + 5);
  const lastChange = isolated.cutOff.to;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const deadOwned = state.ring.owners.flatMap((o, p) => (o === dead.id ? [p] : []));
  let forgetting = false;
  let clock = 0;
  const talks = (n: SimNode, round: number) => n.alive && (n.cutOff === null || round < n.cutOff.from || round > n.cutOff.to);

  for (let round = 0; round <= lastChange + ROUND_BOUND; round++) {
    clock += 1_000;
    if (round === 1) dead.alive = false;
    if (round === drainAt) drainer.state = setDraining(drainer.state, drainer.id, true);
    if (round === drainAt + 3) drainer.state = setDraining(drainer.state, drainer.id, false);
    if (round === changeAt) {
      const admin = rand.pick(nodes.filter((n) => talks(n, round)));
      if (mode === 'forget') forgetting = true;
      else {
        // A fresh node joins through `admin` as the dead one's replacement.
        const fresh: SimNode = { id: 'fresh', state: admin.state, alive: true, cutOff: null };
        admin.state = markReplacing(addMember(admin.state, member('fresh')), dead.id, 'fresh');
        fresh.state = admin.state;
        nodes.push(fresh);
        byId.set('fresh', fresh);
      }
    }
    // The operator's forget, run on a live node until it reports the member gone (as `ringkv forget --force` does).
    if (forgetting) {
      const admin = rand.pick(nodes.filter((n) => talks(n, round)));
      const step = forgetStep(admin.state, dead.id, admin.id, true);
      if (step.kind === 'mark-left') admin.state = markLeft(admin.state, dead.id, clock);
      else if (step.kind === 'remove') {
        admin.state = removeMember(admin.state, dead.id, clock);
        forgetting = false;
      } else if (step.kind === 'refuse' && step.code === 'UNKNOWN_MEMBER') forgetting = false;
    }
    for (const node of shuffle(rand, nodes.filter((n) => talks(n, round)))) {
      const peer = byId.get(gossipTarget(node.state, node.id, (n) => rand.int(0, n - 1)) ?? '');
      if (peer !== undefined && talks(peer, round)) {
        const there = mergeGossip(peer.state, node.state, peer.id, node.id).state;
        const here = mergeGossip(node.state, there, node.id, peer.id).state;
        peer.state = there;
        node.state = here;
      }
      node.state = maybeReclaim(node.state, node.id, clock) ?? node.state;
      node.state = expireDeparted(node.state, node.id, clock, EXPIRY_MS) ?? node.state;
    }
  }
  const live = nodes.filter((n) => n.alive);
  return { nodes: live, dead: dead.id, mode, deadOwned, forgettingLeft: forgetting, drainer: drainer.id };
}

describe('forget and replace under gossip', () => {
  it(`agree on one state where the dead node owns nothing (and, forgotten, never returns) for ${SEEDS} seeds`, () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const { nodes, dead, mode, deadOwned, forgettingLeft, drainer } = simulate(seed);
      const first = nodes[0]!.state;
      const tag = `seed ${seed} (${mode} ${dead})`;
      for (const n of nodes) expect(digest(n.state), `${tag}: ${n.id} agrees`).toBe(digest(first));
      const valid = validMembers(first).map((m) => m.id);
      expect(valid.includes(dead), tag).toBe(false);
      expect(first.ring.owners.includes(dead), tag).toBe(false);
      expect(isBalanced(first.ring.owners, valid), tag).toBe(true);
      expect(first.members[drainer]?.draining, tag).toBeUndefined();
      if (mode === 'forget') {
        expect(forgettingLeft, `${tag}: the operator's forget finished`).toBe(false);
        expect(first.members[dead], tag).toBeUndefined();
        expect(first.forgotten?.[dead], tag).toBeDefined();
      } else {
        expect(first.members[dead]?.status, tag).toBe('left');
        expect(first.members.fresh?.replaces, tag).toBeUndefined();
        // One-for-one: the replacement holds every partition the dead node held (it owned none before).
        expect(deadOwned.every((p) => first.ring.owners[p] === 'fresh'), tag).toBe(true);
      }
    }
  });
});
