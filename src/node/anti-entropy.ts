// Active anti-entropy as a background service beside the node (DYNAMO.md
// "Anti-entropy"; the exchange itself is the pure state machine in
// src/core/aae.ts).
//
// Every `intervalMs` the service takes the next partition this node is a
// primary of (round-robin), picks another primary of it that is not
// suspected (taking turns), and compares the two replicas' TicTac trees:
// root, then branches, segments and keys only where hashes differ. A round
// takes the next `partitionsPerRound` partitions and compares their roots
// with one 'aae.roots' request per peer, then runs the full exchange for the
// first partition whose roots differ (the next round starts at the one after
// it that differs): with Q = 4096 a node may be a primary of every
// partition, and one partition per round would take 11 hours to cover them. Each key
// found different is repaired both ways through the normal merge path: the
// records of both sides are DVV-merged with the bucket's conflict mode, and
// the result is merged into the local engine and sent to the peer as a
// 'kv.merge'. Keys of buckets whose preference list does not hold both nodes
// (a smaller n) are left alone.
//
// Rate limits: one exchange in flight, at most maxKeys repairs per exchange
// (the rest is found by the next ones), and a round is skipped while the
// node's client requests are slow (`shouldYield`).
//
// Peer requests served (bodies msgpack; hashes as big-endian u64 groups):
//   aae.roots    {q: u32 partitions, g:[P,B,S]} → {hashes, skip}  8 bytes each
//                                      (skip: indices of partitions this node is not a primary of)
//   aae.root     {p, g:[P,B,S]}        → {hash}     8 bytes (geometry checked)
//   aae.branches {p}                   → {hashes}   2^B × 8 bytes
//   aae.segments {p, q: u16 branches}  → {hashes}   |q| × 2^S × 8 bytes
//   aae.keys     {p, q: u32 segments}  → {keys}     encodeSegmentKeys
//   aae.get      {items:[{b,k}]}       → {records}  record or null each
import { Counter, type Registry } from 'prom-client';
import {
  AaeExchange,
  type AaeQuery,
  type AaeResult,
  type AaeSide,
  type AaeStep,
  AAE_STEPS,
  DEFAULT_AAE_LIMITS,
  type RepairKey,
  driveExchange,
  encodeSegmentKeys,
} from '../core/aae.js';
import { EngineError, type ConflictMode, type Engine } from '../engine/types.js';
import { isTransportError, type Timer } from '../transport/types.js';
import { invariant } from '../core/types.js';
import { NodeError } from './errors.js';
import { ForegroundLoad } from './foreground.js';
import type { PartitionAaeRecord } from '../api-types.js';
import type { ServiceContext } from './context.js';
import { MAX_AAE_GET_ITEMS, type PeerRequest, type ServiceHandlers, type ServiceMessageType } from './messages.js';

/** What anti-entropy uses of the node. */
export type AntiEntropyContext = Pick<
  ServiceContext,
  'id' | 'metrics' | 'engine' | 'clock' | 'clusterState' | 'hasJoined' | 'bucketProps' | 'preferenceListOf' | 'isSuspected' | 'peerRequest' | 'registerService'
>;
import { sameBytes } from '../util/bytes.js';

export interface AntiEntropyConfig {
  /** Time between rounds (default 10 s). */
  intervalMs: number;
  /**
   * Partitions whose roots a round compares (default 64), in one request per
   * peer; a full exchange runs for the first that differs. A node that is a
   * primary of P partitions covers them all in about P / 64 rounds (4096 at
   * the default Q: 64 rounds, ~11 min at the default interval).
   */
  partitionsPerRound: number;
  /** Start the timer (false: exchanges run only through runRound/exchange, for tests and tools). */
  schedule: boolean;
  maxBranches: number;
  maxSegments: number;
  /** Keys repaired per exchange at most. */
  maxKeys: number;
  /** Deadline of each peer request of an exchange. */
  requestTimeoutMs: number;
  /** Repairs in flight at once within an exchange. */
  repairConcurrency: number;
  /** Skip a round when the p99 of client requests since the last round exceeds this (ms). */
  yieldAboveMs: number;
  /** ... provided at least this many requests completed since the last round. */
  yieldMinSamples: number;
  /** Replaces the latency-based test (e.g. a hook fed by the node's own latency window). */
  shouldYield?: () => boolean | Promise<boolean>;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export const DEFAULT_ANTI_ENTROPY_CONFIG: AntiEntropyConfig = {
  intervalMs: 10_000,
  partitionsPerRound: 64,
  schedule: true,
  ...DEFAULT_AAE_LIMITS,
  requestTimeoutMs: 5_000,
  repairConcurrency: 16,
  yieldAboveMs: 100,
  yieldMinSamples: 20,
};

export interface ExchangeReport extends AaeResult {
  peer: string;
  /** Keys written on each side by the repair. */
  repaired: { local: number; remote: number };
  /** Repair-set keys left alone: not replicated on both nodes (bucket n), or already equal when fetched. */
  skipped: number;
  /** Repair-set keys whose repair failed (retried by a later exchange). */
  failedKeys: number;
  ms: number;
}

export type { PartitionAaeRecord };

interface AaeMetrics {
  exchanges: Counter<'outcome'>;
  repaired: Counter<'side'>;
  bytes: Counter<'step' | 'direction'>;
  repairFailures: Counter;
}

type AaeMessageType = Extract<ServiceMessageType, `aae.${string}`>;
/** Keys per 'aae.get' this node sends. */
const GET_CHUNK = 256;
invariant(GET_CHUNK <= MAX_AAE_GET_ITEMS, 'an aae.get this node sends must be one its peers accept');

export class AntiEntropyService {
  readonly config: AntiEntropyConfig;
  private readonly metrics: AaeMetrics;
  private timer: Timer | null = null;
  private stopped = false;
  private inFlight = false;
  private cursor = 0;
  private turn = 0;
  private round = 0;
  private readonly foreground: ForegroundLoad;
  private warnedGeometry = false;
  /** The last comparison of each partition (at most Q entries). */
  private readonly history = new Map<number, PartitionAaeRecord>();
  /** Progress for metrics (progress()): root compares, and the partitions compared since the last full pass. */
  private partitionsCompared = 0;
  private readonly comparedThisPass = new Set<number>();
  private primaryPartitionCount = 0;
  private fullPasses = 0;
  private lastFullPassMs: number | null = null;

  /** Registers the 'aae.' peer requests on the node; start() starts the rounds. */
  constructor(
    private readonly node: AntiEntropyContext,
    config: Partial<AntiEntropyConfig> = {},
  ) {
    this.config = { ...DEFAULT_ANTI_ENTROPY_CONFIG, ...config };
    this.metrics = registerMetrics(node.metrics.registry);
    this.foreground = new ForegroundLoad(node, this.config);
    node.registerService(this.handlers());
  }

  /** Starts the timer (unless schedule: false). */
  start(): void {
    if (this.config.schedule && !this.stopped && this.timer === null) this.scheduleNext();
  }

  /**
   * A further instance beside the node's own (node.antiEntropy, built by
   * RingkvNode.start): it takes over serving 'aae.' requests. For tests and
   * tools that drive exchanges with their own settings.
   */
  static start(node: AntiEntropyContext, config: Partial<AntiEntropyConfig> = {}): AntiEntropyService {
    const service = new AntiEntropyService(node, config);
    service.start();
    return service;
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
  }

  get running(): boolean {
    return this.inFlight;
  }

  private scheduleNext(): void {
    if (this.stopped) return;
    // Up to 10% jitter so nodes started together do not exchange in lockstep.
    const delay = this.config.intervalMs * (1 + 0.1 * ((this.round * 0.618034) % 1));
    this.timer = this.node.clock.setTimer(delay, () => {
      void this.runRound().finally(() => this.scheduleNext());
    });
  }

  /**
   * One scheduled round: yield check, a root compare of the next
   * partitionsPerRound partitions, and the exchange of the first that
   * differs. Returns that exchange's report; null when every root compared
   * equal or nothing ran.
   */
  async runRound(): Promise<ExchangeReport | null> {
    if (this.stopped || this.inFlight || !this.node.hasJoined) return null;
    try {
      if (await this.shouldYield()) {
        this.metrics.exchanges.inc({ outcome: 'yielded' });
        return null;
      }
      const targets: Array<{ partition: number; peer: string }> = [];
      for (let i = 0; i < this.config.partitionsPerRound; i++) {
        const target = this.nextTarget();
        // Fewer partitions than the budget: each once per round.
        if (!target || targets.some((t) => t.partition === target.partition)) break;
        targets.push(target);
      }
      if (targets.length === 0) return null;
      const differing = await this.compareRoots(targets);
      if (this.stopped || differing.length === 0) return null;
      // The rest of the differing ones come first in the next round.
      if (differing.length > 1) this.cursor = differing[1]!.partition;
      const { partition, peer } = differing[0]!;
      return await this.exchange(partition, peer);
    } catch (err) {
      if (isClosed(err)) this.stop();
      else this.log('warn', 'anti-entropy round failed', { error: String(err) });
      return null;
    }
  }

  /** The targets whose roots differ between this node and their peer, in the order given (one 'aae.roots' per peer). */
  private async compareRoots(targets: ReadonlyArray<{ partition: number; peer: string }>): Promise<Array<{ partition: number; peer: string }>> {
    const engine = this.node.engine;
    const differs = new Set<number>();
    for (const peer of new Set(targets.map((t) => t.peer))) {
      const partitions = targets.filter((t) => t.peer === peer).map((t) => t.partition);
      const reply = await this.node.peerRequest(
        peer,
        'aae.roots',
        { q: encodeIndices(partitions, 4), g: [engine.partitionBits, engine.treeBranchBits, engine.treeSegmentBits] },
        this.config.requestTimeoutMs,
      );
      const theirs = reply.hashes;
      if (theirs.length !== partitions.length * 8) throw new Error('aae.roots: malformed reply');
      const skip = new Set(reply.skip ?? []);
      const mine = engine.treeRoots();
      this.metrics.bytes.inc({ step: 'root', direction: 'sent' }, partitions.length * 4);
      this.metrics.bytes.inc({ step: 'root', direction: 'received' }, theirs.length);
      let inSync = 0;
      partitions.forEach((p, i) => {
        if (skip.has(i)) return;
        if (mine.subarray(p * 8, p * 8 + 8).equals(theirs.subarray(i * 8, i * 8 + 8))) {
          inSync++;
          this.remember(p, peer, 'in_sync', 0, { local: 0, remote: 0 });
        } else differs.add(p);
      });
      this.metrics.exchanges.inc({ outcome: 'in_sync' }, inSync);
      partitions.forEach((p, i) => {
        if (!skip.has(i)) this.comparedThisPass.add(p);
      });
      this.partitionsCompared += partitions.length - skip.size;
    }
    this.notePass();
    return targets.filter((t) => differs.has(t.partition));
  }

  /** What anti-entropy has done (read by the metrics at each scrape). */
  progress(): { partitionsCompared: number; passCompared: number; primaryPartitions: number; fullPasses: number; lastFullPassMs: number | null } {
    return {
      partitionsCompared: this.partitionsCompared,
      passCompared: this.comparedThisPass.size,
      primaryPartitions: this.primaryPartitionCount,
      fullPasses: this.fullPasses,
      lastFullPassMs: this.lastFullPassMs,
    };
  }

  /** A full pass is over once every partition this node is a primary of was compared since the last one (a down peer holds it open). */
  private notePass(): void {
    const q = this.node.clusterState.ring.owners.length;
    const n = this.replicaN();
    let primaries = 0;
    let missing = false;
    for (let p = 0; p < q; p++) {
      if (!this.node.preferenceListOf(p, n).primaries.includes(this.node.id)) continue;
      primaries++;
      if (!this.comparedThisPass.has(p)) missing = true;
    }
    this.primaryPartitionCount = primaries;
    if (missing || primaries === 0) return;
    this.fullPasses++;
    this.lastFullPassMs = this.node.clock.now();
    this.comparedThisPass.clear();
  }

  /** The next partition this node is a primary of, and another primary of it to compare with. */
  nextTarget(): { partition: number; peer: string } | null {
    const state = this.node.clusterState;
    if (!this.geometryOk()) return null;
    const q = state.ring.owners.length;
    const n = this.replicaN();
    for (let i = 0; i < q; i++) {
      const p = (this.cursor + i) % q;
      const { primaries } = this.node.preferenceListOf(p, n);
      if (!primaries.includes(this.node.id)) continue;
      const peers = primaries.filter((m) => m !== this.node.id && state.members[m]?.status !== 'left' && !this.node.isSuspected(m));
      if (peers.length === 0) continue;
      this.cursor = (p + 1) % q;
      return { partition: p, peer: peers[this.turn++ % peers.length]! };
    }
    return null;
  }

  /**
   * Compares and repairs one partition with one peer; with `only.bucket`,
   * repairs the keys of that bucket only (the others count as skipped).
   * Throws if an exchange is already in flight.
   */
  async exchange(partition: number, peer: string, only: { bucket?: Buffer } = {}): Promise<ExchangeReport> {
    if (this.inFlight) throw new Error('an anti-entropy exchange is already in flight');
    this.inFlight = true;
    const started = this.node.clock.now();
    const engine = this.node.engine;
    const report = { repaired: { local: 0, remote: 0 }, skipped: 0, failedKeys: 0 };
    try {
      const fsm = new AaeExchange({
        partition,
        branchBits: engine.treeBranchBits,
        segmentBits: engine.treeSegmentBits,
        maxBranches: this.config.maxBranches,
        maxSegments: this.config.maxSegments,
        maxKeys: this.config.maxKeys,
        offset: (this.round++ * 0.618034) % 1,
      });
      const result = await driveExchange(
        fsm,
        (side, query) =>
          (side === 'local' ? answer(engine, partition, query) : this.askPeer(peer, partition, query)).catch((err: unknown) => {
            if (isClosed(err)) this.stop(); // the node is shutting down: no more rounds
            throw err;
          }),
        async (keys) => {
          Object.assign(report, await this.repair(partition, peer, keys, only.bucket));
        },
      );
      this.metrics.exchanges.inc({ outcome: result.outcome });
      this.remember(partition, peer, result.outcome, result.differing.keys, report.repaired);
      for (const step of AAE_STEPS) {
        this.metrics.bytes.inc({ step, direction: 'sent' }, result.bytes[step].requested);
        this.metrics.bytes.inc({ step, direction: 'received' }, result.bytes[step].received);
      }
      if (result.outcome === 'failed') this.log('warn', 'anti-entropy exchange failed', { partition, peer, error: result.error });
      else if (result.outcome === 'diverged') {
        this.log('info', 'anti-entropy exchange repaired', { partition, peer, ...report.repaired, found: result.differing.keys, bytes: result.totalBytes });
      }
      return { ...result, peer, ...report, ms: this.node.clock.now() - started };
    } finally {
      this.inFlight = false;
    }
  }

  /** Partitions this node is a primary of now (for the transfer service's n), ascending. */
  primaryPartitions(): number[] {
    const q = this.node.clusterState.ring.owners.length;
    const n = this.replicaN();
    const out: number[] = [];
    for (let p = 0; p < q; p++) if (this.node.preferenceListOf(p, n).primaries.includes(this.node.id)) out.push(p);
    return out;
  }

  /** The other primaries of a partition to compare with: members, not left, not suspected. */
  peersOf(partition: number): string[] {
    const state = this.node.clusterState;
    return this.node
      .preferenceListOf(partition, this.replicaN())
      .primaries.filter((m) => m !== this.node.id && state.members[m] !== undefined && state.members[m]!.status !== 'left' && !this.node.isSuspected(m));
  }

  /** The last comparison of a partition, if any since this node started. */
  lastComparison(partition: number): PartitionAaeRecord | undefined {
    return this.history.get(partition);
  }

  private remember(partition: number, peer: string, outcome: AaeResult['outcome'], keysDiffered: number, repaired: { local: number; remote: number }): void {
    const at = this.node.clock.now();
    const lastRepair = repaired.local + repaired.remote > 0 ? { at, peer, keysDiffered, repaired: { ...repaired } } : (this.history.get(partition)?.lastRepair ?? null);
    this.history.set(partition, { at, peer, outcome, keysDiffered, repaired: { ...repaired }, lastRepair });
    invariant(this.history.size <= this.node.clusterState.ring.owners.length, 'anti-entropy history beyond Q partitions');
  }

  /** Whether to skip this round: the recent p99 of the node's client requests is above yieldAboveMs. */
  async shouldYield(): Promise<boolean> {
    if (this.config.shouldYield) return this.config.shouldYield();
    return this.foreground.busy();
  }

  // ---------------------------------------------------------------------------
  // Repair

  private async repair(partition: number, peer: string, keys: RepairKey[], bucket?: Buffer): Promise<Omit<ExchangeReport, keyof AaeResult | 'peer' | 'ms'>> {
    const out = { repaired: { local: 0, remote: 0 }, skipped: 0, failedKeys: 0 };
    const owners = new Set(this.node.clusterState.ring.owners).size;
    const todo: Array<RepairKey & { mode: ConflictMode }> = [];
    for (const k of keys) {
      if (bucket !== undefined && !k.bucket.equals(bucket)) {
        out.skipped++;
        continue;
      }
      const props = this.node.bucketProps(k.bucket.toString('utf8'));
      const { primaries } = this.node.preferenceListOf(partition, Math.min(props.n, owners));
      if (primaries.includes(this.node.id) && primaries.includes(peer)) todo.push({ ...k, mode: props.mode });
      else out.skipped++;
    }
    if (todo.length === 0) return out;

    const engine = this.node.engine;
    const local = await engine.getMany(todo.map((k) => ({ bucket: k.bucket, key: k.key })));
    const remote: Array<Buffer | null> = new Array<Buffer | null>(todo.length).fill(null);
    const wanted = todo.flatMap((k, i) => (k.remote ? [i] : []));
    for (let i = 0; i < wanted.length; i += GET_CHUNK) {
      const chunk = wanted.slice(i, i + GET_CHUNK);
      const reply = await this.node.peerRequest(peer, 'aae.get', { items: chunk.map((j) => ({ b: todo[j]!.bucket, k: todo[j]!.key })) }, this.config.requestTimeoutMs);
      if (reply.records.length !== chunk.length) throw new Error(`aae.get: ${reply.records.length} records for ${chunk.length} keys`);
      chunk.forEach((j, x) => {
        const r = reply.records[x];
        remote[j] = r ? Buffer.from(r) : null;
      });
    }

    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const i = next++;
        const k = todo[i]!;
        const mine = local[i] ?? null;
        const theirs = remote[i] ?? null;
        const present = [mine, theirs].filter((r): r is Buffer => r !== null);
        if (present.length === 0) {
          out.skipped++;
          continue;
        }
        try {
          const merged = engine.reconcile(present, k.mode);
          const fixLocal = mine === null || !sameBytes(mine, merged);
          const fixRemote = theirs === null || !sameBytes(theirs, merged);
          if (!fixLocal && !fixRemote) {
            out.skipped++;
            continue;
          }
          if (fixLocal) {
            await engine.merge({ bucket: k.bucket, key: k.key, record: merged, mode: k.mode, durable: false });
            out.repaired.local++;
            this.metrics.repaired.inc({ side: 'local' });
          }
          if (fixRemote) {
            await this.node.peerRequest(peer, 'kv.merge', { b: k.bucket, k: k.key, record: merged, lww: k.mode === 'lww', durable: false }, this.config.requestTimeoutMs);
            out.repaired.remote++;
            this.metrics.repaired.inc({ side: 'remote' });
          }
        } catch (err) {
          if (isClosed(err)) throw err;
          out.failedKeys++;
          this.metrics.repairFailures.inc();
          // Only at the encoding's 65535 siblings (docs/engine.md "merge"): the replicas stay apart.
          if (err instanceof EngineError && err.code === 'TOO_MANY_SIBLINGS') {
            this.log('error', 'repair refused at the hard sibling maximum: the key\'s replicas cannot converge until a client write with its context resolves the siblings', {
              peer, bucket: k.bucket.toString('utf8'), key: k.key.toString('base64url'), error: err.message,
            });
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.config.repairConcurrency, todo.length)) }, worker));
    return out;
  }

  // ---------------------------------------------------------------------------
  // Peer side

  private async askPeer(peer: string, partition: number, query: AaeQuery): Promise<Uint8Array> {
    const engine = this.node.engine;
    const t = this.config.requestTimeoutMs;
    switch (query.step) {
      case 'root':
        return (await this.node.peerRequest(peer, 'aae.root', { p: partition, g: [engine.partitionBits, engine.treeBranchBits, engine.treeSegmentBits] }, t)).hash;
      case 'branches':
        return (await this.node.peerRequest(peer, 'aae.branches', { p: partition }, t)).hashes;
      case 'segments':
        return (await this.node.peerRequest(peer, 'aae.segments', { p: partition, q: encodeIndices(query.branches, 2) }, t)).hashes;
      case 'keys':
        return (await this.node.peerRequest(peer, 'aae.keys', { p: partition, q: encodeIndices(query.segments, 4) }, t)).keys;
    }
  }

  /** The 'aae.' requests this node serves (bodies decoded by the node: src/node/messages.ts). */
  private handlers(): ServiceHandlers<AaeMessageType> {
    const engine = this.node.engine;
    return {
      'aae.get': async (_from, req) => {
        this.checkJoined();
        return { records: await engine.getMany(req.items.map((it) => ({ bucket: it.b, key: it.k }))) };
      },
      'aae.roots': async (_from, req) => this.serveRoots(req),
      'aae.root': async (_from, req) => {
        this.checkPartition(req.p);
        this.checkGeometry(req.g);
        return { hash: await answer(engine, req.p, { step: 'root' }) };
      },
      'aae.branches': async (_from, req) => {
        this.checkPartition(req.p);
        return { hashes: await answer(engine, req.p, { step: 'branches' }) };
      },
      'aae.segments': async (_from, req) => {
        this.checkPartition(req.p);
        return { hashes: await answer(engine, req.p, { step: 'segments', branches: decodeIndices(req.q, 2, 2 ** engine.treeBranchBits) }) };
      },
      'aae.keys': async (_from, req) => {
        this.checkPartition(req.p);
        return { keys: await answer(engine, req.p, { step: 'keys', segments: decodeIndices(req.q, 4, 2 ** (engine.treeBranchBits + engine.treeSegmentBits)) }) };
      },
    };
  }

  private checkJoined(): void {
    if (!this.node.hasJoined) throw new NodeError('UNAVAILABLE', 'not joined yet');
  }

  /** A partition of this engine that this node is a primary of (the ring may differ from the asker's). */
  private checkPartition(p: number): void {
    this.checkJoined();
    if (p >= 2 ** this.node.engine.partitionBits) throw new NodeError('BAD_REQUEST', `partition ${p} out of range (this node has ${2 ** this.node.engine.partitionBits})`);
    if (!this.geometryOk()) throw new NodeError('UNAVAILABLE', 'ring and engine partition counts differ');
    if (!this.node.preferenceListOf(p, this.replicaN()).primaries.includes(this.node.id)) {
      throw new NodeError('BAD_REQUEST', `${this.node.id} is not a primary of partition ${p}`);
    }
  }

  private checkGeometry(g: readonly number[]): void {
    const engine = this.node.engine;
    const mine = [engine.partitionBits, engine.treeBranchBits, engine.treeSegmentBits];
    if (g.some((v, i) => v !== mine[i])) {
      throw new NodeError('BAD_REQUEST', `tree geometry differs: asked ${JSON.stringify(g)}, this node has ${JSON.stringify(mine)}`);
    }
  }

  /** Root hashes of the asked partitions; those this node is not a primary of are listed in `skip` (its ring differs). */
  private serveRoots(req: PeerRequest<'aae.roots'>): { hashes: Buffer; skip: number[] } {
    this.checkJoined();
    const engine = this.node.engine;
    if (!this.geometryOk()) throw new NodeError('UNAVAILABLE', 'ring and engine partition counts differ');
    this.checkGeometry(req.g);
    const partitions = decodeIndices(req.q, 4, 2 ** engine.partitionBits);
    const roots = engine.treeRoots();
    const hashes = Buffer.alloc(partitions.length * 8);
    const skip: number[] = [];
    const n = this.replicaN();
    partitions.forEach((p, i) => {
      if (!this.node.preferenceListOf(p, n).primaries.includes(this.node.id)) skip.push(i);
      else roots.copy(hashes, i * 8, p * 8, p * 8 + 8);
    });
    return { hashes, skip };
  }

  // ---------------------------------------------------------------------------

  /** Replicas per partition: the largest n of any bucket (default 3), at most the number of owners. */
  private replicaN(): number {
    const state = this.node.clusterState;
    let n = this.node.bucketProps('\u0000default').n;
    for (const entry of Object.values(state.buckets)) n = Math.max(n, entry.props.n);
    return Math.min(n, new Set(state.ring.owners).size);
  }

  private geometryOk(): boolean {
    const ok = this.node.clusterState.ring.partitionBits === this.node.engine.partitionBits;
    if (!ok && !this.warnedGeometry) {
      this.warnedGeometry = true;
      this.log('error', 'anti-entropy disabled: the ring and the engine have different partition counts', {
        ring: this.node.clusterState.ring.partitionBits,
        engine: this.node.engine.partitionBits,
      });
    }
    return ok;
  }

  private log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void {
    this.config.log?.(level, msg, { node: this.node.id, ...fields });
  }
}

/** Starts a further anti-entropy instance on a node (see AntiEntropyService.start; the node's own is node.antiEntropy). */
export function startAntiEntropy(node: AntiEntropyContext, config: Partial<AntiEntropyConfig> = {}): AntiEntropyService {
  return AntiEntropyService.start(node, config);
}

/** One side's answer to a query, from its engine, in wire form. */
export async function answer(engine: Engine, partition: number, query: AaeQuery): Promise<Buffer> {
  switch (query.step) {
    case 'root':
      return engine.treeRoots().subarray(partition * 8, partition * 8 + 8);
    case 'branches':
      return engine.treeBranches(partition);
    case 'segments':
      return Buffer.concat(query.branches.map((b) => engine.treeSegments(partition, b)));
    case 'keys':
      return encodeSegmentKeys(await engine.segmentKeys(partition, query.segments));
  }
}

function encodeIndices(list: readonly number[], width: 2 | 4): Buffer {
  const out = Buffer.allocUnsafe(list.length * width);
  list.forEach((v, i) => (width === 2 ? out.writeUInt16BE(v, i * 2) : out.writeUInt32BE(v, i * 4)));
  return out;
}

function decodeIndices(buf: Buffer, width: 2 | 4, limit: number): number[] {
  if (buf.length % width !== 0 || buf.length / width > limit) throw new NodeError('BAD_REQUEST', 'bad index list');
  const out: number[] = [];
  for (let off = 0; off < buf.length; off += width) {
    const x = width === 2 ? buf.readUInt16BE(off) : buf.readUInt32BE(off);
    if (x >= limit) throw new NodeError('BAD_REQUEST', 'index out of range');
    out.push(x);
  }
  return out;
}

function isClosed(err: unknown): boolean {
  return (err instanceof EngineError && err.code === 'CLOSED') || isTransportError(err, 'CLOSED');
}

function registerMetrics(registry: Registry): AaeMetrics {
  const counter = <L extends string>(name: string, help: string, labelNames: L[]): Counter<L> =>
    (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter<L>({ name, help, labelNames, registers: [registry] });
  return {
    exchanges: counter('ringkv_aae_exchanges_total', 'Anti-entropy exchanges started by this node, by outcome (in_sync, diverged, failed, yielded)', ['outcome']),
    repaired: counter('ringkv_aae_keys_repaired_total', 'Keys written by anti-entropy repair, by the side written (local, remote)', ['side']),
    bytes: counter('ringkv_aae_bytes_total', 'Tree and key-list payload bytes exchanged by anti-entropy, by step and direction', ['step', 'direction']),
    repairFailures: counter('ringkv_aae_repair_failures_total', 'Anti-entropy key repairs that failed (retried by a later exchange)', []),
  };
}

export type { AaeSide, AaeStep };
