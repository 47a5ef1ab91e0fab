// Gossip's mechanics (src/node/gossip.ts) with a stub context and a manual
// clock, over a real RingState on a stub metadata store: a round exchanges
// with the member gossipTarget picks and adopts its answer; a refused entry
// is counted every time and logged once per sender, member and version;
// pulls of one peer do not pile up; join refusals end in onJoinRefused once,
// unreachable seeds not counted; heartbeats skip the peers heard from within
// the interval. Gossip between real nodes: test/cluster, test/sim.
import { describe, expect, it } from 'vitest';
import { type ClusterState, addMember, createCluster, gossipTarget, maybeReclaim, setBucketProps } from '../../src/core/membership.js';
import { packState } from '../../src/core/state-wire.js';
import { Gossip, type GossipConfig, type GossipContext } from '../../src/node/gossip.js';
import { NodeMetrics } from '../../src/node/metrics.js';
import { RingState } from '../../src/node/ring-state.js';
import { TransportError } from '../../src/transport/types.js';
import { ManualClock, settle } from '../helpers/manual-clock.js';

const INTERVAL_MS = 1_000;
const CONFIG: GossipConfig = {
  gossipIntervalMs: INTERVAL_MS,
  requestTimeoutMs: 5_000,
  maxJoinRefusals: 3,
  joinQuietMs: 30_000,
  joinWarnEveryMs: 60_000,
  departedMemberExpiryMs: -1,
};
const RANDOM = () => 0.4;
const address = (id: string) => `127.0.0.1:${7000 + Number(id.slice(1))}`;

/** n1..n4, the ring computed by n1 (the claimant). */
function fourMembers(): ClusterState {
  let s = createCluster({ id: 'n1', address: address('n1') }, 4, 'c1');
  for (const id of ['n2', 'n3', 'n4']) s = addMember(s, { id, address: address(id) });
  return maybeReclaim(s, 'n1')!;
}

interface Sent {
  node: string;
  type: 'gossip' | 'ping';
}

function setup(opts: { state?: ClusterState; joined?: boolean; seeds?: string[]; answer?: (node: string, state: unknown) => Promise<{ state?: unknown }> } = {}) {
  const clock = new ManualClock();
  const metrics = new NodeMetrics('n1');
  const logs: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];
  const log = (level: string, msg: string, fields?: Record<string, unknown>) => void logs.push({ level, msg, fields });
  const saved = new Map<string, Buffer>();
  const engine = { metaGet: async (n: string) => saved.get(n) ?? null, metaPut: async (n: string, v: Uint8Array) => void saved.set(n, Buffer.from(v)) };
  const ring = new RingState({ engine, metrics, log }, opts.state ?? fourMembers(), opts.joined ?? true);
  const sent: Sent[] = [];
  const heard = new Map<string, number>();
  const joins: Array<{ address: string; body: unknown }> = [];
  let joinAnswer: () => Promise<unknown> = () => Promise.reject(new TransportError('UNREACHABLE', 'connect ECONNREFUSED'));
  const refusedJoin: string[] = [];
  const ctx: GossipContext = {
    id: 'n1',
    address: address('n1'),
    seeds: opts.seeds ?? [],
    clock,
    random: RANDOM,
    ring,
    metrics,
    log,
    transport: {
      request: (to, _type, body) => {
        joins.push({ address: to.address, body });
        return joinAnswer();
      },
    },
    peerRequest: (node, type, body) => {
      sent.push({ node, type });
      if (type === 'ping') return Promise.resolve({}) as never;
      return (opts.answer ?? (() => Promise.resolve({})))(node, (body as { state: unknown }).state) as never;
    },
    lastHeard: (node) => heard.get(node),
    reconcileDrainFlag: async () => undefined,
    onJoinRefused: (reason) => void refusedJoin.push(reason),
  };
  const gossip = new Gossip(ctx, CONFIG);
  const refusedCount = async () => (await metrics.registry.getSingleMetric('ringkv_gossip_refused_entries_total')!.get()).values[0]?.value ?? 0;
  return {
    clock,
    ring,
    gossip,
    sent,
    heard,
    joins,
    logs,
    refusedJoin,
    refusedCount,
    answerJoins: (f: () => Promise<unknown>) => void (joinAnswer = f),
  };
}

/** The state `from` would gossip with n3's address changed: a change only n3 itself may make (gossipEntryProblem). */
function withN3Moved(state: ClusterState, version: number): ClusterState {
  const n3 = state.members.n3!;
  return { ...state, members: { ...state.members, n3: { ...n3, address: '127.0.0.1:7999', version } } };
}

describe('Gossip', () => {
  it('a round exchanges with the target gossipTarget picks and adopts its answer', async () => {
    const state = fourMembers();
    const remote = setBucketProps(state, 'b', { n: 2 });
    const t = setup({ state, answer: async () => ({ state: packState(remote) }) });
    const target = gossipTarget(state, 'n1', (n) => Math.floor(RANDOM() * n));
    t.gossip.start();
    await t.clock.advance(0);
    expect(t.sent.filter((s) => s.type === 'gossip')).toEqual([{ node: target, type: 'gossip' }]);
    expect(t.ring.current.buckets.b?.props.n).toBe(2);
    // The next round comes one interval after the last one ended; none after stop.
    await t.clock.advance(INTERVAL_MS - 1);
    expect(t.sent.filter((s) => s.type === 'gossip')).toHaveLength(1);
    await t.clock.advance(1);
    expect(t.sent.filter((s) => s.type === 'gossip')).toHaveLength(2);
    t.gossip.stop();
    await t.clock.advance(10 * INTERVAL_MS);
    expect(t.sent.filter((s) => s.type === 'gossip')).toHaveLength(2);
  });

  it('keeps its own version of a refused entry, counts each refusal, logs it once per sender, member and version', async () => {
    const state = fourMembers();
    const t = setup({ state });
    const v = state.members.n3!.version;
    const refusedLogs = () => t.logs.filter((l) => l.msg === 'gossiped member entry refused').map((l) => `${l.fields!.from}/${l.fields!.member}/${l.fields!.version}`);
    await t.gossip.onGossip('n2', { state: packState(withN3Moved(state, v + 1)) });
    await t.gossip.onGossip('n2', { state: packState(withN3Moved(state, v + 1)) });
    expect(t.ring.current.members.n3!.address).toBe(address('n3'));
    expect(await t.refusedCount()).toBe(2);
    expect(refusedLogs()).toEqual([`n2/n3/${v + 1}`]);
    // Another sender of the same entry, and a newer version from the first: each logged once more.
    await t.gossip.onGossip('n4', { state: packState(withN3Moved(state, v + 1)) });
    await t.gossip.onGossip('n2', { state: packState(withN3Moved(state, v + 2)) });
    await t.gossip.onGossip('n2', { state: packState(withN3Moved(state, v + 2)) });
    expect(await t.refusedCount()).toBe(5);
    expect(refusedLogs()).toEqual([`n2/n3/${v + 1}`, `n4/n3/${v + 1}`, `n2/n3/${v + 2}`]);
  });

  it('pulls a peer once at a time, and only a member', async () => {
    const answers: Array<() => void> = [];
    const t = setup({ answer: () => new Promise((resolve) => answers.push(() => resolve({}))) });
    t.gossip.pull('n2');
    t.gossip.pull('n2');
    t.gossip.pull('n3');
    t.gossip.pull('n9');
    expect(t.sent).toEqual([
      { node: 'n2', type: 'gossip' },
      { node: 'n3', type: 'gossip' },
    ]);
    answers.shift()!();
    await settle();
    t.gossip.pull('n2');
    expect(t.sent).toHaveLength(3);
  });

  it('gives up after maxJoinRefusals refused joins, calling onJoinRefused once; an unreachable seed does not count', async () => {
    const alone = createCluster({ id: 'n1', address: address('n1') }, 4, 'c1');
    const t = setup({ state: alone, joined: false, seeds: [address('n1'), '127.0.0.1:7002'] });
    t.gossip.start();
    // Two rounds while the seed is not up yet: quiet retries.
    await t.clock.advance(0);
    await t.clock.advance(INTERVAL_MS);
    expect(t.joins.map((j) => j.address)).toEqual(['127.0.0.1:7002', '127.0.0.1:7002']);
    expect(t.logs.filter((l) => l.msg === 'join through seed failed; retrying').map((l) => l.level)).toEqual(['debug', 'debug']);
    // Then the seed refuses this node (wrong secret, another cluster, a duplicate id).
    t.answerJoins(() => Promise.reject(new TransportError('REMOTE', 'cannot admit', 'n2', 'BAD_REQUEST')));
    await t.clock.advance(INTERVAL_MS);
    await t.clock.advance(INTERVAL_MS);
    expect(t.refusedJoin).toEqual([]);
    await t.clock.advance(INTERVAL_MS);
    expect(t.refusedJoin).toEqual(['seed 127.0.0.1:7002 refused this node 3 times: cannot admit']);
    await t.clock.advance(INTERVAL_MS);
    expect(t.refusedJoin).toHaveLength(1);
    expect(t.logs.filter((l) => l.msg === 'the cluster refused this node').map((l) => l.fields!.refusals)).toEqual([1, 2, 3, 4]);
    expect(t.ring.joined).toBe(false);
    t.gossip.stop();
  });

  it('join: the seed admits a peer only as itself, and the joiner takes the admitted state wholesale', async () => {
    const seed = setup({ state: fourMembers() });
    const me = { id: 'n5', address: address('n5') };
    await expect(seed.gossip.onJoin('n4', { cluster: 'c1', member: me })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(seed.gossip.onJoin('n5', { cluster: 'c2', member: me })).rejects.toMatchObject({ code: 'CLUSTER_MISMATCH' });
    const { state } = await seed.gossip.onJoin('n5', { cluster: 'c1', member: me });
    expect(seed.ring.current.members.n5?.status).toBe('valid');
    expect(seed.logs.map((l) => l.msg)).toContain('member added');

    // A joiner (n1 in this context, on its private single-node state) given the seed's answer, which admits it: taken as is.
    const alone = createCluster({ id: 'n1', address: address('n1') }, 4, 'c1');
    const joiner = setup({ state: alone, joined: false });
    const admitted = addMember(fourMembers(), { id: 'n5', address: address('n5') });
    joiner.answerJoins(async () => ({ state }));
    await expect(joiner.gossip.join('127.0.0.1:7002')).resolves.toBeUndefined();
    expect(joiner.ring.joined).toBe(true);
    expect(Object.keys(joiner.ring.current.members).sort()).toEqual(Object.keys(admitted.members).sort());
    expect(joiner.logs.filter((l) => l.msg === 'joined cluster').map((l) => l.fields)).toEqual([{ seed: '127.0.0.1:7002', members: 5 }]);
    // A seed whose answer does not admit this node at its address is refused (BAD_REQUEST), and the state stays.
    const stranger = setup({ state: alone, joined: false });
    const moved = { ...fourMembers(), members: { ...fourMembers().members, n1: { ...fourMembers().members.n1!, address: '127.0.0.1:7999' } } };
    stranger.answerJoins(async () => ({ state: moved }));
    await expect(stranger.gossip.join('127.0.0.1:7002')).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect(stranger.ring.joined).toBe(false);
    expect(stranger.ring.current).toBe(alone);
  });

  it('heartbeats ping the members not heard from within an interval, but not the gossip target', async () => {
    const state = fourMembers();
    const target = gossipTarget(state, 'n1', (n) => Math.floor(RANDOM() * n))!;
    const [quiet, recent] = ['n2', 'n3', 'n4'].filter((id) => id !== target);
    const t = setup({ state });
    t.heard.set(recent!, t.clock.now() - (INTERVAL_MS - 1));
    t.heard.set(quiet!, t.clock.now() - INTERVAL_MS);
    t.heard.set(target, t.clock.now() - 10 * INTERVAL_MS);
    t.gossip.start();
    await t.clock.advance(0);
    expect(t.sent.filter((s) => s.type === 'ping')).toEqual([{ node: quiet, type: 'ping' }]);
    expect(t.sent.filter((s) => s.type === 'gossip')).toEqual([{ node: target, type: 'gossip' }]);
    t.gossip.stop();
  });
});
