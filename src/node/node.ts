// The node runtime: owns the engine, the transport and the clock, and feeds
// the pure protocol core (membership, ring, coordinators). Everything here is
// I/O plumbing; decisions live in src/core.
import type { PhiDistribution } from '../core/failure-detector.js';
import {
  type BucketProps,
  type ClusterState,
  ClusterStateError,
  BucketPropsError,
  bucketProps,
  digest,
  forgetStep,
  hostPortProblem,
  markLeaving,
  markLeft,
  markReplacing,
  removeMember,
  setBucketProps,
  setDraining,
  zonesOf,
} from '../core/membership.js';
import { type Health, coordinatingList, forwardedWriteStep } from '../core/apl.js';
import { type Quorum, QuorumError, quorum } from '../core/quorum.js';
import { distinctOwnerCount, partitionOf, preferenceList, ownerCounts, type PreferenceList } from '../core/ring.js';
import { EngineError, type Engine } from '../engine/types.js';
import { type WriteAttributes, decodeRecord } from '../record/index.js';
import type { TokenTable } from '../core/tokens.js';
import type { Clock, Transport } from '../transport/types.js';
import type { NodeStatus } from '../api-types.js';
import type { ClientOperations, GetResult, RequestOptions, ServiceContext } from './context.js';
import { invariant } from '../core/types.js';
import { DEFAULT_JOIN_RETRY_POLICY } from '../core/join-retry.js';
import { NodeError, errorCode, peerErrorFrom } from './errors.js';
import { AntiEntropyService, type AntiEntropyConfig } from './anti-entropy.js';
import { HandoffService, type HintStore } from './handoff.js';
import { RepairService } from './repair.js';
import { SetStore, type SetStoreOptions } from './sets.js';
import { ListingService, type ListingOptions } from './listing.js';
import { RecordMerger } from './restore.js';
import { TransferService, type TransferOptions } from './transfer.js';
import {
  type NodeMessageType,
  type PeerHandler,
  type PeerMessageType,
  type PeerReply,
  type PeerRequestBody,
  type ServiceHandlers,
  type ServiceMessageType,
  decodePeerReply,
  decodePeerRequest,
  isPeerMessageType,
  isServiceMessageType,
} from './messages.js';
import { NodeMetrics, registerServiceMetrics } from './metrics.js';
import { Peers } from './peers.js';
import type { ReapFloors } from './reaper.js';
import { ReapDriver } from './reap-driver.js';
import { Replica, asNodeError } from './replica.js';
import { GetDriver } from './get-driver.js';
import { PutDriver, type PutResult } from './put-driver.js';
import { RingState } from './ring-state.js';
import { Gossip } from './gossip.js';

export interface NodeConfig {
  /** Gossip with one random peer this often (Dynamo: every second). */
  gossipIntervalMs: number;
  /** Default deadline of a client request. */
  requestTimeoutMs: number;
  /** After answering a read, wait this long for late replies before read repair. */
  readRepairWindowMs: number;
  /**
   * A read of a bucket with read_fanout 'quorum' that has not got R answers
   * this long after it began asks one more replica (Cassandra's speculative
   * retry; docs/cluster.md "Read fan-out"); 0 turns it off. Default 100 ms.
   */
  readRetryAfterMs: number;
  /** Phi accrual detector (src/core/failure-detector.ts): suspect above this phi. */
  phiThreshold: number;
  phiMinStdDeviationMs: number;
  phiAcceptablePauseMs: number;
  phiWindowSize: number;
  phiDistribution: PhiDistribution;
  /**
   * A stall of this node's own event loop longer than this is its own pause,
   * not its peers' silence: no peer is convicted for it (Cassandra's
   * MAX_LOCAL_PAUSE_IN_MS; see failure-detector.ts). Default 2000 ms.
   */
  phiMaxLocalPauseMs: number;
  /** Hinted handoff: time between delivery rounds. */
  handoffIntervalMs: number;
  /** Hinted handoff: hints per target per round at most. */
  handoffBatch: number;
  /** Sloppy quorum: further attempts per replica of a write (on fallbacks) after a failed one. */
  writeRetries: number;
  /**
   * Tombstone reaping (docs/cluster.md "Deletes and tombstones"): a delete
   * acknowledged directly by all N primaries is reaped this long after it
   * (Riak's delete_mode, default 3000 ms); -1 keeps tombstones forever.
   */
  reapDelayMs: number;
  /** How long a node remembers a key it reaped (counter floor, resurrection guard; src/node/reaper.ts). Default 24 h. */
  reapFloorTtlMs: number;
  /**
   * Reaped keys remembered at most (default 100k); while full, no new reaps
   * start (tombstones are kept, never dropped early). Sustained reaps per
   * node are thus bounded by reapFloorMax / reapFloorTtlMs (~1.2/s by
   * default); each reap rewrites 1/256 of the floors in engine metadata.
   */
  reapFloorMax: number;
  /** Join attempts the cluster refuses (wrong cluster, duplicate id, bad credentials) before this node gives up (default 5; see NodeOptions.onJoinRefused). */
  maxJoinRefusals: number;
  /** An unreachable seed is logged at debug level this long, then warned about at most once per joinWarnEveryMs (src/core/join-retry.ts). */
  joinQuietMs: number;
  joinWarnEveryMs: number;
  /** Members that left are dropped from the member list this long after they left (the claimant's clock; default 24 h); -1 keeps them. */
  departedMemberExpiryMs: number;
}

export const DEFAULT_NODE_CONFIG: NodeConfig = {
  gossipIntervalMs: 1_000,
  maxJoinRefusals: 5,
  requestTimeoutMs: 5_000,
  readRepairWindowMs: 100,
  readRetryAfterMs: 100,
  phiThreshold: 8,
  phiMinStdDeviationMs: 200,
  phiAcceptablePauseMs: 2_000,
  phiWindowSize: 100,
  phiDistribution: 'normal',
  phiMaxLocalPauseMs: 2_000,
  handoffIntervalMs: 1_000,
  handoffBatch: 100,
  writeRetries: 2,
  reapDelayMs: 3_000,
  reapFloorTtlMs: 24 * 60 * 60 * 1000,
  reapFloorMax: 100_000,
  joinQuietMs: DEFAULT_JOIN_RETRY_POLICY.quietMs,
  joinWarnEveryMs: DEFAULT_JOIN_RETRY_POLICY.warnEveryMs,
  departedMemberExpiryMs: 24 * 60 * 60 * 1000,
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
  /** The addresses to try at each join attempt (host names resolved afresh: src/server/seeds.ts); default `seeds` as given. */
  seedAddresses?: () => Promise<string[]>;
  /** Join as the replacement of this (dead) member: the claimant hands it exactly that member's partitions (docs/cluster.md "Replace"). */
  replaces?: string;
  engine: Engine;
  transport: Transport;
  clock: Clock;
  /** Uniform in [0, 1); seeded in the simulator. */
  random: () => number;
  config?: Partial<NodeConfig>;
  metrics?: NodeMetrics;
  log?: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** Called once when maxJoinRefusals join attempts were refused: this node cannot become a member as configured (the owner stops it). */
  onJoinRefused?: (reason: string) => void;
  /** Called after this node reaped a tombstone (tests, the simulator). */
  onReap?: (e: { bucket: Buffer; key: Buffer; record: Buffer }) => void;
  /** Anti-entropy (src/node/anti-entropy.ts); its log defaults to the node's. */
  antiEntropy?: Partial<AntiEntropyConfig>;
  /** Partition transfer (src/node/transfer.ts). */
  transfers?: Partial<TransferOptions>;
  /** The set store (src/node/sets.ts). */
  sets?: SetStoreOptions;
  /** Key and bucket listings (src/node/listing.ts). */
  listing?: Partial<ListingOptions>;
}

export type { GetResult, PutResult, RequestOptions };

export class RingkvNode implements ServiceContext, ClientOperations {
  readonly id: string;
  readonly metrics: NodeMetrics;
  /** The cluster state: held, persisted, published (src/node/ring-state.ts). */
  private readonly ringState: RingState;
  /** How states travel: rounds, exchanges, joins (src/node/gossip.ts). */
  private readonly gossip: Gossip;
  private readonly config: NodeConfig;
  /** Requests to members and failure detection (src/node/peers.ts). */
  private readonly peers: Peers;
  /** The replica role: this node's local copies, hints, floors and key gates (src/node/replica.ts). */
  private readonly replica: Replica;
  /** The get driver and the put driver: one client read or write each (src/node/get-driver.ts, put-driver.ts). */
  private readonly getDriver: GetDriver;
  private readonly putDriver: PutDriver;
  private readonly hints: HintStore;
  private readonly handoff: HandoffService;
  /** Background services, built here (the one composition root) and stopped with the node. */
  readonly antiEntropy: AntiEntropyService;
  readonly transfers: TransferService;
  /** OR-set buckets (the HTTP API's /sets, and the 'sets.update' a non-replica forwards). */
  readonly sets: SetStore;
  /** Anti-entropy run now, on an operator's request (src/node/repair.ts). */
  readonly repairs: RepairService;
  /** Key, object and bucket listings (the HTTP API's /buckets routes, and the 'list.page' replicas serve). */
  readonly listing: ListingService;
  /** Whole records merged into their keys' primaries (POST /admin/merge, `ringkv restore`). */
  readonly records: RecordMerger;
  /** Keys this node reaped, remembered for reapFloorTtlMs (src/node/reaper.ts). */
  private readonly floors: ReapFloors;
  /** The reaping protocol's own queue (src/node/reap-driver.ts). */
  private readonly reaper: ReapDriver;
  private stopped = false;
  /** Handlers of the services' message types (registerService). */
  private readonly serviceHandlers = new Map<ServiceMessageType, PeerHandler<ServiceMessageType>>();
  /** Partitions this node is still receiving: where their reads go instead (see setReceiving). */
  private receivingFrom: ((partition: number, n?: number) => readonly string[] | null) | null = null;
  /** This node is draining (src/node/drain.ts): its own member entry says so, and clients' requests are refused. */
  private draining = false;
  /** Client reads and writes, and writes forwarded by peers, being coordinated here now (what a drain waits for). */
  private coordinating = 0;

  private constructor(
    private readonly opts: NodeOptions,
    config: NodeConfig,
    metrics: NodeMetrics,
    ringState: RingState,
  ) {
    this.id = opts.id;
    this.config = config;
    this.metrics = metrics;
    this.ringState = ringState;
    this.gossip = new Gossip(
      {
        id: opts.id,
        address: opts.address,
        zone: opts.zone,
        seeds: opts.seeds,
        seedAddresses: opts.seedAddresses,
        replaces: opts.replaces,
        clock: opts.clock,
        random: opts.random,
        ring: ringState,
        metrics: this.metrics,
        log: (level, msg, fields) => this.log(level, msg, fields),
        transport: opts.transport,
        peerRequest: (node, type, body, timeoutMs) => this.call(node, type, body, timeoutMs),
        lastHeard: (node) => this.peers.lastHeard(node),
        reconcileDrainFlag: () => this.reconcileDrainFlag(),
        onJoinRefused: opts.onJoinRefused,
      },
      this.config,
    );
    const peerCtx = { id: opts.id, transport: opts.transport, clock: opts.clock, addressOf: (node: string) => this.state.members[node]?.address };
    this.peers = new Peers(peerCtx, {
      threshold: this.config.phiThreshold,
      minStdDeviationMs: this.config.phiMinStdDeviationMs,
      acceptableHeartbeatPauseMs: this.config.phiAcceptablePauseMs,
      windowSize: this.config.phiWindowSize,
      distribution: this.config.phiDistribution,
      firstHeartbeatEstimateMs: this.config.gossipIntervalMs,
      // Heartbeats go to peers silent for a gossip interval; closer arrivals
      // (client traffic) only refresh "last heard" (see failure-detector.ts).
      minSampleIntervalMs: this.config.gossipIntervalMs / 2,
      maxLocalPauseMs: this.config.phiMaxLocalPauseMs,
    });
    this.replica = new Replica(
      {
        id: opts.id,
        engine: opts.engine,
        clock: opts.clock,
        metrics: this.metrics,
        log: (level, msg, fields) => this.log(level, msg, fields),
        onReap: opts.onReap,
        checkJoined: () => this.checkJoined(),
        ring: () => this.state.ring,
        pullState: (from) => this.gossip.pull(from),
        modeOf: (bucket) => this.bucketProps(bucket.toString('utf8')).mode,
        primariesOf: (bucket, key) => (this.joined ? this.preference(bucket, key, this.quorum(bucket, {}).n).primaries : null),
        isPrimaryMember: (node, bucket, key) => this.state.members[node] !== undefined && this.isPrimaryOf(node, bucket, key),
        receivingSources: (bucket, key) => this.receivingSources(bucket, key),
        sendReap: (node, bucket, key, record) => this.reaper.sendReap(node, bucket, key, record),
      },
      { ttlMs: this.config.reapFloorTtlMs, maxEntries: this.config.reapFloorMax },
    );
    this.hints = this.replica.hints;
    this.floors = this.replica.floors;
    this.reaper = new ReapDriver({
      id: opts.id,
      clock: opts.clock,
      metrics: this.metrics,
      log: (level, msg, fields) => this.log(level, msg, fields),
      floors: this.floors,
      reapDelayMs: this.config.reapDelayMs,
      reapFloorTtlMs: this.config.reapFloorTtlMs,
      requestTimeoutMs: this.config.requestTimeoutMs,
      ring: () => this.state.ring,
      primariesOf: (bucket, key, n) => this.preference(bucket, key, n).primaries,
      isSuspect: (node, now) => this.isSuspect(node, now),
      memberIds: () => Object.values(this.state.members).filter((m) => m.status !== 'left').map((m) => m.id),
      local: this.replica,
      peerRequest: (node, type, body, timeoutMs) => this.call(node, type, body, timeoutMs),
    });
    this.putDriver = new PutDriver({
      id: opts.id,
      engine: opts.engine,
      clock: opts.clock,
      metrics: this.metrics,
      replica: this.replica,
      writeRetries: this.config.writeRetries,
      reapDelayMs: this.config.reapDelayMs,
      healthAt: (now) => this.healthAt(now),
      coordinatesOwnWrites: (pl) => this.coordinatesOwnWrites(pl),
      peerRequest: (node, type, body, timeoutMs) => this.call(node, type, body, timeoutMs),
      scheduleReap: (bucket, key, n) => this.reaper.schedule(bucket, key, n),
    });
    this.getDriver = new GetDriver({
      id: opts.id,
      engine: opts.engine,
      clock: opts.clock,
      metrics: this.metrics,
      readRepairWindowMs: this.config.readRepairWindowMs,
      readRetryAfterMs: this.config.readRetryAfterMs,
      preference: (bucket, key, n) => this.preference(bucket, key, n),
      healthAt: (now) => this.healthAt(now),
      isSuspect: (node, now) => this.isSuspect(node, now),
      isKnownMember: (node) => this.state.members[node] !== undefined,
      coordinatesOwnWrites: (pl) => this.coordinatesOwnWrites(pl),
      ringVersion: () => this.state.ring.version,
      hasFloor: (bucket, key) => this.floors.get(bucket, key) !== undefined,
      receivingSources: (bucket, key) => this.receivingSources(bucket, key),
      localRecord: (bucket, key, withHintsToo) => this.replica.localRecord(bucket, key, withHintsToo),
      peerRequest: (node, type, body, timeoutMs) => this.call(node, type, body, timeoutMs),
      sendMerge: (node, bucket, key, record, mode, durable, timeoutMs) => this.putDriver.sendMerge(node, bucket, key, record, mode, durable, timeoutMs),
      reapRepair: (bucket, key, primaries, answers, floors, timeoutMs) => this.reaper.repair(bucket, key, primaries, answers, floors, timeoutMs),
    });
    this.handoff = new HandoffService(this, this.hints, {
      handoffIntervalMs: this.config.handoffIntervalMs,
      handoffBatch: this.config.handoffBatch,
      requestTimeoutMs: this.config.requestTimeoutMs,
      log: (level, msg, fields) => this.log(level, msg, fields),
    });
    // Each registers the peer requests it serves (before any can arrive: start() listens later).
    this.antiEntropy = new AntiEntropyService(this, { log: opts.log, ...opts.antiEntropy });
    this.transfers = new TransferService(this, opts.transfers);
    this.sets = new SetStore(this, opts.sets);
    const ae = this.antiEntropy;
    this.repairs = new RepairService({
      clock: opts.clock,
      primaryPartitions: () => ae.primaryPartitions(),
      peersOf: (p) => ae.peersOf(p),
      get running() {
        return ae.running;
      },
      exchange: (p, peer, only) => ae.exchange(p, peer, only),
    });
    registerServiceMetrics(this.metrics.registry, { hints: this.hints, antiEntropy: this.antiEntropy, transfers: this.transfers });
    // Getters: the state, the join and the engine are read when a listing runs, not now.
    const self = this; // eslint-disable-line @typescript-eslint/no-this-alias
    this.listing = new ListingService(
      {
        id: opts.id,
        get engine() { return self.engine; },
        clock: opts.clock,
        get clusterState() { return self.state; },
        get hasJoined() { return self.joined; },
        bucketProps: (bucket) => this.bucketProps(bucket),
        preferenceListOf: (partition, n) => this.preferenceListOf(partition, n),
        isSuspected: (node) => this.isSuspected(node),
        peerRequest: (node, type, body, timeoutMs) => this.call(node, type, body, timeoutMs),
        registerService: (handlers) => this.registerService(handlers),
        receivingSourcesOf: (partition, bucket) => {
          const sources = this.receivingFrom?.(partition, bucket === null ? undefined : this.bucketProps(bucket.toString('utf8')).n);
          return sources && sources.length > 0 ? sources : null;
        },
        pullState: (node) => this.gossip.pull(node),
      },
      opts.listing,
    );
    this.records = new RecordMerger({
      id: opts.id,
      requestTimeoutMs: this.config.requestTimeoutMs,
      peerRequest: (node, type, body, timeoutMs) => this.call(node, type, body, timeoutMs),
      placement: (bucket, key) => {
        const q = this.quorum(bucket, {});
        return { primaries: this.preference(bucket, key, q.n).primaries, w: q.w, mode: q.mode };
      },
      mergeLocal: (bucket, key, record, mode, durable) => this.replica.mergeLocal(bucket, key, record, mode, durable),
    });
  }

  /** The current cluster state (ring-state.ts). */
  private get state(): ClusterState {
    return this.ringState.current;
  }

  /** Whether the state is the cluster's (false before this node's join: its private single-node ring). */
  private get joined(): boolean {
    return this.ringState.joined;
  }

  /**
   * The composition root: loads (or creates) the cluster state, builds every
   * part (replica role, handoff, anti-entropy, transfers, sets), then serves
   * peers and gossips. The server and the simulator call only this.
   */
  static async start(opts: NodeOptions): Promise<RingkvNode> {
    // Peers refuse a member whose address does not validate: better to say so here than to be refused by every peer.
    const addressProblem = (opts.transport.addressProblem ?? hostPortProblem)(opts.address);
    if (addressProblem !== null) throw new NodeError('BAD_REQUEST', `this node's address: ${addressProblem} (give --advertise host:port)`);
    const config = { ...DEFAULT_NODE_CONFIG, ...opts.config };
    const metrics = opts.metrics ?? new NodeMetrics(opts.id);
    const log = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => opts.log?.(level, msg, { node: opts.id, ...fields });
    // Joined: a member of a cluster of several, or a node with no one to join (the first of its cluster).
    const joined = (state: ClusterState) => Object.keys(state.members).length > 1 || opts.seeds.every((s) => s === opts.address);
    const ringState = await RingState.load({ engine: opts.engine, metrics, log }, opts, joined);
    const node = new RingkvNode(opts, config, metrics, ringState);
    // A node that drained and was restarted runs again: its entry says so before any peer or client asks.
    await node.reconcileDrainFlag();
    // Hints are durable in the engine: index them, and deliver them from now on.
    await node.hints.load();
    node.metrics.hintsPending.set(node.hints.pending());
    await node.floors.load(opts.clock.now());
    node.metrics.reapFloors.set(node.floors.size);
    node.reaper.start();
    // Transfers load their plan and listen for ring changes before any gossip can change the ring.
    await node.transfers.start();
    opts.transport.onRequest((from, type, body) => node.onPeerRequest(from, type, body));
    node.gossip.start();
    node.peers.startLocalTicks(node.config.phiMaxLocalPauseMs / 4, (msg, fields) => node.log('warn', msg, fields));
    node.handoff.start();
    node.antiEntropy.start();
    return node;
  }

  /** Stops timers and peer traffic; the owner closes the engine. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.gossip.stop();
    this.handoff.stop();
    this.antiEntropy.stop();
    this.repairs.stop();
    this.transfers.stop();
    this.reaper.stop();
    this.peers.stop();
    await this.opts.transport.close();
  }

  /** Hints this node holds for other nodes, not delivered yet. */
  get hintsPending(): number {
    return this.hints.pending();
  }

  /** Runs one hinted-handoff round now (tests, tools); resolves with what it did. */
  deliverHints(): ReturnType<HandoffService['runRound']> {
    return this.handoff.runRound();
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
    this.coordinating++;
    try {
      this.checkJoined();
      const { record, answered } = await this.getDriver.get(bucket, key, q);
      const decoded = record ? decodeRecord(record) : null;
      this.metrics.requests.inc({ op: 'get', outcome: record ? 'found' : 'not_found' });
      if (decoded) this.metrics.siblings.observe(decoded.siblings.length);
      return { record, decoded, answered };
    } catch (err) {
      this.metrics.requests.inc({ op: 'get', outcome: errorCode(err) });
      throw err;
    } finally {
      this.coordinating--;
      this.metrics.latency.observe({ op: 'get' }, (this.opts.clock.now() - started) / 1000);
    }
  }

  /** A put (value) or delete (value null) with the client's context; `attrs`: the new value's content type and metadata. */
  async put(bucket: Buffer, key: Buffer, context: Buffer | null, value: Buffer | null, req: RequestOptions = {}, attrs: WriteAttributes = {}): Promise<PutResult> {
    const op = value === null ? 'delete' : 'put';
    const started = this.opts.clock.now();
    const q = this.quorum(bucket, req);
    this.coordinating++;
    try {
      this.checkJoined();
      // Coordinated here by a primary, else forwarded (src/node/put-driver.ts).
      const result = await this.putDriver.put(bucket, key, context, value, q, this.preference(bucket, key, q.n), attrs);
      this.metrics.requests.inc({ op, outcome: 'ok' });
      return result;
    } catch (err) {
      this.metrics.requests.inc({ op, outcome: errorCode(err) });
      throw err;
    } finally {
      this.coordinating--;
      this.metrics.latency.observe({ op }, (this.opts.clock.now() - started) / 1000);
    }
  }

  bucketProps(bucket: string): BucketProps {
    return bucketProps(this.state, bucket);
  }

  /**
   * Changes a bucket's properties (see membership.setBucketProps for what is
   * refused), then pushes the new state to every other member and waits for
   * their acks — each adopts it before it answers — bounded by the request
   * timeout: when this returns, every reachable member routes by the change.
   * Whether the bucket holds objects is judged from this node's engine only.
   */
  async setBucketProps(bucket: string, change: Partial<BucketProps>): Promise<BucketProps> {
    try {
      // Validate first (cheap), scan only for a type change that passes the other rules.
      const next = setBucketProps(this.state, bucket, change);
      const current = this.bucketProps(bucket).type ?? null;
      const typeChanges = (bucketProps(next, bucket).type ?? null) !== current;
      const holdsObjects = typeChanges ? await this.holdsObjectsLocally(bucket) : false;
      await this.ringState.adopt((s) => setBucketProps(s, bucket, change, { holdsObjects }));
    } catch (err) {
      if (err instanceof BucketPropsError) throw new NodeError('INVALID_BUCKET_PROPS', err.message, { fields: err.fields });
      if (err instanceof ClusterStateError) throw new NodeError('BAD_REQUEST', err.message);
      throw err;
    }
    await this.gossip.pushToMembers();
    return this.bucketProps(bucket);
  }

  /**
   * Changes the cluster's client tokens (src/core/tokens.ts): `change` gets
   * the current table and the time and returns the new table, then the state
   * is pushed to every member as for bucket properties, so when this returns
   * every reachable member checks tokens by the change (gossip reaches the rest).
   */
  async changeTokens<T>(change: (table: TokenTable, nowMs: number) => { table: TokenTable; result: T }): Promise<T> {
    const now = this.opts.clock.now();
    let result!: T;
    // Decided on the state as it is when the change's turn comes (src/node/ring-state.ts).
    await this.ringState.adopt((s) => {
      const changed = change(s.tokens ?? {}, now);
      result = changed.result;
      return changed.table === s.tokens ? s : { ...s, tokens: changed.table };
    });
    await this.gossip.pushToMembers();
    return result;
  }

  /** Whether this node's engine holds any object (or tombstone) of the bucket: a scan of every partition, stopping at the first. */
  private async holdsObjectsLocally(bucket: string): Promise<boolean> {
    const name = Buffer.from(bucket, 'utf8');
    const engine = this.opts.engine;
    for (let p = 0; p < 2 ** engine.partitionBits; p++) {
      let after: Buffer | null = null;
      do {
        const page = await engine.scanPartition(p, after, 1_000);
        if (page.items.some((item) => item.bucket.equals(name))) return true;
        after = page.next;
      } while (after !== null);
    }
    return false;
  }

  /** Joins the cluster a seed belongs to (an admin action); this node's ring is replaced by the cluster's (src/node/gossip.ts). */
  join(seed: string): Promise<void> {
    return this.gossip.join(seed);
  }

  /** Starts this node's departure; its partitions move to the others. */
  async leave(nodeId = this.id): Promise<void> {
    try {
      await this.ringState.adopt((s) => markLeaving(s, nodeId));
    } catch (err) {
      if (err instanceof ClusterStateError) throw new NodeError('BAD_REQUEST', err.message);
      throw err;
    }
  }

  // ---------------------------------------------------------------------------
  // Operations (docs/cluster.md "Drain", "Forget", "Replace")

  get isDraining(): boolean {
    return this.draining;
  }

  /** Client reads and writes (and peers' forwarded writes) being coordinated here now. */
  get activeRequests(): number {
    return this.coordinating;
  }

  /**
   * Starts (or ends) this node's drain: its own member entry says so, pushed
   * to every reachable member before this returns (they stop forwarding
   * writes to it; clients learn it from /ring and from the 503s it answers).
   */
  async setDraining(on: boolean): Promise<void> {
    this.draining = on;
    await this.reconcileDrainFlag();
    await this.gossip.pushToMembers();
  }

  /** Makes this node's member entry carry its drain flag as it is (another node's change of the entry may have carried an old one). */
  private async reconcileDrainFlag(): Promise<void> {
    const own = this.state.members[this.id];
    if (!this.joined || own === undefined || own.status === 'left' || (own.draining === true) === this.draining) return;
    await this.ringState.adopt((s) => setDraining(s, this.id, this.draining));
  }

  /**
   * Forgets a member (see membership.forgetStep): one that left and owns
   * nothing is removed at once (a tombstone in the state, pushed to every
   * member); with `force`, one that is valid or leaving is first marked
   * 'left', and removed once the claimant has handed its partitions to the
   * others — waited for up to `timeoutMs`. Resolves with whether it is gone
   * (false: still waiting for the claimant; run it again).
   */
  async forget(id: string, force: boolean, timeoutMs: number): Promise<{ forgotten: boolean; partitions: number }> {
    const deadline = this.opts.clock.now() + timeoutMs;
    for (;;) {
      const step = forgetStep(this.state, id, this.id, force);
      if (step.kind === 'refuse') throw new NodeError(step.code === 'UNKNOWN_MEMBER' || step.code === 'FORCE_REQUIRED' ? step.code : 'BAD_REQUEST', step.reason);
      if (step.kind === 'remove') {
        await this.ringState.adopt((s) => removeMember(s, id, this.opts.clock.now()));
        await this.gossip.pushToMembers();
        this.log('info', 'member forgotten', { member: id });
        return { forgotten: true, partitions: 0 };
      }
      if (step.kind === 'mark-left') {
        await this.adoptOrRefuse((s) => markLeft(s, id, this.opts.clock.now()));
        await this.gossip.pushToMembers();
        this.log('warn', 'member forced out: its partitions go to the others', { member: id });
        continue;
      }
      // wait-ring: the claimant reclaims at its next round; ask it for its state meanwhile.
      if (this.opts.clock.now() >= deadline) return { forgotten: false, partitions: this.state.ring.owners.filter((o) => o === id).length };
      await this.gossip.waitForClaimant();
    }
  }

  /**
   * Hands every partition of `dead` to `replacement` one-for-one (see
   * membership.markReplacing; the claimant applies it), then waits up to
   * `timeoutMs` for the ring that does. Refused for a dead node this node
   * does not suspect, unless `force`. The data comes from the partitions'
   * other replicas (their transfers show in their /status).
   */
  async replace(dead: string, replacement: string, force: boolean, timeoutMs: number): Promise<{ replaced: boolean; partitions: number }> {
    if (!force && dead !== this.id && this.state.members[dead] !== undefined && this.state.members[dead]!.status !== 'left' && !this.isSuspect(dead, this.opts.clock.now())) {
      throw new NodeError('FORCE_REQUIRED', `${dead} answers (not suspected by ${this.id}): replace a node that is down, or confirm with force`);
    }
    if (dead === this.id) throw new NodeError('BAD_REQUEST', `${dead} cannot hand itself over: send the request to another node`);
    const partitions = this.state.ring.owners.filter((o) => o === dead).length;
    await this.adoptOrRefuse((s) => markReplacing(s, dead, replacement));
    await this.gossip.pushToMembers();
    const deadline = this.opts.clock.now() + timeoutMs;
    while (this.state.ring.owners.includes(dead) || this.state.members[dead]?.status !== 'left') {
      if (this.opts.clock.now() >= deadline) return { replaced: false, partitions };
      await this.gossip.waitForClaimant();
    }
    this.log('info', 'member replaced', { dead, replacement, partitions });
    return { replaced: true, partitions };
  }

  /** A change of the state whose refusal (ClusterStateError) is the caller's error. */
  private async adoptOrRefuse(change: (current: ClusterState) => ClusterState): Promise<void> {
    try {
      await this.ringState.adopt(change);
    } catch (err) {
      if (err instanceof ClusterStateError) throw new NodeError(err.code === 'UNKNOWN_MEMBER' ? 'UNKNOWN_MEMBER' : 'BAD_REQUEST', err.message);
      throw err;
    }
  }

  /** GET /status's document (its shape, shared with the client: src/api-types.ts). */
  status(): NodeStatus {
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
        ...(m.draining === true ? { draining: true } : {}),
        ...(m.replaces !== undefined ? { replaces: m.replaces } : {}),
        ...this.peers.health(m.id, now),
      })),
    };
  }

  // ---------------------------------------------------------------------------
  // Coordination

  private quorum(bucket: Buffer, req: RequestOptions): Quorum {
    try {
      return quorum(this.bucketProps(bucket.toString('utf8')), req, distinctOwnerCount(this.state.ring.owners), this.config.requestTimeoutMs);
    } catch (err) {
      if (err instanceof QuorumError) throw new NodeError('BAD_REQUEST', err.message);
      throw err;
    }
  }

  /** This node's view of its peers' health now, for the replica choices of src/core/apl.ts. */
  private healthAt(now: number): Health {
    return {
      isSuspect: (node) => this.isSuspect(node, now),
      isMember: (node) => this.state.members[node] !== undefined && this.state.members[node]!.status !== 'left',
      isDraining: (node) => this.state.members[node]?.draining === true,
    };
  }

  /** A node that has not joined yet holds a private single-node ring: it must not coordinate or serve replicas by it. */
  private checkJoined(): void {
    if (!this.joined) throw new NodeError('UNAVAILABLE', 'this node has not joined its cluster yet');
  }

  private preference(bucket: Buffer, key: Buffer, n: number): PreferenceList {
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
    return preferenceList(ring, partitionOf(ring, position), n, zonesOf(this.state));
  }

  /** Whether this node coordinates its clients' writes of a key itself (a valid primary) rather than forwarding them (see put). */
  private coordinatesOwnWrites(pl: PreferenceList): boolean {
    return pl.primaries.includes(this.id) && this.state.members[this.id]?.status === 'valid';
  }

  /** For a key of a partition this node is still receiving: the nodes to read it from instead (giver first); else null. */
  private receivingSources(bucket: Buffer, key: Buffer): readonly string[] | null {
    if (!this.receivingFrom) return null;
    let position: bigint;
    try {
      position = this.opts.engine.hashKey(bucket, key);
    } catch {
      return null; // the read itself reports the bad key
    }
    // Per bucket n: a node new in one n's list only waits for that n's keys (src/core/transfer-plan.ts).
    const sources = this.receivingFrom(partitionOf(this.state.ring, position), this.bucketProps(bucket.toString('utf8')).n);
    return sources && sources.length > 0 ? sources : null;
  }

  // ---------------------------------------------------------------------------
  // Tombstone reaping (docs/cluster.md "Deletes and tombstones"; the floors
  // and why they are needed: src/node/reaper.ts)

  private isPrimaryOf(node: string, bucket: Buffer, key: Buffer): boolean {
    try {
      return this.preference(bucket, key, this.quorum(bucket, {}).n).primaries.includes(node);
    } catch {
      return false;
    }
  }

  /** A typed peer request (src/node/messages.ts): the body as its type defines it, the reply checked. */
  private async call<T extends PeerMessageType>(node: string, type: T, body: PeerRequestBody<T>, timeoutMs: number): Promise<PeerReply<T>> {
    return decodePeerReply(type, await this.request(node, type, body, timeoutMs));
  }

  private request(node: string, type: string, body: unknown, timeoutMs: number): Promise<unknown> {
    // Heartbeats and gossip exchanges are what phi measures: their timeouts are not a second verdict (Peers.request).
    return this.peers.request(node, type, body, timeoutMs, { probe: type === 'ping' || type === 'gossip' });
  }

  /** Suspected now (see Peers.isSuspect). */
  private isSuspect(node: string, now: number): boolean {
    return this.peers.isSuspect(node, now);
  }

  private async onPeerRequest(from: string, type: string, body: unknown): Promise<unknown> {
    if (this.stopped) throw new NodeError('UNAVAILABLE', 'node is stopping');
    if (this.state.members[from]) this.peers.heardFrom(from);
    if (!isPeerMessageType(type)) throw new NodeError('BAD_REQUEST', `unknown peer request type '${type}'`);
    // Checked here, once: a handler only ever sees a well-formed body.
    const req = decodePeerRequest(type, body);
    const handler = (isServiceMessageType(type) ? this.serviceHandlers.get(type) : this.peerHandlers[type]) as PeerHandler<PeerMessageType> | undefined;
    invariant(handler !== undefined, `no handler for peer request type '${type}' (the composition root starts every service)`);
    try {
      return await handler(from, req);
    } catch (err) {
      // What the peer hears is a typed code (src/node/errors.ts peerErrorFrom).
      throw peerErrorFrom(err);
    }
  }

  /** One handler per peer request kind of the node itself (src/node/messages.ts defines each body and reply). */
  private readonly peerHandlers: { [T in NodeMessageType]: PeerHandler<T> } = {
    ping: async () => ({}),
    // The replica role's requests (src/node/replica.ts).
    'kv.get': (from, req) => this.replica.onGet(from, req),
    'kv.merge': (from, req) => this.replica.onMerge(from, req),
    'kv.mergebatch': (from, req) => this.replica.onMergeBatch(from, req),
    'kv.reapcheck': (from, req) => this.replica.onReapCheck(from, req),
    'kv.reap': (from, req) => this.replica.onReapRequest(from, req),
    'kv.put': async (_from, req) => {
      this.checkJoined();
      const bucket = req.b;
      // A write has no r: with the client's n below the bucket's r (HTTP's shrinkToN), the bucket's r must not fail the check.
      const r = req.n === undefined ? undefined : Math.min(this.bucketProps(bucket.toString('utf8')).r, req.n);
      const q = this.quorum(bucket, { n: req.n, r, w: req.w, dw: req.dw, pw: req.pw, timeoutMs: req.timeoutMs });
      const pl = this.preference(bucket, req.k, q.n);
      const attrs = { contentType: req.ct, meta: req.meta };
      const forwards = req.fwd ?? 1;
      // Not a primary by this node's ring (the forwarder's is older or newer): on to this ring's primaries, once; else coordinate here.
      const run =
        forwardedWriteStep(pl, this.id, forwards) === 'forward'
          ? () => this.putDriver.forward(bucket, req.k, req.context, req.value, q, pl, attrs, forwards + 1)
          : () => this.putDriver.coordinate(bucket, req.k, req.context, req.value, q, coordinatingList(pl, this.id, q.n), attrs);
      this.coordinating++;
      try {
        const result = await this.putDriver.coordinateForwarded(req.wid ?? null, q.timeoutMs, run);
        return { record: result.record, acks: result.acks };
      } finally {
        this.coordinating--;
      }
    },
    // Gossip's two ends (src/node/gossip.ts).
    gossip: (from, req) => this.gossip.onGossip(from, req),
    join: (from, req) => this.gossip.onJoin(from, req),
  };

  // ---------------------------------------------------------------------------
  // For background services (anti-entropy, handoff, transfers): they run
  // beside the node, reach peers through it and share its view of the ring.

  /**
   * Serves the given service message types with these handlers (bodies
   * decoded by onPeerRequest). The node's own services register in its
   * constructor; a later registration of a type replaces the earlier one (a
   * tool or test running a second instance of a service against the node).
   */
  registerService<T extends ServiceMessageType>(handlers: ServiceHandlers<T>): void {
    for (const [type, handler] of Object.entries(handlers) as Array<[T, PeerHandler<T>]>) {
      invariant(isPeerMessageType(type) && isServiceMessageType(type), `'${type}' is not a service message type`);
      this.serviceHandlers.set(type, handler as unknown as PeerHandler<ServiceMessageType>);
    }
  }

  /** Calls `listener` synchronously every time this node adopts a different ring (before any request sees it; src/node/ring-state.ts). */
  onRingChange(listener: () => void): void {
    this.ringState.onRingChange(listener);
  }

  /**
   * Installs the check that tells which partitions this node is still
   * receiving (src/node/transfer.ts): for such a partition it returns the
   * nodes reads should use instead (giver first), and this node's own copy
   * is not a source for reads of the partition (docs/cluster.md "Partition
   * transfer"). Writes still land here.
   */
  setReceiving(check: (partition: number, n?: number) => readonly string[] | null): void {
    this.receivingFrom = check;
  }

  /** A typed request to a member, with the node's suspicion bookkeeping; the reply is checked (src/node/messages.ts). */
  peerRequest<T extends PeerMessageType>(node: string, type: T, body: PeerRequestBody<T>, timeoutMs: number): Promise<PeerReply<T>> {
    return this.call(node, type, body, timeoutMs);
  }

  /** The engine, for background services: its merges go through the reap floors (see guardEngine). */
  get engine(): Engine {
    return this.replica.guardedEngine;
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

  /** Whether a member is currently suspected (phi above the threshold, or its last request failed). */
  isSuspected(node: string): boolean {
    return this.isSuspect(node, this.opts.clock.now());
  }

  /** The phi of a member now (0: never heard from, or self). */
  phiOf(node: string): number {
    return this.peers.phi(node, this.opts.clock.now());
  }

  private log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void {
    this.opts.log?.(level, msg, { node: this.id, ...fields });
  }
}
