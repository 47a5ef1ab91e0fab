// The node runtime: owns the engine, the transport and the clock, and feeds
// the pure protocol core (membership, ring, coordinators). Everything here is
// I/O plumbing; decisions live in src/core.
import type { PhiDistribution } from '../core/failure-detector.js';
import {
  type BucketProps,
  type ClusterState,
  ClusterStateError,
  BucketPropsError,
  addMember,
  bucketProps,
  claimantOf,
  createCluster,
  digest,
  expireDeparted,
  forgetStep,
  gossipTarget,
  hostPortProblem,
  markLeaving,
  markLeft,
  markReplacing,
  maybeReclaim,
  mergeGossip,
  newMemberProblem,
  removeMember,
  setBucketProps,
  setDraining,
  zonesOf,
} from '../core/membership.js';
import { type Health, coordinatingList } from '../core/apl.js';
import { type Quorum, type QuorumRequest, QuorumError, quorum } from '../core/quorum.js';
import { distinctOwnerCount, partitionOf, preferenceList, ownerCounts, type PreferenceList } from '../core/ring.js';
import { EngineError, type Engine } from '../engine/types.js';
import { type DecodedRecord, type WriteAttributes, decodeRecord } from '../record/index.js';
import { StateWireError, packState, unpackState } from '../core/state-wire.js';
import { type TokenTable, tokenTableProblem } from '../core/tokens.js';
import { ANY_PEER, isTransportError, type Clock, type Timer, type Transport } from '../transport/types.js';
import type { NodeStatus } from '../api-types.js';
import type { ClientOperations, ServiceContext } from './context.js';
import { invariant } from '../core/types.js';
import { DEFAULT_JOIN_RETRY_POLICY, JOIN_RETRY_START, type JoinRetryState, onJoinFailure, onJoinSuccess } from '../core/join-retry.js';
import { NodeError, errorCode, isClosedError, peerErrorFrom } from './errors.js';
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
  type PeerReplyBody,
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

/** A client request's quorum options (src/core/quorum.ts). */
export type RequestOptions = QuorumRequest;

export interface GetResult {
  /** The reconciled record (null: no replica has the key). */
  record: Buffer | null;
  /** `record` decoded (once, here, so callers need not decode it again). */
  decoded: DecodedRecord | null;
  /** Replicas that answered before the reply. */
  answered: number;
}

export type { PutResult };

const STATE_META = 'cluster.state';

export class RingkvNode implements ServiceContext, ClientOperations {
  readonly id: string;
  readonly metrics: NodeMetrics;
  private state: ClusterState;
  private readonly config: NodeConfig;
  private gossipTimer: Timer | null = null;
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
  private joined: boolean;
  /** Handlers of the services' message types (registerService). */
  private readonly serviceHandlers = new Map<ServiceMessageType, PeerHandler<ServiceMessageType>>();
  /** Join attempts refused so far (an unreachable seed does not count: it may still be starting). */
  private joinRefusals = 0;
  /** Unreachable-seed failures in a row, for their log level (src/core/join-retry.ts). */
  private joinRetry: JoinRetryState = JOIN_RETRY_START;
  /** Told synchronously whenever this node adopts a different ring (the transfer service plans at once). */
  private readonly ringListeners: Array<() => void> = [];
  /** Peers whose state is being fetched because they route by a newer ring (see pullState). */
  private readonly pulling = new Set<string>();
  /** Refused gossip entries already logged (sender/member/version). */
  private readonly refusedLogged = new Set<string>();
  /** Partitions this node is still receiving: where their reads go instead (see setReceiving). */
  private receivingFrom: ((partition: number) => readonly string[] | null) | null = null;
  /** This node is draining (src/node/drain.ts): its own member entry says so, and clients' requests are refused. */
  private draining = false;
  /** Client reads and writes, and writes forwarded by peers, being coordinated here now (what a drain waits for). */
  private coordinating = 0;

  private constructor(
    private readonly opts: NodeOptions,
    state: ClusterState,
  ) {
    this.id = opts.id;
    this.state = state;
    this.config = { ...DEFAULT_NODE_CONFIG, ...opts.config };
    this.metrics = opts.metrics ?? new NodeMetrics(opts.id);
    this.joined = Object.keys(state.members).length > 1 || opts.seeds.every((s) => s === opts.address);
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
        pullState: (from) => this.pullState(from),
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
        receivingSourcesOf: (partition) => {
          const sources = this.receivingFrom?.(partition);
          return sources && sources.length > 0 ? sources : null;
        },
        pullState: (node) => this.pullState(node),
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
    this.observeState();
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
    node.scheduleGossip(0);
    node.peers.startLocalTicks(node.config.phiMaxLocalPauseMs / 4, (msg, fields) => node.log('warn', msg, fields));
    node.handoff.start();
    node.antiEntropy.start();
    return node;
  }

  /** Stops timers and peer traffic; the owner closes the engine. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.gossipTimer?.cancel();
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
      await this.adopt(setBucketProps(this.state, bucket, change, { holdsObjects }));
    } catch (err) {
      if (err instanceof BucketPropsError) throw new NodeError('INVALID_BUCKET_PROPS', err.message, { fields: err.fields });
      if (err instanceof ClusterStateError) throw new NodeError('BAD_REQUEST', err.message);
      throw err;
    }
    await this.pushStateToMembers();
    return this.bucketProps(bucket);
  }

  /**
   * Changes the cluster's client tokens (src/core/tokens.ts): `change` gets
   * the current table and the time and returns the new table, then the state
   * is pushed to every member as for bucket properties, so when this returns
   * every reachable member checks tokens by the change (gossip reaches the rest).
   */
  async changeTokens<T>(change: (table: TokenTable, nowMs: number) => { table: TokenTable; result: T }): Promise<T> {
    const { table, result } = change(this.state.tokens ?? {}, this.opts.clock.now());
    if (table !== this.state.tokens) await this.adopt({ ...this.state, tokens: table });
    await this.pushStateToMembers();
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

  /** Sends this node's state to every other member not yet left and waits (request timeout) for each to adopt it; unreachable ones are skipped. */
  private async pushStateToMembers(): Promise<void> {
    const packed = packState(this.state);
    const peers = Object.values(this.state.members).filter((m) => m.id !== this.id && m.status !== 'left');
    await Promise.allSettled(peers.map((m) => this.exchangeState(m.id, this.config.requestTimeoutMs, packed)));
  }

  /** One gossip exchange: sends this node's state and adopts what the peer answers with, if it differs. */
  private async exchangeState(node: string, timeoutMs: number, packed: unknown = packState(this.state)): Promise<void> {
    const reply = await this.call(node, 'gossip', { state: packed }, timeoutMs);
    if (!reply.state) return;
    const remote = unpackWireState(reply.state, this.addressProblem);
    this.checkCluster(remote);
    await this.adoptGossip(remote, node);
  }

  /** What an address is on this node's transport (members from the network are checked with it). */
  private get addressProblem(): (address: string) => string | null {
    return this.opts.transport.addressProblem ?? hostPortProblem;
  }

  /** Merges a state `from` gossiped (it validated already), keeping this node's version of the entries `from` may not change (mergeGossip). */
  private async adoptGossip(remote: ClusterState, from: string): Promise<void> {
    const { state, refused } = mergeGossip(this.state, remote, this.id, from);
    if (refused.length > 0) {
      this.metrics.gossipRefused.inc(refused.length);
      for (const r of refused) {
        // Once per sender, member and version: the same state comes back every round until its author gossips it.
        const key = `${from}/${r.id}/${r.version}`;
        if (this.refusedLogged.has(key)) continue;
        if (this.refusedLogged.size >= 1_000) this.refusedLogged.clear();
        this.refusedLogged.add(key);
        this.log('warn', 'gossiped member entry refused', { from, member: r.id, version: r.version, reason: r.reason });
      }
    }
    await this.adopt(state);
  }

  /** Joins the cluster a seed belongs to (an admin action); this node's ring is replaced by the cluster's. */
  async join(seed: string): Promise<void> {
    const body: PeerRequestBody<'join'> = {
      cluster: this.state.clusterName,
      member: { id: this.id, address: this.opts.address, zone: this.opts.zone },
      ...(this.opts.replaces === undefined ? {} : { replaces: this.opts.replaces }),
    };
    const reply = decodePeerReply('join', await this.opts.transport.request({ id: ANY_PEER, address: seed }, 'join', body, this.config.requestTimeoutMs)) as unknown as {
      state: ClusterState;
    };
    if (reply.state.clusterName !== this.state.clusterName) {
      throw new NodeError('CLUSTER_MISMATCH', `seed ${seed} is in cluster '${reply.state.clusterName}'`);
    }
    const tokensProblem = tokenTableProblem(reply.state.tokens);
    if (tokensProblem !== null) throw new NodeError('BAD_REQUEST', `seed ${seed} sent a bad token table: ${tokensProblem}`);
    const admitted = unpackWireState(reply.state, this.addressProblem);
    const me = admitted.members[this.id];
    // (leaving: a node that lost its data while leaving rejoins where it was, to finish leaving)
    if (me === undefined || me.status === 'left' || me.address !== this.opts.address || me.zone !== this.opts.zone) {
      throw new NodeError('BAD_REQUEST', `seed ${seed} answered with a state that does not admit ${this.id} at ${this.opts.address}`);
    }
    // Take the cluster's state wholesale: this node's own single-node ring
    // must not compete with the cluster's in a merge.
    this.state = admitted;
    await this.persist();
    this.joined = true;
    this.ringChanged();
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
    await this.pushStateToMembers();
  }

  /** Makes this node's member entry carry its drain flag as it is (another node's change of the entry may have carried an old one). */
  private async reconcileDrainFlag(): Promise<void> {
    const own = this.state.members[this.id];
    if (!this.joined || own === undefined || own.status === 'left' || (own.draining === true) === this.draining) return;
    await this.adopt(setDraining(this.state, this.id, this.draining));
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
        await this.adopt(removeMember(this.state, id, this.opts.clock.now()));
        await this.pushStateToMembers();
        this.log('info', 'member forgotten', { member: id });
        return { forgotten: true, partitions: 0 };
      }
      if (step.kind === 'mark-left') {
        await this.adoptOrRefuse(() => markLeft(this.state, id, this.opts.clock.now()));
        await this.pushStateToMembers();
        this.log('warn', 'member forced out: its partitions go to the others', { member: id });
        continue;
      }
      // wait-ring: the claimant reclaims at its next round; ask it for its state meanwhile.
      if (this.opts.clock.now() >= deadline) return { forgotten: false, partitions: this.state.ring.owners.filter((o) => o === id).length };
      await this.waitForClaimant();
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
    await this.adoptOrRefuse(() => markReplacing(this.state, dead, replacement));
    await this.pushStateToMembers();
    const deadline = this.opts.clock.now() + timeoutMs;
    while (this.state.ring.owners.includes(dead) || this.state.members[dead]?.status !== 'left') {
      if (this.opts.clock.now() >= deadline) return { replaced: false, partitions };
      await this.waitForClaimant();
    }
    this.log('info', 'member replaced', { dead, replacement, partitions });
    return { replaced: true, partitions };
  }

  private async adoptOrRefuse(change: () => ClusterState): Promise<void> {
    try {
      await this.adopt(change());
    } catch (err) {
      if (err instanceof ClusterStateError) throw new NodeError(err.code === 'UNKNOWN_MEMBER' ? 'UNKNOWN_MEMBER' : 'BAD_REQUEST', err.message);
      throw err;
    }
  }

  /** One gossip exchange with the claimant (or a gossip interval's wait when that is this node or none). */
  private async waitForClaimant(): Promise<void> {
    const claimant = claimantOf(this.state);
    if (claimant !== null && claimant !== this.id) await this.exchangeState(claimant, this.config.gossipIntervalMs).catch(() => undefined);
    await new Promise<void>((resolve) => this.opts.clock.setTimer(this.config.gossipIntervalMs / 2, resolve));
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
    const sources = this.receivingFrom(partitionOf(this.state.ring, position));
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
      // Whoever was asked coordinates, even if its ring disagrees for a moment.
      const coordinating = coordinatingList(pl, this.id, q.n);
      this.coordinating++;
      try {
        const result = await this.putDriver.coordinateForwarded(req.wid ?? null, q.timeoutMs, () => this.putDriver.coordinate(bucket, req.k, req.context, req.value, q, coordinating, { contentType: req.ct, meta: req.meta }));
        return { record: result.record, acks: result.acks };
      } finally {
        this.coordinating--;
      }
    },
    gossip: async (from, req) => {
      // Until its join completes, this node's state is its own private
      // single-node cluster: merged into the cluster's (ring v1 ties go to
      // the higher claimant id) it would hand every partition to this node.
      if (!this.joined) throw new NodeError('UNAVAILABLE', 'not joined yet');
      const remote = unpackWireState(req.state, this.addressProblem);
      this.checkCluster(remote);
      await this.adoptGossip(remote, from);
      return digest(this.state) === digest(remote) ? {} : { state: packState(this.state) };
    },
    join: async (from, req) => {
      if (req.cluster !== this.state.clusterName) throw new NodeError('CLUSTER_MISMATCH', `this node is in cluster '${this.state.clusterName}'`);
      const member = req.member;
      // A peer speaks only for the node id it authenticated as.
      if (member.id !== from) throw new NodeError('BAD_REQUEST', `a peer authenticated as '${from}' may only join itself, not '${member.id}'`);
      const problem = newMemberProblem(member, this.addressProblem);
      if (problem !== null) throw new NodeError('BAD_REQUEST', `cannot admit: ${problem}`);
      let admitted: ClusterState;
      try {
        admitted = addMember(this.state, member);
        // Admitted and marked as the replacement in one change: the claimant never sees it without the mark (and gives it no share of its own).
        // (A retried join after the claimant applied it, or a dead member that left meanwhile: admitted as is.)
        if (req.replaces !== undefined && admitted.members[req.replaces]?.status !== 'left') admitted = markReplacing(admitted, req.replaces, member.id);
        await this.adopt(admitted);
      } catch (err) {
        if (err instanceof ClusterStateError) throw new NodeError('BAD_REQUEST', err.message);
        throw err;
      }
      this.log('info', 'member added', { member: member.id, address: member.address, ...(req.replaces === undefined ? {} : { replaces: req.replaces }) });
      // The state as admitted, not one adopted meanwhile: a reclaim in between
      // would hand the joiner a first ring where it already owns partitions,
      // and it could not tell what it is to receive (src/node/transfer.ts).
      return { state: admitted as unknown as PeerReplyBody<'join'>['state'] };
    },
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

  /** Calls `listener` synchronously every time this node adopts a different ring (before any request sees it). */
  onRingChange(listener: () => void): void {
    this.ringListeners.push(listener);
  }

  /**
   * Installs the check that tells which partitions this node is still
   * receiving (src/node/transfer.ts): for such a partition it returns the
   * nodes reads should use instead (giver first), and this node's own copy
   * is not a source for reads of the partition (docs/cluster.md "Partition
   * transfer"). Writes still land here.
   */
  setReceiving(check: (partition: number) => readonly string[] | null): void {
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
      await this.reconcileDrainFlag();
      const now = this.opts.clock.now();
      const reclaimed = maybeReclaim(this.state, this.id, now);
      if (reclaimed) await this.adopt(reclaimed);
      const expired = this.joined ? expireDeparted(this.state, this.id, now, this.config.departedMemberExpiryMs) : null;
      if (expired) {
        this.log('info', 'departed members expired from the member list', { members: Object.keys(this.state.members).filter((id) => expired.members[id] === undefined) });
        await this.adopt(expired);
      }
      const target = gossipTarget(this.state, this.id, (n) => Math.floor(this.opts.random() * n));
      if (!target) return;
      this.heartbeats(target);
      await this.exchangeState(target, this.config.gossipIntervalMs);
    } catch (err) {
      if (!isTransportError(err)) this.log('warn', 'gossip round failed', { error: String(err) });
    }
  }

  /** A peer routes by a newer ring than this node's: fetch its state now instead of waiting for gossip. */
  private pullState(node: string): void {
    if (this.pulling.has(node) || !this.state.members[node]) return;
    this.pulling.add(node);
    this.exchangeState(node, this.config.gossipIntervalMs)
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
    if (!this.joined) return;
    const now = this.opts.clock.now();
    for (const m of Object.values(this.state.members)) {
      if (m.id === this.id || m.id === gossipTarget || m.status === 'left') continue;
      const heard = this.peers.lastHeard(m.id);
      if (heard !== undefined && now - heard < this.config.gossipIntervalMs) continue;
      this.call(m.id, 'ping', {}, this.config.gossipIntervalMs).catch(() => undefined);
    }
  }

  private async tryJoinSeeds(): Promise<void> {
    const seeds = this.opts.seedAddresses ? await this.opts.seedAddresses() : this.opts.seeds;
    for (const seed of seeds) {
      if (seed === this.opts.address) continue;
      try {
        await this.join(seed);
        this.joinRetry = onJoinSuccess();
        return;
      } catch (err) {
        const error = String((err as Error).message ?? err);
        if (isJoinRefusal(err)) {
          this.joinRefusals += 1;
          this.log('warn', 'the cluster refused this node', { seed, error, refusals: this.joinRefusals, maxRefusals: this.config.maxJoinRefusals });
          if (this.joinRefusals === this.config.maxJoinRefusals) {
            this.opts.onJoinRefused?.(`seed ${seed} refused this node ${this.joinRefusals} times: ${error}`);
            return;
          }
        } else {
          // Nodes started together race each other: quiet at first, then warned about, rate-limited.
          const policy = { quietMs: this.config.joinQuietMs, warnEveryMs: this.config.joinWarnEveryMs };
          const failed = onJoinFailure(this.joinRetry, this.opts.clock.now(), policy);
          this.joinRetry = failed.state;
          this.log(failed.level, 'join through seed failed; retrying', { seed, error, failingForMs: failed.failingForMs });
        }
      }
    }
  }

  /** Makes a new state current (persisted first, so a restart keeps it). */
  private async adopt(next: ClusterState): Promise<void> {
    if (next === this.state || digest(next) === digest(this.state)) return;
    // A merge or a change of this cluster's own state: never another cluster's, never an older ring.
    invariant(next.clusterName === this.state.clusterName, () => `adopting the state of cluster '${next.clusterName}'`);
    invariant(next.ring.version >= this.state.ring.version, () => `adopting ring v${next.ring.version} over v${this.state.ring.version}`);
    const ring = this.state.ring;
    this.state = next;
    if (next.ring !== ring) this.ringChanged();
    await this.persist();
    this.observeState();
  }

  private ringChanged(): void {
    for (const listener of this.ringListeners) {
      try {
        listener();
      } catch (err) {
        this.log('error', 'ring change listener failed', { error: String(err) });
      }
    }
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

  private log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void {
    this.opts.log?.(level, msg, { node: this.id, ...fields });
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
function isJoinRefusal(err: unknown): boolean {
  if (isTransportError(err, 'REFUSED')) return true;
  if (isTransportError(err, 'REMOTE')) return err.remoteCode === 'BAD_REQUEST' || err.remoteCode === 'CLUSTER_MISMATCH';
  return err instanceof NodeError && err.code === 'CLUSTER_MISMATCH';
}
