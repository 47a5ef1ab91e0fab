// The node runtime: owns the engine, the transport and the clock, and feeds
// the pure protocol core (membership, ring, coordinators). Everything here is
// I/O plumbing; decisions live in src/core.
import { GetCoordinator, type GetEffect } from '../core/get-coordinator.js';
import {
  type BucketProps,
  type ClusterState,
  ClusterStateError,
  BucketPropsError,
  addMember,
  bucketProps,
  createCluster,
  digest,
  gossipTarget,
  markLeaving,
  maybeReclaim,
  merge as mergeStates,
  setBucketProps,
  zonesOf,
} from '../core/membership.js';
import { PutCoordinator, type PutEffect } from '../core/put-coordinator.js';
import { partitionOf, preferenceList, ownerCounts } from '../core/ring.js';
import { EngineError, type Engine } from '../engine/types.js';
import { decodeRecord } from '../engine/pure/codec.js';
import { ANY_PEER, isTransportError, type Clock, type PeerRef, type Timer, type Transport } from '../transport/types.js';
import { NodeError, nodeErrorFrom } from './errors.js';
import { NodeMetrics } from './metrics.js';
import { reconcile, sameBytes } from './reconcile.js';

export interface NodeConfig {
  /** Gossip with one random peer this often (Dynamo: every second). */
  gossipIntervalMs: number;
  /** Default deadline of a client request. */
  requestTimeoutMs: number;
  /** After answering a read, wait this long for late replies before read repair. */
  readRepairWindowMs: number;
  /** A peer that failed to answer is tried last for this long. */
  suspectForMs: number;
}

export const DEFAULT_NODE_CONFIG: NodeConfig = {
  gossipIntervalMs: 1_000,
  requestTimeoutMs: 5_000,
  readRepairWindowMs: 100,
  suspectForMs: 2_000,
};

export interface NodeOptions {
  id: string;
  /** `host:port` peers and clients reach this node at. */
  address: string;
  zone?: string;
  clusterName: string;
  /** log2 Q, used only when this node creates a new cluster state. */
  partitionBits: number;
  /** Addresses to join through when this node is alone. */
  seeds: string[];
  engine: Engine;
  transport: Transport;
  clock: Clock;
  /** Uniform in [0, 1); seeded in the simulator. */
  random: () => number;
  config?: Partial<NodeConfig>;
  metrics?: NodeMetrics;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export interface RequestOptions {
  n?: number;
  r?: number;
  w?: number;
  dw?: number;
  timeoutMs?: number;
}

export interface GetResult {
  /** The reconciled record (null: no replica has the key). */
  record: Buffer | null;
  /** Replicas that answered before the reply. */
  answered: number;
}

export interface PutResult {
  record: Buffer;
  acks: number;
}

const STATE_META = 'cluster.state';

interface Quorum {
  n: number;
  r: number;
  w: number;
  dw: number;
  mode: BucketProps['mode'];
  timeoutMs: number;
}

export class RingkvNode {
  readonly id: string;
  readonly metrics: NodeMetrics;
  private state: ClusterState;
  private readonly config: NodeConfig;
  private gossipTimer: Timer | null = null;
  private readonly suspectUntil = new Map<string, number>();
  private readonly lastHeard = new Map<string, number>();
  private stopped = false;
  private joined: boolean;
  private readonly services = new Map<string, (from: string, type: string, body: unknown) => Promise<unknown>>();

  private constructor(
    private readonly opts: NodeOptions,
    state: ClusterState,
  ) {
    this.id = opts.id;
    this.state = state;
    this.config = { ...DEFAULT_NODE_CONFIG, ...opts.config };
    this.metrics = opts.metrics ?? new NodeMetrics(opts.id);
    this.joined = Object.keys(state.members).length > 1 || opts.seeds.every((s) => s === opts.address);
    this.observeState();
  }

  /** Loads (or creates) the cluster state, starts serving peers and gossiping. */
  static async start(opts: NodeOptions): Promise<RingkvNode> {
    const saved = await opts.engine.metaGet(STATE_META);
    let state: ClusterState;
    if (saved) {
      state = JSON.parse(saved.toString('utf8')) as ClusterState;
      if (state.clusterName !== opts.clusterName) {
        throw new NodeError('CLUSTER_MISMATCH', `data directory belongs to cluster '${state.clusterName}', not '${opts.clusterName}'`);
      }
    } else {
      state = createCluster({ id: opts.id, address: opts.address, zone: opts.zone }, opts.partitionBits, opts.clusterName);
      await opts.engine.metaPut(STATE_META, Buffer.from(JSON.stringify(state)));
    }
    const node = new RingkvNode(opts, state);
    opts.transport.onRequest((from, type, body) => node.onPeerRequest(from, type, body));
    node.scheduleGossip(0);
    return node;
  }

  /** Stops timers and peer traffic; the owner closes the engine. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.gossipTimer?.cancel();
    await this.opts.transport.close();
  }

  get clusterState(): ClusterState {
    return this.state;
  }

  get hasJoined(): boolean {
    return this.joined;
  }

  // ---------------------------------------------------------------------------
  // Client operations

  async get(bucket: Buffer, key: Buffer, req: RequestOptions = {}): Promise<GetResult> {
    const started = this.opts.clock.now();
    const q = this.quorum(bucket, req);
    try {
      const result = await this.coordinateGet(bucket, key, q);
      this.metrics.requests.inc({ op: 'get', outcome: result.record ? 'found' : 'not_found' });
      if (result.record) this.metrics.siblings.observe(decodeRecord(result.record).siblings.length);
      return result;
    } catch (err) {
      this.metrics.requests.inc({ op: 'get', outcome: errorCode(err) });
      throw err;
    } finally {
      this.metrics.latency.observe({ op: 'get' }, (this.opts.clock.now() - started) / 1000);
    }
  }

  /** A put (value) or delete (value null) with the client's context. */
  async put(bucket: Buffer, key: Buffer, context: Buffer | null, value: Buffer | null, req: RequestOptions = {}): Promise<PutResult> {
    const op = value === null ? 'delete' : 'put';
    const started = this.opts.clock.now();
    const q = this.quorum(bucket, req);
    try {
      const primaries = this.primaries(bucket, key, q.n);
      const result = primaries.includes(this.id)
        ? await this.coordinatePut(bucket, key, context, value, q, primaries)
        : await this.forwardPut(bucket, key, context, value, q, primaries);
      this.metrics.requests.inc({ op, outcome: 'ok' });
      return result;
    } catch (err) {
      this.metrics.requests.inc({ op, outcome: errorCode(err) });
      throw err;
    } finally {
      this.metrics.latency.observe({ op }, (this.opts.clock.now() - started) / 1000);
    }
  }

  bucketProps(bucket: string): BucketProps {
    return bucketProps(this.state, bucket);
  }

  async setBucketProps(bucket: string, change: Partial<BucketProps>): Promise<BucketProps> {
    try {
      await this.adopt(setBucketProps(this.state, bucket, change));
    } catch (err) {
      if (err instanceof BucketPropsError) throw new NodeError('INVALID_BUCKET_PROPS', err.message, { fields: err.fields });
      if (err instanceof ClusterStateError) throw new NodeError('BAD_REQUEST', err.message);
      throw err;
    }
    return this.bucketProps(bucket);
  }

  /** Joins the cluster a seed belongs to (an admin action); this node's ring is replaced by the cluster's. */
  async join(seed: string): Promise<void> {
    const reply = (await this.opts.transport.request(
      { id: ANY_PEER, address: seed },
      'join',
      { cluster: this.state.clusterName, member: { id: this.id, address: this.opts.address, zone: this.opts.zone } },
      this.config.requestTimeoutMs,
    )) as { state: ClusterState };
    if (reply.state.clusterName !== this.state.clusterName) {
      throw new NodeError('CLUSTER_MISMATCH', `seed ${seed} is in cluster '${reply.state.clusterName}'`);
    }
    // Take the cluster's state wholesale: this node's own single-node ring
    // must not compete with the cluster's in a merge.
    this.state = reply.state;
    await this.persist();
    this.joined = true;
    this.observeState();
    this.log('info', 'joined cluster', { seed, members: Object.keys(reply.state.members).length });
  }

  /** Starts this node's departure; its partitions move to the others. */
  async leave(nodeId = this.id): Promise<void> {
    try {
      await this.adopt(markLeaving(this.state, nodeId));
    } catch (err) {
      if (err instanceof ClusterStateError) throw new NodeError('BAD_REQUEST', err.message);
      throw err;
    }
  }

  status(): Record<string, unknown> {
    const now = this.opts.clock.now();
    const owned = ownerCounts(this.state.ring.owners);
    return {
      node: this.id,
      address: this.opts.address,
      cluster: this.state.clusterName,
      joined: this.joined,
      ring: { version: this.state.ring.version, claimant: this.state.ring.claimant, partitions: this.state.ring.owners.length, digest: digest(this.state) },
      members: Object.values(this.state.members).map((m) => ({
        id: m.id,
        address: m.address,
        zone: m.zone ?? null,
        status: m.status,
        partitions: owned.get(m.id) ?? 0,
        health: m.id === this.id ? 'self' : (this.suspectUntil.get(m.id) ?? 0) > now ? 'suspect' : this.lastHeard.has(m.id) ? 'up' : 'unknown',
        lastHeardMsAgo: m.id === this.id ? 0 : this.lastHeard.has(m.id) ? now - this.lastHeard.get(m.id)! : null,
      })),
    };
  }

  // ---------------------------------------------------------------------------
  // Coordination

  private quorum(bucket: Buffer, req: RequestOptions): Quorum {
    const props = this.bucketProps(bucket.toString('utf8'));
    const requested = { n: req.n ?? props.n, r: req.r ?? props.r, w: req.w ?? props.w, dw: req.dw ?? props.dw };
    for (const [name, v] of Object.entries(requested)) {
      if (!Number.isInteger(v) || v < (name === 'dw' ? 0 : 1) || v > 16) throw new NodeError('BAD_REQUEST', `${name} must be an integer in ${name === 'dw' ? 0 : 1}..16`);
    }
    if (requested.r > requested.n || requested.w > requested.n || requested.dw > requested.w) {
      throw new NodeError('BAD_REQUEST', `need r <= n, w <= n and dw <= w (got n=${requested.n} r=${requested.r} w=${requested.w} dw=${requested.dw})`);
    }
    // A cluster smaller than n keeps one replica per node: n, r, w and dw
    // shrink with it (a configuration limit, not a failure — a stopped node
    // is still a member and still counts).
    const nodes = new Set(this.state.ring.owners).size;
    const n = Math.min(requested.n, nodes);
    const timeoutMs = req.timeoutMs ?? this.config.requestTimeoutMs;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > 600_000) throw new NodeError('BAD_REQUEST', 'timeout must be in 1..600000 ms');
    return { n, r: Math.min(requested.r, n), w: Math.min(requested.w, n), dw: Math.min(requested.dw, n), mode: props.mode, timeoutMs };
  }

  private primaries(bucket: Buffer, key: Buffer, n: number): string[] {
    // Refuse an oversize key here: otherwise every replica refuses it and the read looks like a quorum failure.
    if (key.length > this.opts.engine.limits.maxKeyBytes) {
      throw new NodeError('KEY_TOO_LARGE', `key is longer than ${this.opts.engine.limits.maxKeyBytes} bytes`);
    }
    let position: bigint;
    try {
      position = this.opts.engine.hashKey(bucket, key);
    } catch (err) {
      throw asNodeError(err);
    }
    const ring = this.state.ring;
    return preferenceList(ring, partitionOf(ring, position), n, zonesOf(this.state)).primaries;
  }

  private coordinateGet(bucket: Buffer, key: Buffer, q: Quorum): Promise<GetResult> {
    const replicas = this.primaries(bucket, key, q.n);
    const fsm = new GetCoordinator(replicas, q.r, (records) => reconcile(records, q.mode), sameBytes);
    return new Promise<GetResult>((resolve, reject) => {
      const timers: Timer[] = [];
      const apply = (effects: GetEffect[]): void => {
        for (const e of effects) {
          if (e.kind === 'reply') {
            if (e.ok) resolve({ record: e.record ? Buffer.from(e.record) : null, answered: e.answered });
            else reject(new NodeError(e.code, `read quorum not reached: ${e.answered} of r=${e.needed} replicas answered`, { answered: e.answered, needed: e.needed }));
            timers.push(this.opts.clock.setTimer(this.config.readRepairWindowMs, () => apply(fsm.onLateWindowEnd())));
          } else if (e.kind === 'repair') {
            this.metrics.readRepairs.inc();
            void this.sendMerge(e.node, bucket, key, Buffer.from(e.record), q.mode, false, q.timeoutMs).catch(() => undefined);
          } else {
            timers.forEach((t) => t.cancel());
          }
        }
      };
      timers.push(this.opts.clock.setTimer(q.timeoutMs, () => apply(fsm.onDeadline())));
      for (const node of replicas) {
        this.fetch(node, bucket, key, q.timeoutMs).then(
          (record) => apply(fsm.onReply(node, record)),
          (err: unknown) => apply(fsm.onFailure(node, errorCode(err))),
        );
      }
    });
  }

  /** One replica's record; a record that does not decode counts as a failed replica. */
  private async fetch(node: string, bucket: Buffer, key: Buffer, timeoutMs: number): Promise<Buffer | null> {
    const record =
      node === this.id
        ? await this.opts.engine.get(bucket, key)
        : ((await this.request(node, 'kv.get', { b: bucket, k: key }, timeoutMs)) as { record: Buffer | null }).record;
    if (record) decodeRecord(record);
    return record ? Buffer.from(record) : null;
  }

  private async coordinatePut(
    bucket: Buffer,
    key: Buffer,
    context: Buffer | null,
    value: Buffer | null,
    q: Quorum,
    primaries: string[],
  ): Promise<PutResult> {
    let record: Buffer;
    try {
      record = await this.opts.engine.coordinate({ bucket, key, context, value, now: this.opts.clock.now(), mode: q.mode, durable: q.dw > 0 });
    } catch (err) {
      throw asNodeError(err);
    }
    const others = primaries.filter((p) => p !== this.id);
    const fsm = new PutCoordinator(others, q.w, q.dw, q.dw > 0);
    return new Promise<PutResult>((resolve, reject) => {
      let deadline: Timer | null = null;
      const apply = (effects: PutEffect[]): void => {
        for (const e of effects) {
          if (e.kind === 'send') {
            this.sendMerge(e.node, bucket, key, record, q.mode, q.dw > 0, q.timeoutMs).then(
              (durable) => apply(fsm.onAck(e.node, durable)),
              () => apply(fsm.onFailure(e.node)),
            );
          } else if (e.kind === 'reply') {
            if (e.ok) resolve({ record, acks: e.acks });
            else reject(new NodeError(e.code, `write quorum not reached: ${e.acks} of w=${e.needed} acks, ${e.durableAcks} of dw=${e.durableNeeded} durable`, { acks: e.acks, needed: e.needed }));
          } else {
            deadline?.cancel();
          }
        }
      };
      deadline = this.opts.clock.setTimer(q.timeoutMs, () => apply(fsm.onDeadline()));
      apply(fsm.start());
    });
  }

  /** A non-replica hands the write to the first primary that answers (Dynamo §5). */
  private async forwardPut(
    bucket: Buffer,
    key: Buffer,
    context: Buffer | null,
    value: Buffer | null,
    q: Quorum,
    primaries: string[],
  ): Promise<PutResult> {
    const now = this.opts.clock.now();
    const ordered = [...primaries].sort((a, b) => Number(this.isSuspect(a, now)) - Number(this.isSuspect(b, now)));
    const tried: string[] = [];
    for (const node of ordered) {
      tried.push(node);
      try {
        this.metrics.forwarded.inc({ op: value === null ? 'delete' : 'put' });
        const reply = (await this.request(node, 'kv.put', { b: bucket, k: key, context, value, n: q.n, w: q.w, dw: q.dw, timeoutMs: q.timeoutMs }, q.timeoutMs)) as { record: Buffer; acks: number };
        return { record: Buffer.from(reply.record), acks: reply.acks };
      } catch (err) {
        if (isTransportError(err, 'REMOTE')) throw nodeErrorFrom(err.remoteCode, err.message);
        // Unreachable, timed out or overloaded: try the next primary.
      }
    }
    throw new NodeError('UNAVAILABLE', `no preference-list node could coordinate the write (tried ${tried.join(', ')})`);
  }

  /** Sends a record to a replica to merge; resolves with whether it was flushed. */
  private async sendMerge(node: string, bucket: Buffer, key: Buffer, record: Buffer, mode: BucketProps['mode'], durable: boolean, timeoutMs: number): Promise<boolean> {
    if (node === this.id) {
      await this.opts.engine.merge({ bucket, key, record, mode, durable });
      return durable;
    }
    const reply = (await this.request(node, 'kv.merge', { b: bucket, k: key, record, lww: mode === 'lww', durable }, timeoutMs)) as { durable: boolean };
    return reply.durable === true;
  }

  // ---------------------------------------------------------------------------
  // Peers

  private peer(node: string): PeerRef {
    const member = this.state.members[node];
    if (!member) throw new NodeError('INTERNAL', `unknown member ${node}`);
    return { id: node, address: member.address };
  }

  private async request(node: string, type: string, body: unknown, timeoutMs: number): Promise<unknown> {
    try {
      const reply = await this.opts.transport.request(this.peer(node), type, body, timeoutMs);
      this.lastHeard.set(node, this.opts.clock.now());
      this.suspectUntil.delete(node);
      return reply;
    } catch (err) {
      if (isTransportError(err) && err.code !== 'REMOTE') this.suspectUntil.set(node, this.opts.clock.now() + this.config.suspectForMs);
      else this.lastHeard.set(node, this.opts.clock.now());
      throw err;
    }
  }

  private isSuspect(node: string, now: number): boolean {
    return (this.suspectUntil.get(node) ?? 0) > now;
  }

  private async onPeerRequest(from: string, type: string, body: unknown): Promise<unknown> {
    if (this.stopped) throw new NodeError('UNAVAILABLE', 'node is stopping');
    if (this.state.members[from]) this.lastHeard.set(from, this.opts.clock.now());
    const b = body as Record<string, unknown>;
    switch (type) {
      case 'kv.get':
        return { record: await this.opts.engine.get(buf(b.b), buf(b.k)) };
      case 'kv.merge': {
        const durable = b.durable === true;
        await this.opts.engine.merge({ bucket: buf(b.b), key: buf(b.k), record: buf(b.record), mode: b.lww === true ? 'lww' : 'siblings', durable });
        return { durable };
      }
      case 'kv.put': {
        const bucket = buf(b.b);
        const q = this.quorum(bucket, { n: num(b.n), w: num(b.w), dw: num(b.dw), timeoutMs: num(b.timeoutMs) });
        const primaries = this.primaries(bucket, buf(b.k), q.n);
        // Whoever was asked coordinates, even if its ring disagrees for a moment.
        const coordinators = primaries.includes(this.id) ? primaries : [this.id, ...primaries.slice(0, q.n - 1)];
        const result = await this.coordinatePut(bucket, buf(b.k), optBuf(b.context), optBuf(b.value), q, coordinators);
        return { record: result.record, acks: result.acks };
      }
      case 'gossip': {
        // Until its join completes, this node's state is its own private
        // single-node cluster: merged into the cluster's (ring v1 ties go to
        // the higher claimant id) it would hand every partition to this node.
        if (!this.joined) throw new NodeError('UNAVAILABLE', 'not joined yet');
        const remote = b.state as ClusterState;
        this.checkCluster(remote);
        await this.adopt(mergeStates(this.state, remote));
        return digest(this.state) === digest(remote) ? {} : { state: this.state };
      }
      case 'join': {
        if (b.cluster !== this.state.clusterName) throw new NodeError('CLUSTER_MISMATCH', `this node is in cluster '${this.state.clusterName}'`);
        const member = b.member as { id: string; address: string; zone?: string };
        try {
          await this.adopt(addMember(this.state, member));
        } catch (err) {
          if (err instanceof ClusterStateError) throw new NodeError('BAD_REQUEST', err.message);
          throw err;
        }
        this.log('info', 'member added', { member: member.id, address: member.address });
        return { state: this.state };
      }
      default: {
        const service = this.services.get(type.slice(0, type.indexOf('.') + 1));
        if (service) return service(from, type, body);
        throw new NodeError('BAD_REQUEST', `unknown peer request type '${type}'`);
      }
    }
  }

  // ---------------------------------------------------------------------------
  // For background services (anti-entropy, handoff, transfers): they run
  // beside the node, reach peers through it and share its view of the ring.

  /** Routes peer requests whose type starts with `prefix` (e.g. 'aae.') to `handler`. */
  registerService(prefix: string, handler: (from: string, type: string, body: unknown) => Promise<unknown>): void {
    if (!prefix.endsWith('.') || ['kv.', 'gossip.', 'join.'].includes(prefix)) throw new Error(`bad service prefix '${prefix}'`);
    this.services.set(prefix, handler);
  }

  /** A request to a member, with the node's suspicion bookkeeping. */
  peerRequest(node: string, type: string, body: unknown, timeoutMs: number): Promise<unknown> {
    return this.request(node, type, body, timeoutMs);
  }

  get engine(): Engine {
    return this.opts.engine;
  }

  get clock(): Clock {
    return this.opts.clock;
  }

  get random(): () => number {
    return this.opts.random;
  }

  /** The preference list of a partition for `n` replicas (primaries, then fallbacks). */
  preferenceListOf(partition: number, n: number): { primaries: string[]; fallbacks: string[] } {
    return preferenceList(this.state.ring, partition, n, zonesOf(this.state));
  }

  /** Whether a member is currently suspected (failed to answer recently). */
  isSuspected(node: string): boolean {
    return this.isSuspect(node, this.opts.clock.now());
  }

  private checkCluster(remote: ClusterState): void {
    if (!remote || remote.clusterName !== this.state.clusterName) throw new NodeError('CLUSTER_MISMATCH', 'gossip from another cluster');
  }

  // ---------------------------------------------------------------------------
  // Gossip and membership

  private scheduleGossip(delayMs: number): void {
    if (this.stopped) return;
    this.gossipTimer = this.opts.clock.setTimer(delayMs, () => {
      void this.gossipRound().finally(() => this.scheduleGossip(this.config.gossipIntervalMs));
    });
  }

  private async gossipRound(): Promise<void> {
    try {
      if (!this.joined) await this.tryJoinSeeds();
      const reclaimed = maybeReclaim(this.state, this.id);
      if (reclaimed) await this.adopt(reclaimed);
      const target = gossipTarget(this.state, this.id, (n) => Math.floor(this.opts.random() * n));
      if (!target) return;
      const reply = (await this.request(target, 'gossip', { state: this.state }, this.config.gossipIntervalMs)) as { state?: ClusterState };
      if (reply.state) {
        this.checkCluster(reply.state);
        await this.adopt(mergeStates(this.state, reply.state));
      }
    } catch (err) {
      if (!isTransportError(err)) this.log('warn', 'gossip round failed', { error: String(err) });
    }
  }

  private async tryJoinSeeds(): Promise<void> {
    for (const seed of this.opts.seeds) {
      if (seed === this.opts.address) continue;
      try {
        await this.join(seed);
        return;
      } catch (err) {
        this.log('warn', 'join through seed failed; retrying', { seed, error: String((err as Error).message ?? err) });
      }
    }
  }

  /** Makes a new state current (persisted first, so a restart keeps it). */
  private async adopt(next: ClusterState): Promise<void> {
    if (next === this.state || digest(next) === digest(this.state)) return;
    this.state = next;
    await this.persist();
    this.observeState();
  }

  private async persist(): Promise<void> {
    await this.opts.engine.metaPut(STATE_META, Buffer.from(JSON.stringify(this.state)));
  }

  private observeState(): void {
    this.metrics.ringVersion.set(this.state.ring.version);
    for (const status of ['valid', 'leaving', 'left'] as const) {
      this.metrics.members.set({ status }, Object.values(this.state.members).filter((m) => m.status === status).length);
    }
  }

  private log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void {
    this.opts.log?.(level, msg, { node: this.id, ...fields });
  }
}

function buf(v: unknown): Buffer {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new NodeError('BAD_REQUEST', 'expected binary field');
}

function optBuf(v: unknown): Buffer | null {
  return v === null || v === undefined ? null : buf(v);
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

function asNodeError(err: unknown): Error {
  if (err instanceof EngineError) return nodeErrorFrom(err.code, err.message);
  return err as Error;
}

function errorCode(err: unknown): string {
  if (err instanceof NodeError || err instanceof EngineError) return err.code;
  if (isTransportError(err)) return err.code;
  return 'INTERNAL';
}
