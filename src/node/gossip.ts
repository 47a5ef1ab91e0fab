// Gossip (riak_core_gossip's job): how cluster states travel between nodes.
// Rounds on the node's clock (a join through the seeds until this node is a
// member, the claimant's reclaim and expiry, one exchange with a random
// member, heartbeats to the quiet ones), pulls from a peer that routes by a
// newer ring, pushes to every member after an operator's change, and both
// ends of `gossip` and `join`. What a state is and how two merge is
// src/core/membership.ts; holding, persisting and publishing it is
// src/node/ring-state.ts.
import {
  type ClusterState,
  ClusterStateError,
  addMember,
  claimantOf,
  digest,
  expireDeparted,
  gossipTarget,
  hostPortProblem,
  markReplacing,
  maybeReclaim,
  mergeGossip,
  newMemberProblem,
} from '../core/membership.js';
import { DEFAULT_JOIN_RETRY_POLICY, JOIN_RETRY_START, type JoinRetryState, onJoinFailure, onJoinSuccess } from '../core/join-retry.js';
import { StateWireError, packState, unpackState } from '../core/state-wire.js';
import { tokenTableProblem } from '../core/tokens.js';
import { ANY_PEER, isTransportError, type Clock, type Timer, type Transport } from '../transport/types.js';
import { NodeError } from './errors.js';
import { type PeerReply, type PeerReplyBody, type PeerRequest, type PeerRequestBody, decodePeerReply } from './messages.js';
import type { NodeMetrics } from './metrics.js';
import type { RingState } from './ring-state.js';

/** Refused gossip entries remembered as logged at most (then forgotten at once: each is logged again at most once more). */
const MAX_REFUSED_LOGGED = 1_000;

export interface GossipConfig {
  /** A round this often (Dynamo: every second); also the exchange timeout and the heartbeat interval. */
  gossipIntervalMs: number;
  /** Timeout of a join, and of a push to members. */
  requestTimeoutMs: number;
  /** Join attempts the cluster refuses before this node gives up (onJoinRefused). */
  maxJoinRefusals: number;
  /** An unreachable seed: debug lines this long, then a warning at most once per joinWarnEveryMs (src/core/join-retry.ts). */
  joinQuietMs: number;
  joinWarnEveryMs: number;
  /** The claimant drops members that left this long ago (-1: never). */
  departedMemberExpiryMs: number;
}

export const DEFAULT_GOSSIP_CONFIG: GossipConfig = {
  gossipIntervalMs: 1_000,
  requestTimeoutMs: 5_000,
  maxJoinRefusals: 5,
  joinQuietMs: DEFAULT_JOIN_RETRY_POLICY.quietMs,
  joinWarnEveryMs: DEFAULT_JOIN_RETRY_POLICY.warnEveryMs,
  departedMemberExpiryMs: 24 * 60 * 60 * 1000,
};

/** What gossip uses of its node (never the node class). */
export interface GossipContext {
  readonly id: string;
  /** `host:port` this node is reached at (its member entry's). */
  readonly address: string;
  readonly zone?: string;
  /** Addresses to join through while not joined. */
  readonly seeds: readonly string[];
  /** The addresses to try at each join attempt (resolved afresh); default `seeds`. */
  readonly seedAddresses?: () => Promise<string[]>;
  /** Joining as the replacement of this member. */
  readonly replaces?: string;
  readonly clock: Clock;
  /** Uniform in [0, 1): the gossip target. */
  readonly random: () => number;
  readonly ring: RingState;
  readonly metrics: Pick<NodeMetrics, 'gossipRefused'>;
  log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void;
  /** A seed is not a member yet: the join goes to its address (`request` with ANY_PEER); `addressProblem` checks members' addresses. */
  readonly transport: Pick<Transport, 'request' | 'addressProblem'>;
  /** A typed request to a member, with the node's suspicion bookkeeping (gossip and ping are what phi measures). */
  peerRequest<T extends 'gossip' | 'ping'>(node: string, type: T, body: PeerRequestBody<T>, timeoutMs: number): Promise<PeerReply<T>>;
  /** When a member was last heard from (failure detector), undefined if never. */
  lastHeard(node: string): number | undefined;
  /** Run at the start of every round: makes this node's own entry carry its drain flag (src/node/drain.ts). */
  reconcileDrainFlag(): Promise<void>;
  /** Called once when maxJoinRefusals join attempts were refused. */
  onJoinRefused?(reason: string): void;
}

export class Gossip {
  private timer: Timer | null = null;
  private stopped = false;
  /** Join attempts refused so far (an unreachable seed does not count: it may still be starting). */
  private joinRefusals = 0;
  /** Unreachable-seed failures in a row, for their log level (src/core/join-retry.ts). */
  private joinRetry: JoinRetryState = JOIN_RETRY_START;
  /** Peers whose state is being fetched because they route by a newer ring (see pull). */
  private readonly pulling = new Set<string>();
  /** Refused gossip entries already logged (sender/member/version). */
  private readonly refusedLogged = new Set<string>();

  constructor(
    private readonly ctx: GossipContext,
    private readonly config: GossipConfig = DEFAULT_GOSSIP_CONFIG,
  ) {}

  /** Rounds from now on: the first at once, then every gossipIntervalMs after the previous one ended. */
  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  private get state(): ClusterState {
    return this.ctx.ring.current;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = this.ctx.clock.setTimer(delayMs, () => {
      void this.round().finally(() => this.schedule(this.config.gossipIntervalMs));
    });
  }

  /** One round; its failures are logged (an unreachable target quietly: the failure detector counts it). */
  private async round(): Promise<void> {
    try {
      if (!this.ctx.ring.joined) await this.tryJoinSeeds();
      await this.ctx.reconcileDrainFlag();
      const now = this.ctx.clock.now();
      // Each decided on the state as it is; recomputed only if a change got in first (ring-state.ts applies changes in turn).
      const seen = this.state;
      const reclaimed = maybeReclaim(seen, this.ctx.id, now);
      if (reclaimed) await this.ctx.ring.adopt((s) => (s === seen ? reclaimed : (maybeReclaim(s, this.ctx.id, now) ?? s)));
      const before = this.state;
      const expiryMs = this.config.departedMemberExpiryMs;
      const expired = this.ctx.ring.joined ? expireDeparted(before, this.ctx.id, now, expiryMs) : null;
      if (expired) {
        this.ctx.log('info', 'departed members expired from the member list', { members: Object.keys(before.members).filter((id) => expired.members[id] === undefined) });
        await this.ctx.ring.adopt((s) => (s === before ? expired : (expireDeparted(s, this.ctx.id, now, expiryMs) ?? s)));
      }
      const target = gossipTarget(this.state, this.ctx.id, (n) => Math.floor(this.ctx.random() * n));
      if (!target) return;
      this.heartbeats(target);
      await this.exchange(target, this.config.gossipIntervalMs);
    } catch (err) {
      if (!isTransportError(err)) this.ctx.log('warn', 'gossip round failed', { error: String(err) });
    }
  }

  /** A peer routes by a newer ring than this node's: fetch its state now instead of waiting for gossip (one fetch per peer at a time). */
  pull(node: string): void {
    if (this.pulling.has(node) || !this.state.members[node]) return;
    this.pulling.add(node);
    this.exchange(node, this.config.gossipIntervalMs)
      .catch(() => undefined)
      .finally(() => this.pulling.delete(node));
  }

  /**
   * Heartbeats for the failure detector: a 'ping' to every member (but the
   * gossip target) not heard from within the last gossip interval, so that
   * each live peer shows a sign of life about once per interval even when
   * idle, and a suspected peer is probed until it is back.
   */
  private heartbeats(gossipTarget: string): void {
    if (!this.ctx.ring.joined) return;
    const now = this.ctx.clock.now();
    for (const m of Object.values(this.state.members)) {
      if (m.id === this.ctx.id || m.id === gossipTarget || m.status === 'left') continue;
      const heard = this.ctx.lastHeard(m.id);
      if (heard !== undefined && now - heard < this.config.gossipIntervalMs) continue;
      this.ctx.peerRequest(m.id, 'ping', {}, this.config.gossipIntervalMs).catch(() => undefined);
    }
  }

  private async tryJoinSeeds(): Promise<void> {
    const seeds = this.ctx.seedAddresses ? await this.ctx.seedAddresses() : this.ctx.seeds;
    for (const seed of seeds) {
      if (seed === this.ctx.address) continue;
      try {
        await this.join(seed);
        this.joinRetry = onJoinSuccess();
        return;
      } catch (err) {
        const error = String((err as Error).message ?? err);
        if (isJoinRefusal(err)) {
          this.joinRefusals += 1;
          this.ctx.log('warn', 'the cluster refused this node', { seed, error, refusals: this.joinRefusals, maxRefusals: this.config.maxJoinRefusals });
          if (this.joinRefusals === this.config.maxJoinRefusals) {
            this.ctx.onJoinRefused?.(`seed ${seed} refused this node ${this.joinRefusals} times: ${error}`);
            return;
          }
        } else {
          // Nodes started together race each other: quiet at first, then warned about, rate-limited.
          const policy = { quietMs: this.config.joinQuietMs, warnEveryMs: this.config.joinWarnEveryMs };
          const failed = onJoinFailure(this.joinRetry, this.ctx.clock.now(), policy);
          this.joinRetry = failed.state;
          this.ctx.log(failed.level, 'join through seed failed; retrying', { seed, error, failingForMs: failed.failingForMs });
        }
      }
    }
  }

  /** Sends this node's state to every other member not yet left and waits (request timeout) for each to adopt it; unreachable ones are skipped. */
  async pushToMembers(): Promise<void> {
    const packed = packState(this.state);
    const peers = Object.values(this.state.members).filter((m) => m.id !== this.ctx.id && m.status !== 'left');
    await Promise.allSettled(peers.map((m) => this.exchange(m.id, this.config.requestTimeoutMs, packed)));
  }

  /** One gossip exchange: sends this node's state and adopts what the peer answers with, if it differs. */
  async exchange(node: string, timeoutMs: number, packed: unknown = packState(this.state)): Promise<void> {
    const reply = await this.ctx.peerRequest(node, 'gossip', { state: packed }, timeoutMs);
    if (!reply.state) return;
    const remote = unpackWireState(reply.state, this.addressProblem);
    this.checkCluster(remote);
    await this.adoptGossip(remote, node);
  }

  /** One gossip exchange with the claimant (or a gossip interval's wait when that is this node or none), then half an interval's wait. */
  async waitForClaimant(): Promise<void> {
    const claimant = claimantOf(this.state);
    if (claimant !== null && claimant !== this.ctx.id) await this.exchange(claimant, this.config.gossipIntervalMs).catch(() => undefined);
    await new Promise<void>((resolve) => this.ctx.clock.setTimer(this.config.gossipIntervalMs / 2, resolve));
  }

  /** Joins the cluster a seed belongs to (an admin action, or a round while not joined); this node's state is replaced by the cluster's. */
  async join(seed: string): Promise<void> {
    const body: PeerRequestBody<'join'> = {
      cluster: this.state.clusterName,
      member: { id: this.ctx.id, address: this.ctx.address, zone: this.ctx.zone },
      ...(this.ctx.replaces === undefined ? {} : { replaces: this.ctx.replaces }),
    };
    const reply = decodePeerReply('join', await this.ctx.transport.request({ id: ANY_PEER, address: seed }, 'join', body, this.config.requestTimeoutMs)) as unknown as {
      state: ClusterState;
    };
    if (reply.state.clusterName !== this.state.clusterName) {
      throw new NodeError('CLUSTER_MISMATCH', `seed ${seed} is in cluster '${reply.state.clusterName}'`);
    }
    const tokensProblem = tokenTableProblem(reply.state.tokens);
    if (tokensProblem !== null) throw new NodeError('BAD_REQUEST', `seed ${seed} sent a bad token table: ${tokensProblem}`);
    const admitted = unpackWireState(reply.state, this.addressProblem);
    const me = admitted.members[this.ctx.id];
    // (leaving: a node that lost its data while leaving rejoins where it was, to finish leaving)
    if (me === undefined || me.status === 'left' || me.address !== this.ctx.address || me.zone !== this.ctx.zone) {
      throw new NodeError('BAD_REQUEST', `seed ${seed} answered with a state that does not admit ${this.ctx.id} at ${this.ctx.address}`);
    }
    // Take the cluster's state wholesale: this node's own single-node ring
    // must not compete with the cluster's in a merge.
    await this.ctx.ring.replace(admitted);
    this.ctx.log('info', 'joined cluster', { seed, members: Object.keys(reply.state.members).length });
  }

  /** The `gossip` request: merges the sender's state, answers with this node's when they differ. */
  async onGossip(from: string, req: PeerRequest<'gossip'>): Promise<PeerReplyBody<'gossip'>> {
    // Until its join completes, this node's state is its own private
    // single-node cluster: merged into the cluster's (ring v1 ties go to
    // the higher claimant id) it would hand every partition to this node.
    if (!this.ctx.ring.joined) throw new NodeError('UNAVAILABLE', 'not joined yet');
    const remote = unpackWireState(req.state, this.addressProblem);
    this.checkCluster(remote);
    await this.adoptGossip(remote, from);
    return digest(this.state) === digest(remote) ? {} : { state: packState(this.state) };
  }

  /** The `join` request: admits the sender (marked as the replacement it names) and answers with the state as admitted. */
  async onJoin(from: string, req: PeerRequest<'join'>): Promise<PeerReplyBody<'join'>> {
    if (req.cluster !== this.state.clusterName) throw new NodeError('CLUSTER_MISMATCH', `this node is in cluster '${this.state.clusterName}'`);
    const member = req.member;
    // A peer speaks only for the node id it authenticated as.
    if (member.id !== from) throw new NodeError('BAD_REQUEST', `a peer authenticated as '${from}' may only join itself, not '${member.id}'`);
    const problem = newMemberProblem(member, this.addressProblem);
    if (problem !== null) throw new NodeError('BAD_REQUEST', `cannot admit: ${problem}`);
    let admitted!: ClusterState;
    try {
      await this.ctx.ring.adopt((s) => {
        admitted = addMember(s, member);
        // Admitted and marked as the replacement in one change: the claimant never sees it without the mark (and gives it no share of its own).
        // (A retried join after the claimant applied it, or a dead member that left meanwhile: admitted as is.)
        if (req.replaces !== undefined && admitted.members[req.replaces]?.status !== 'left') admitted = markReplacing(admitted, req.replaces, member.id);
        return admitted;
      });
    } catch (err) {
      if (err instanceof ClusterStateError) throw new NodeError('BAD_REQUEST', err.message);
      throw err;
    }
    this.ctx.log('info', 'member added', { member: member.id, address: member.address, ...(req.replaces === undefined ? {} : { replaces: req.replaces }) });
    // The state as admitted, not one adopted meanwhile: a reclaim in between
    // would hand the joiner a first ring where it already owns partitions,
    // and it could not tell what it is to receive (src/node/transfer.ts).
    return { state: admitted as unknown as PeerReplyBody<'join'>['state'] };
  }

  /** What an address is on this node's transport (members from the network are checked with it). */
  private get addressProblem(): (address: string) => string | null {
    return this.ctx.transport.addressProblem ?? hostPortProblem;
  }

  private checkCluster(remote: ClusterState): void {
    if (!remote || remote.clusterName !== this.state.clusterName) throw new NodeError('CLUSTER_MISMATCH', 'gossip from another cluster');
  }

  /** Merges a state `from` gossiped (it validated already), keeping this node's version of the entries `from` may not change (mergeGossip). */
  private async adoptGossip(remote: ClusterState, from: string): Promise<void> {
    await this.ctx.ring.adopt((local) => {
      const { state, refused } = mergeGossip(local, remote, this.ctx.id, from);
      if (refused.length > 0) {
        this.ctx.metrics.gossipRefused.inc(refused.length);
        for (const r of refused) {
          // Once per sender, member and version: the same state comes back every round until its author gossips it.
          const key = `${from}/${r.id}/${r.version}`;
          if (this.refusedLogged.has(key)) continue;
          if (this.refusedLogged.size >= MAX_REFUSED_LOGGED) this.refusedLogged.clear();
          this.refusedLogged.add(key);
          this.ctx.log('warn', 'gossiped member entry refused', { from, member: r.id, version: r.version, reason: r.reason });
        }
      }
      return state;
    });
  }
}

/** A gossiped cluster state (owners packed or plain); malformed input is the sender's error. */
function unpackWireState(wire: unknown, addressProblem: (address: string) => string | null): ClusterState {
  try {
    return unpackState(wire, addressProblem);
  } catch (err) {
    if (err instanceof StateWireError) throw new NodeError('BAD_REQUEST', err.message);
    throw err;
  }
}

/**
 * A join the cluster answered with a no that retrying cannot change: the seed
 * refused the connection (wrong cluster name, and with authentication a bad
 * secret: TransportError REFUSED), refused the member (duplicate id, invalid
 * fields: BAD_REQUEST), or is of another cluster.
 */
export function isJoinRefusal(err: unknown): boolean {
  if (isTransportError(err, 'REFUSED')) return true;
  if (isTransportError(err, 'REMOTE')) return err.remoteCode === 'BAD_REQUEST' || err.remoteCode === 'CLUSTER_MISMATCH';
  return err instanceof NodeError && err.code === 'CLUSTER_MISMATCH';
}
