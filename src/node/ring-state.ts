// Ring state (riak_core_ring_manager's job): holds this node's cluster
// state — members, ring, bucket properties, tokens — persists every change
// before anyone sees it, and tells the ring's listeners. How states travel
// between nodes (rounds, exchanges, joins) is src/node/gossip.ts.
//
// Changes are applied one at a time, in the order asked: each `adopt` gets
// the state as the changes before it left it, so two changes in flight (two
// peers gossiping at once) never overwrite each other; the new state is on
// disk before it is current, so a restart never finds this node (or a
// listener that saved what it derived from a ring: the transfer plan)
// ahead of what it persisted.
import { type ClusterState, createCluster, digest } from '../core/membership.js';
import { invariant } from '../core/types.js';
import type { Engine } from '../engine/types.js';
import { NodeError } from './errors.js';
import type { NodeMetrics } from './metrics.js';

/** Engine metadata name the state is persisted under. */
export const STATE_META = 'cluster.state';

export interface RingStateContext {
  /** Where the state is persisted (durable when metaPut resolves). */
  readonly engine: Pick<Engine, 'metaGet' | 'metaPut'>;
  readonly metrics: Pick<NodeMetrics, 'ringVersion' | 'members'>;
  log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void;
}

/** What a node that has no persisted state starts from: its own single-node cluster. */
export interface FreshState {
  id: string;
  address: string;
  zone?: string;
  partitionBits: number;
  clusterName: string;
}

export class RingState {
  private state: ClusterState;
  private joinedFlag: boolean;
  private readonly listeners: Array<() => void> = [];
  /** The tail of the change queue (a failed change does not stop the next). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly ctx: RingStateContext,
    state: ClusterState,
    joined: boolean,
  ) {
    this.state = state;
    this.joinedFlag = joined;
    this.observe();
  }

  /**
   * The persisted state of `fresh.clusterName`, or (first start) a new
   * single-node cluster, persisted before this returns. Another cluster's
   * data directory is refused. `joined(state)` tells whether the state is the
   * cluster's already (not a private one waiting for a join).
   */
  static async load(ctx: RingStateContext, fresh: FreshState, joined: (state: ClusterState) => boolean): Promise<RingState> {
    const saved = await ctx.engine.metaGet(STATE_META);
    let state: ClusterState;
    if (saved) {
      state = JSON.parse(saved.toString('utf8')) as ClusterState;
      if (state.clusterName !== fresh.clusterName) {
        throw new NodeError('CLUSTER_MISMATCH', `data directory belongs to cluster '${state.clusterName}', not '${fresh.clusterName}'`);
      }
    } else {
      state = createCluster({ id: fresh.id, address: fresh.address, zone: fresh.zone }, fresh.partitionBits, fresh.clusterName);
      await ctx.engine.metaPut(STATE_META, Buffer.from(JSON.stringify(state)));
    }
    return new RingState(ctx, state, joined(state));
  }

  /** The current state (persisted). */
  get current(): ClusterState {
    return this.state;
  }

  /** Whether the state is the cluster's: false while this node holds its own private single-node ring, before its join. */
  get joined(): boolean {
    return this.joinedFlag;
  }

  /**
   * Calls `listener` synchronously every time a different ring becomes
   * current, before any request can see it (the transfer service plans at
   * once). A listener that throws is logged; the others are still called.
   */
  onRingChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /**
   * Applies `change` to the state as the changes before it left it, and makes
   * the result current once it is persisted; resolves with the state current
   * then. A result with the same digest changes nothing (not persisted, no
   * listener told). `change` may throw (a refused change: nothing happens).
   * Never another cluster's state, never an older ring (invariants).
   */
  adopt(change: (current: ClusterState) => ClusterState): Promise<ClusterState> {
    return this.enqueue(async () => {
      const before = this.state;
      const next = change(before);
      if (next === before || digest(next) === digest(before)) return before;
      invariant(next.clusterName === before.clusterName, () => `adopting the state of cluster '${next.clusterName}' in cluster '${before.clusterName}'`);
      invariant(next.ring.version >= before.ring.version, () => `adopting ring v${next.ring.version} over v${before.ring.version}`);
      await this.persist(next);
      this.publish(next, next.ring !== before.ring);
      return next;
    });
  }

  /**
   * Takes the cluster's state wholesale (a join: this node's private
   * single-node ring must not compete with the cluster's in a merge), after
   * the changes already asked; from then on the state is the cluster's.
   */
  replace(admitted: ClusterState): Promise<void> {
    return this.enqueue(async () => {
      invariant(admitted.clusterName === this.state.clusterName, () => `joining cluster '${admitted.clusterName}' from cluster '${this.state.clusterName}'`);
      await this.persist(admitted);
      this.joinedFlag = true;
      this.publish(admitted, true);
    });
  }

  private enqueue<T>(step: () => Promise<T>): Promise<T> {
    const run = this.queue.then(step);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private persist(state: ClusterState): Promise<void> {
    return this.ctx.engine.metaPut(STATE_META, Buffer.from(JSON.stringify(state)));
  }

  /** Makes a persisted state current: listeners first (synchronously, before any request sees it), then the metrics. */
  private publish(next: ClusterState, ringChanged: boolean): void {
    this.state = next;
    if (ringChanged) {
      for (const listener of this.listeners) {
        try {
          listener();
        } catch (err) {
          this.ctx.log('error', 'ring change listener failed', { error: String(err) });
        }
      }
    }
    this.observe();
  }

  private observe(): void {
    this.ctx.metrics.ringVersion.set(this.state.ring.version);
    for (const status of ['valid', 'leaving', 'left'] as const) {
      this.ctx.metrics.members.set({ status }, Object.values(this.state.members).filter((m) => m.status === status).length);
    }
  }
}
