// A deterministic cluster simulator: K RingkvNode runtimes (each with its own
// in-memory PureEngine) on one seeded SimNetwork, a random client workload
// issued at virtual times, network faults while it runs (delay, reordering,
// drops, one node partitioned for a while, one node crashed and restarted —
// sometimes with its data lost), then a quiet period and the invariant
// checks. Everything random comes from the seed, so a failing seed
// replays exactly: `RINGKV_SIM_SEEDS=1234 npx vitest run test/sim`.
//
// Phases of one run:
//   1. join   — n1 starts alone; the others start at random times with seeds
//               [n1] and join on their gossip tick. Runs (with the seed's delay
//               and drop rate) until every node holds the same state with all
//               K members valid and a settled, balanced ring. The workload
//               waits for this: partition hand-off does not exist yet, so data
//               written under an older ring would legitimately be stranded.
//   2. load   — client ops at random virtual times on random nodes, with one
//               node isolated from the rest for a while (writes go on through
//               fallbacks holding hints: sloppy quorum), and one node crashed
//               and restarted: either on its SAME disk (a process crash or
//               power loss: every engine runs on a SimDisk, src/engine/pure/
//               store.ts "Storage model", so the restarted engine holds only
//               what was flushed — by a durable write, an explicit flush or
//               the periodic flush every 500 ms of virtual time — and the rest
//               is lost) or, with probability dataLossChance, on a fresh disk
//               with a new epoch (it rejoins through a seed and is
//               refilled by hinted handoff and read repair). In a share of
//               the seeds (crashIsolatedChance) the crash hits the isolated
//               node during its isolation: its w = 1 writes then exist only
//               there, in memory unless they were durable. A client op on
//               a crashed node fails at once (no connection); one in flight
//               there fails when the node dies (the client sees the
//               connection drop), whatever the node did with it.
//      In seeds without data loss a fifth of the writes use w = 1; one that
//      reaches a node cut off from every primary of its key is coordinated
//      there as hints under a one-off actor (fallback coordination).
//      A fifth of the writes (own stream) ask for dw = 1.
//      Deletes are 15% of the ops, plus two "tail" deletes of keys that get
//      no later op. Tombstones are reaped (reapDelayMs 300, shorter than a
//      request's deadline) and every node runs anti-entropy (every 200 ms).
//   3. quiet  — faults stop (heal, no drops, delays <= 10 ms); in-flight ops
//               settle; gossip and hinted handoff run; every hint must be
//               delivered (hint stores empty) before the final reads.
//   4. check  — a read of every key with r = n from one node, the read-repair
//               window passes, then the invariants (see checkInvariants).
//
// Invariants (each violation is reported with the seed and a trace tail):
//   LOST      every acknowledged write is in the final record or was
//             superseded by a client write whose context covered its dot
//             (the precise definition is at the check) — unless the write
//             was acknowledged with dw = 0 and every copy of it was lost
//             unflushed in a crash (docs/durability.md): at each crash the
//             harness records the dots whose last copy the crash dropped
//             (held in the crashed node's memory only, not on its disk, and
//             by no other node's objects or hints). A dw >= 1 write is never
//             excused (except by a lost disk). Checked during the run too:
//             right after each crash and every 250 ms, every acknowledged
//             write must be held (covered by an object's or a hint's context)
//             by some node — a running node's memory, a crashed one's disk;
//   DIVERGED  after the r = n read and its repairs, every primary of a key
//             holds the same bytes as the read returned; no stray copies;
//   DOT REUSED / PHANTOM  one dot names one value for a key everywhere, and
//             every stored value was written by some client;
//   ONE WRITE, TWO DOTS  one client write (its own value) is held under one
//             dot only: a forward retried after a lost reply must not be
//             coordinated again (issue #9, finding 2);
//   HINTS     after the quiet period every node's hint store is empty
//             (engine.hintTargets()), checked again at the very end;
//   UNDER-REPLICATED  (no data loss) then, before the final reads repair
//             anything, every acknowledged write is held by >= W primaries
//             (hinted handoff brought the hinted copies home);
//   NO RESURRECTION  once a replica reaped a key, no read started after
//             that and no replica at the end holds a value whose dot the
//             reaped record's context covers (deleted history); a value
//             written after the reap under such a dot is a DOT REUSED (the
//             counter hazard). A reaped delete counts as holding for LOST
//             (the key reads absent), and the reaped context stands in for
//             the final one;
//   STALE READ  (transfer-read mode only, SimConfig.transferReads) an
//             r = pr = n read during a join or leave misses a write
//             acknowledged (with pw = w) before it began;
//   membership  all nodes hold the same state digest, all K nodes are valid
//             members, the ring is balanced (floor/ceil of Q/S each), and no
//             member ever held a ring not computed by the claimant (STRAY RING).
import { isBalanced } from '../../src/core/claim.js';
import { type ClusterState, DEFAULT_BUCKET_PROPS, claimantOf, digest, maybeReclaim, validMembers, zonesOf } from '../../src/core/membership.js';
import { ownerCounts, partitionOf, preferenceList } from '../../src/core/ring.js';
import { type Context, type DecodedRecord, decodeContext, decodeRecord, recordContextBytes } from '../../src/record/codec.js';
import { PureEngine, SimDisk } from '../../src/engine/pure/index.js';
import type { AntiEntropyService } from '../../src/node/anti-entropy.js';
import { RingkvNode } from '../../src/node/node.js';
import type { TransferService } from '../../src/node/transfer.js';
import { SimNetwork, type SimTraceEvent } from '../../src/transport/sim-transport.js';
import { Rand } from '../helpers/random.js';

export const BUCKET = Buffer.from('b');

export interface SimConfig {
  /** Client ops per seed: [min, max]. */
  ops: [number, number];
  /** Length of the load phase in virtual ms: [min, max]. */
  loadMs: [number, number];
  /** Quiet time after the last client op settled, before the final reads. */
  quietMs: number;
  /** Give up on the join phase after this much virtual time. */
  joinLimitMs: number;
  /** Trace entries kept for the failure report. */
  traceKeep: number;
  /** Upper bound of the per-seed message delay (the lower bound is 1 ms). */
  maxDelayMs: number;
  /** Upper bound of the per-seed drop rate. */
  maxDropRate: number;
  /** How long the one node stays isolated: [min, max] ms. */
  isolateMs: [number, number];
  /** How long the crashed node stays down: [min, max] ms. */
  crashMs: [number, number];
  /** Probability that the crashed node comes back with its data lost. */
  dataLossChance: number;
  /** Extra virtual time to wait for hint stores to drain after the quiet period. */
  handoffLimitMs: number;
  /** Fraction of seeds whose membership changes during the load (a node joins and/or one leaves). */
  membershipChangeChance: number;
  /** A leaving node is stopped once it has nothing left to transfer, or after this long. */
  leaveLimitMs: number;
  /**
   * Fraction of client writes made with w = 1 (seeds without data loss only:
   * a single acknowledged copy does not survive losing its disk). Some of
   * them reach a node that cannot reach any primary of the key: it then
   * coordinates the write itself as hints (fallback coordination).
   */
  w1Chance: number;
  /**
   * Transfer-read mode (test/sim/transfer-reads.sim.test.ts): every seed has
   * a join and/or a leave besides the usual faults (but no data loss);
   * writes need pw = w (so an acknowledged write has w copies at primaries,
   * not only hints) and probe reads with r = pr = n run every probeEveryMs
   * from the start of the load until the membership change has settled:
   * STALE READ if one misses a write acknowledged before it. With w + r > n
   * and no fallback in either, only a replica that serves a partition it does
   * not hold yet can break it.
   */
  transferReads: boolean;
  probeEveryMs: number;
  /** Fraction of client writes made with dw = 1 (own random stream). */
  dw1Chance: number;
  /** Fraction of seeds whose crash hits the isolated node while it is isolated (own random stream). */
  crashIsolatedChance: number;
  /**
   * A deliberately broken engine (SimStorage.ackDurableBeforeFlush): durable
   * writes are acknowledged before they are flushed. Only for the test that
   * shows the simulator reports it as LOST.
   */
  ackDurableBeforeFlush: boolean;
  /**
   * The bucket's read_fanout (docs/cluster.md "Read fan-out"), set through n1
   * once the cluster formed (before the load): 'quorum' reads ask R replicas
   * first (test/sim/read-fanout.sim.test.ts).
   */
  readFanout: 'all' | 'quorum';
  /**
   * Transfer-read mode: the probes' r (= pr); 'n' (default) or the bucket's
   * r. With 'r' STALE READ is read-your-writes at R + W > N (writes with
   * w + r <= n are not judged).
   */
  probeR: 'n' | 'r';
  /**
   * Mixed bucket n (test/sim/transfer-mixed-n.sim.test.ts): key i lives in a
   * bucket of n = bucketNs[i % length] (the default bucket 'b' for the
   * default n, 'b<n>' with its props set before the load for the others).
   * Then a copy of a key at a node that was never among its n primaries
   * under any ring a node adopted is a STRAY COPY (a transfer planned for
   * the wrong n). Empty: the one bucket 'b'.
   */
  bucketNs: number[];
}

export const DEFAULT_SIM_CONFIG: SimConfig = {
  ops: [40, 80],
  loadMs: [4_000, 10_000],
  quietMs: 5_000,
  joinLimitMs: 60_000,
  traceKeep: 60,
  maxDelayMs: 30,
  maxDropRate: 0.05,
  isolateMs: [500, 4_000],
  crashMs: [300, 3_000],
  dataLossChance: 1 / 3,
  handoffLimitMs: 10_000,
  membershipChangeChance: 1 / 3,
  leaveLimitMs: 30_000,
  w1Chance: 0.2,
  transferReads: false,
  probeEveryMs: 50,
  dw1Chance: 0.2,
  crashIsolatedChance: 0.2,
  ackDurableBeforeFlush: false,
  readFanout: 'all',
  probeR: 'n',
  bucketNs: [],
};

/** Joins and leaves with r = n reads all along (see SimConfig.transferReads). */
export const TRANSFER_READS_SIM_CONFIG: SimConfig = { ...DEFAULT_SIM_CONFIG, membershipChangeChance: 1, transferReads: true, w1Chance: 0.5 };
/** Transfer-read mode with keys in buckets of n = 2, 3 (the default) and 5 (see SimConfig.bucketNs). */
export const TRANSFER_MIXED_N_SIM_CONFIG: SimConfig = { ...TRANSFER_READS_SIM_CONFIG, bucketNs: [2, 3, 5] };
/** The same with n = 1 buckets too (test/sim/forwarded-write.sim.test.ts; not every seed passes yet: docs/cluster.md). */
export const TRANSFER_WITH_N1_SIM_CONFIG: SimConfig = { ...TRANSFER_READS_SIM_CONFIG, bucketNs: [1, 2, 3, 5] };

// Reaping on, with a delay shorter than a request's deadline: a retried copy
// of an old write can still land on a fallback as a hint after the reap
// check, which the reap floors must then neutralise.
const NODE_CONFIG = { requestTimeoutMs: 500, gossipIntervalMs: 1_000, readRepairWindowMs: 50, handoffIntervalMs: 1_000, reapDelayMs: 300 };
/** Anti-entropy on every node, often enough to run several rounds over every partition during the quiet period. */
const AAE_CONFIG = { intervalMs: 200, requestTimeoutMs: 500, shouldYield: () => false };
/** Partition transfer on every node, as the server runs it, with short intervals. */
const TRANSFER_CONFIG = { intervalMs: 50, catchUpAfterMs: 1_000, timeoutMs: 1_000, receiveCheckMs: 1_000, receiveLimitMs: 20_000, receiveGoneMs: 10_000 };

type OpKind = 'put' | 'rw' | 'del';

interface Dot {
  actor: string;
  counter: number;
}

/** One client operation and what became of it. */
export interface ClientOp {
  id: number;
  kind: OpKind;
  node: string;
  key: string;
  at: number;
  /** The value written (null: a delete). */
  value: string | null;
  /** Write quorum when not the bucket's. */
  w?: number;
  /** Durable write quorum when not the bucket's (0). */
  dw?: number;
  /** The newest ring any running node held when the write was acknowledged. */
  ringAtAck?: number;
  /** Set once a put/delete was actually issued: the context it carried (null: blind). */
  context?: Buffer | null;
  outcome: 'pending' | 'ok' | 'fail';
  error?: string;
  doneAt?: number;
  /**
   * For an acknowledged write, the dots that may be the new version in the
   * returned record: siblings with the written value (or tombstones) that the
   * op's own context did not cover. Normally one; two when a forwarded write
   * was coordinated twice (first coordinator's reply lost, retried on another).
   */
  dots?: Dot[];
}

export interface SimResult {
  seed: number;
  /** Outcome log: identical for identical seeds. */
  log: string[];
  violations: string[];
  /** The last traceKeep lines of client ops, faults and node logs, then the last messages. */
  traceTail: string[];
  stats: {
    nodes: number;
    partitionBits: number;
    keys: number;
    ops: number;
    acked: number;
    failed: number;
    virtualMs: number;
    events: number;
    /** Copies of writes sent to fallbacks, hints stored and hints delivered, summed over nodes (and incarnations). */
    fallbackWrites: number;
    hintsStored: number;
    hintsDelivered: number;
    /** Whether the crashed node lost its data. */
    dataLoss: boolean;
    /** Tombstones reaped (replica reaps, summed over nodes) and keys with at least one reap. */
    reaped: number;
    reapedKeys: number;
    /** Reaps coordinated, by outcome (reaped, or why the tombstone was kept). */
    reapOutcomes: Record<string, number>;
    /** Anti-entropy keys repaired, summed over nodes. */
    aaeRepaired: number;
    /** Membership change during the load: the node that joined and the one that left, if any. */
    joinedDuringLoad: string | null;
    leftDuringLoad: string | null;
    /** Fallbacks still holding hints for the node that left, as 'holder→target'. */
    strandedHints: string;
    /** Client reads that saw a reaped value through a coordinator on an older ring (each is also a violation). */
    staleRingResurrections: number;
    /** Objects sent by partition transfers, summed over nodes (and incarnations). */
    transferred: number;
    /** Replica reads sent to a giver because the replica was still receiving the partition. */
    transferReads: number;
    /** Writes coordinated by a node that could reach no primary of the key (stored as hints). */
    fallbackCoordinated: number;
    /** Transfer-read mode: r = n probe reads that answered, and that failed (unavailable is allowed). */
    probeReads: number;
    probeReadsFailed: number;
    /** Acknowledged dw = 0 writes lost because every copy was unflushed at a crash (allowed by docs/durability.md). */
    lostUnflushed: number;
    /** Dots whose last copy a crash dropped (held unflushed by the crashed node only). */
    droppedDots: number;
    /** Reads coordinated (every outcome), and peer kv.get requests served for them (the read fan-out's cost). */
    gets: number;
    replicaGets: number;
    /** Fan-out quorum: replicas asked beyond the first R, by reason. */
    readExtraAsks: Record<string, number>;
  };
}

/** Per key, the contexts of the records a node holds (its object and its hints). */
type Held = Map<string, Context[]>;

/** A 32-bit seed for a sub-stream of `seed` (so the streams do not shift each other). */
function subSeed(seed: number, salt: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(salt + 0x27d4eb2f, 0xc2b2ae35);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h | 0;
}

function uniform(rand: Rand): () => number {
  return () => rand.float();
}

function dotStr(d: Dot): string {
  return `${d.actor.split(':')[0]}.${d.counter}`;
}

function sibDot(s: { actor: Buffer; counter: number }): Dot {
  return { actor: s.actor.toString('utf8'), counter: s.counter };
}

function covers(ctx: Context, d: Dot): boolean {
  const e = ctx.find((x) => x.actor.toString('utf8') === d.actor);
  return e !== undefined && e.counter >= d.counter;
}

function describeRecord(rec: DecodedRecord): string {
  const sibs = rec.siblings.map((s) => `${dotStr(sibDot(s))}=${s.tombstone ? '†' : s.value.toString('utf8')}`).join(',');
  const ctx = rec.context.map((e) => `${e.actor.toString('utf8').split(':')[0]}:${e.counter}`).join(',');
  return `[${sibs}] ctx{${ctx}}`;
}

function errCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : String(err);
}

/** Ring buffer of trace lines; formatting is deferred to the failure report. */
class Trace {
  private readonly items: Array<SimTraceEvent | string> = [];
  private next = 0;
  constructor(private readonly keep: number) {}
  push(e: SimTraceEvent | string): void {
    if (this.items.length < this.keep) this.items.push(e);
    else {
      this.items[this.next] = e;
      this.next = (this.next + 1) % this.keep;
    }
  }
  tail(): string[] {
    const ordered = [...this.items.slice(this.next), ...this.items.slice(0, this.next)];
    return ordered.map((e) =>
      typeof e === 'string'
        ? e
        : `${e.at} net ${e.event} ${e.kind} ${e.from}->${e.to} ${e.type}${e.id !== undefined ? `#${e.id}` : ''}${e.reason ? ` (${e.reason})` : ''}`,
    );
  }
}

export async function runSim(seed: number, config: SimConfig = DEFAULT_SIM_CONFIG): Promise<SimResult> {
  const rand = new Rand(subSeed(seed, 1));
  const k = rand.int(3, 7);
  const partitionBits = rand.int(4, 5);
  const keyCount = rand.int(5, 10);
  const opCount = rand.int(config.ops[0], config.ops[1]);
  const maxDelay = rand.int(Math.min(5, config.maxDelayMs), config.maxDelayMs);
  const dropRate = rand.int(0, Math.round(config.maxDropRate * 1000)) / 1000;
  const ids = Array.from({ length: k }, (_, i) => `n${i + 1}`);
  const keys = Array.from({ length: keyCount }, (_, i) => `k${i}`);
  // Each key's bucket (see SimConfig.bucketNs): names and buffers.
  const bucketNames = new Map(keys.map((key, i) => {
    const n = config.bucketNs.length === 0 ? DEFAULT_BUCKET_PROPS.n : config.bucketNs[i % config.bucketNs.length]!;
    return [key, n === DEFAULT_BUCKET_PROPS.n ? BUCKET.toString('utf8') : `b${n}`];
  }));
  const bucketName = (key: string): string => bucketNames.get(key)!;
  const bucketBuffers = new Map([...new Set(bucketNames.values())].map((name) => [name, Buffer.from(name)]));
  const bucketOf = (key: string): Buffer => bucketBuffers.get(bucketName(key))!;
  /** Every ring any node adopted (by version and claimant): the stray-copy check's "was ever a primary". */
  const adoptedRings = new Map<string, ClusterState['ring']>();

  const log: string[] = [];
  const violations: string[] = [];
  // Two tails: client ops, faults and node logs; and raw network messages.
  const trace = new Trace(config.traceKeep);
  const netTrace = new Trace(config.traceKeep);
  let events = 0;
  const note = (line: string): void => {
    const l = `${network.now()} ${line}`;
    log.push(l);
    trace.push(l);
  };

  const network: SimNetwork = new SimNetwork({
    random: uniform(new Rand(subSeed(seed, 2))),
    minDelayMs: 1,
    maxDelayMs: maxDelay,
    dropRate,
    trace: (e) => {
      events++;
      netTrace.push(e);
    },
  });
  note(`seed ${seed}: ${k} nodes, Q=${2 ** partitionBits}, ${keyCount} keys, ${opCount} ops, delay 1..${maxDelay} ms, drop ${dropRate}`);

  const ops: ClientOp[] = [];
  const strayRings = new Set<string>();

  // Dot uniqueness: one dot (per key) names one version everywhere. Every
  // record a client or the final check sees is recorded here; a dot seen with
  // two different values means two writes shared a dot (an actor/counter bug).
  const dotValues = new Map<string, string>();
  const written = new Set(['†']);
  // Reaps, as the replicas report them: the key, the reaped record's context
  // and when. Every dot that context covers is deleted history (the record
  // was all tombstones), so from then on:
  //   NO RESURRECTION  no read that started after the reap, and no replica at
  //             the end, holds a value whose dot the reaped context covers —
  //             across crashes, data loss, hints, read repair and
  //             anti-entropy. A value written by a client AFTER the reap
  //             under such a dot is reported as a reused dot instead (the
  //             counter hazard of docs/engine.md "reap").
  const reaps: Array<{ key: string; ctx: Context; at: number; node: string; ringVersion: number }> = [];
  const reapedCovers = (key: string, d: Dot): boolean => reaps.some((r) => r.key === key && covers(r.ctx, d));
  /** Value → the op that wrote it (for the reused-dot report). */
  const writerOf = new Map<string, ClientOp>();
  /** Reads coordinated under an older ring than a reaper's that returned a reaped value (must stay empty). */
  const staleRingResurrections: string[] = [];
  const valueDots = new Map<string, string>();
  let lostUnflushedCount = 0;
  // A crash that loses a node's unflushed coordinated writes rolls its key
  // counters back; the engine then writes as a new actor (a new epoch after an
  // unclean shutdown), so no dot is issued twice. Dots of the crashed node's
  // own actor that its disk lost are recorded here, so that a reuse of one
  // (seed 65 before the fix) is named for what it is.
  const rolledBack = new Set<string>();
  const observe = (key: string, rec: DecodedRecord, where: string, since: number, coordinatorRing?: number): void => {
    for (const sib of rec.siblings) {
      if (!sib.tombstone) {
        const d = sibDot(sib);
        const reap = reaps.find((r) => r.key === key && r.at <= since && covers(r.ctx, d));
        // A reap needs every member to answer from the reaper's ring, so a
        // former replica still routing by an older ring (e.g. isolated through
        // a join) cannot return the reaped value either: that is a violation too.
        if (reap && coordinatorRing !== undefined && coordinatorRing < reap.ringVersion) {
          staleRingResurrections.push(`${key} ${dotStr(d)} (${where}, ring v${coordinatorRing} < v${reap.ringVersion})`);
          violations.push(`NO RESURRECTION broken (stale ring): ${key} ${sib.value.toString('utf8')} at ${dotStr(d)} returned by a coordinator on ring v${coordinatorRing} after a reap on v${reap.ringVersion} (${where})`);
        } else if (reap) {
          const v = sib.value.toString('utf8');
          const writer = writerOf.get(v);
          violations.push(
            writer && writer.at >= reap.at
              ? `DOT REUSED after reap: ${key} ${v} (op${writer.id}, issued at ${writer.at}) got ${dotStr(d)}, covered by the context reaped at ${reap.node} at ${reap.at} (${where})`
              : `NO RESURRECTION broken: ${key} ${v} at ${dotStr(d)} seen (${where}, since ${since}) after ${reap.node} reaped it at ${reap.at}`,
          );
        }
      }
      const d = `${key}/${sib.actor.toString('utf8')}/${sib.counter}`;
      const v = sib.tombstone ? '†' : sib.value.toString('utf8');
      const before = dotValues.get(d);
      if (before === undefined) dotValues.set(d, v);
      else if (before !== v) {
        const why = rolledBack.has(d) ? ': reused after a crash lost it unflushed (counter rollback)' : '';
        violations.push(`DOT REUSED ${key} ${dotStr(sibDot(sib))} holds ${before} and ${v} (${where})${why}`);
      }
      if (!written.has(v)) violations.push(`PHANTOM value ${JSON.stringify(v)} at ${dotStr(sibDot(sib))} (${where})`);
      if (!sib.tombstone) {
        // ONE WRITE, ONE DOT: every client write has its own value, so a value under two dots
        // is one write coordinated twice (issue #9 finding 2: a retried forward).
        const first = valueDots.get(`${key}/${v}`);
        if (first === undefined) valueDots.set(`${key}/${v}`, d);
        else if (first !== d) violations.push(`ONE WRITE, TWO DOTS: ${key} ${v} under ${first} and ${d} (${where})`);
      }
    }
  };

  // --- phase 1: start and join --------------------------------------------
  const engines = new Map<string, PureEngine>();
  /** Each node's durable layer: it survives a crash (a data loss replaces it). */
  const disks = new Map<string, SimDisk>();
  /** A node's engine on its disk, flushing every 500 ms on the node's current clock (a crashed incarnation's timers stop). */
  const openEngine = async (id: string, epoch: string, disk: SimDisk): Promise<PureEngine> => {
    disks.set(id, disk);
    const engine = await PureEngine.open({ nodeId: id, epoch, partitionBits }, { disk, clock: network.clock(id), ackDurableBeforeFlush: config.ackDurableBeforeFlush });
    engines.set(id, engine);
    downHeld.delete(id);
    return engine;
  };
  /** What a crashed node holds until its engine is reopened: what its disk kept. */
  const downHeld = new Map<string, Held>();
  /** Dots (key/actor/counter) whose last copy a crash dropped, and whether a lost disk took them. */
  const lastCopyLost = new Map<string, { node: string; at: number; diskLost: boolean }>();
  const nodes = new Map<string, RingkvNode>();
  /** Every incarnation that ran (for metrics). */
  const incarnations: RingkvNode[] = [];
  let lostDisks = 0;
  const startFailures: string[] = [];
  /** Crashed nodes, until their new incarnation has started. */
  const down = new Set<string>();
  /** Background services of each node's current incarnation (stopped on a crash or a stop). */
  const services = new Map<string, { aae: AntiEntropyService; transfers: TransferService }>();
  const transferServices: TransferService[] = [];
  const stopServices = (id: string): void => {
    const s = services.get(id);
    if (!s) return;
    s.aae.stop();
    s.transfers.stop();
    services.delete(id);
  };
  const nodeRands = new Map(ids.map((id, i) => [id, new Rand(subSeed(seed, 100 + i))]));
  // The membership change (drawn from its own stream, so seeds without one run as before).
  const mrand = new Rand(subSeed(seed, 3));
  const changeMembers = mrand.chance(config.membershipChangeChance);
  const changeRoll = mrand.int(0, 2); // 0: a join, 1: a leave, 2: both
  const joiner = changeMembers && (changeRoll !== 1 || k < 4) ? `n${k + 1}` : null;
  // A leave only with >= 4 nodes, so N = 3 replicas remain.
  const leaveWanted = changeMembers && changeRoll !== 0 && k >= 4;
  if (joiner) nodeRands.set(joiner, new Rand(subSeed(seed, 100 + k)));
  const startNode = (id: string, seeds: string[]): void => {
    RingkvNode.start({
      id,
      address: id,
      clusterName: 'sim',
      partitionBits,
      seeds,
      engine: engines.get(id)!,
      transport: network.transport(id),
      clock: network.clock(id),
      random: uniform(nodeRands.get(id)!),
      config: NODE_CONFIG,
      antiEntropy: AAE_CONFIG,
      transfers: TRANSFER_CONFIG,
      log: (level, msg, fields) => trace.push(`${network.now()} ${id} ${level} ${msg} ${fields ? JSON.stringify(fields) : ''}`),
      onReap: (e) => {
        const rec = decodeRecord(e.record);
        reaps.push({ key: e.key.toString('utf8'), ctx: rec.context, at: network.now(), node: id, ringVersion: nodes.get(id)?.clusterState.ring.version ?? 0 });
        note(`${id} reaped ${e.key.toString('utf8')} ${describeRecord(rec)}`);
      },
    }).then(
      async (node) => {
        // The production composition (RingkvNode.start built both).
        services.set(id, { aae: node.antiEntropy, transfers: node.transfers });
        const noteRing = () => {
          const r = node.clusterState.ring;
          adoptedRings.set(`${r.version} ${r.claimant}`, r);
        };
        noteRing();
        node.onRingChange(noteRing);
        transferServices.push(node.transfers);
        nodes.set(id, node);
        down.delete(id);
        incarnations.push(node);
        note(`${id} started`);
      },
      (err: unknown) => startFailures.push(`${id}: ${String(err)}`),
    ).catch((err: unknown) => startFailures.push(`${id}: ${String(err)}`));
  };
  for (const [i, id] of ids.entries()) {
    await openEngine(id, (i + 1).toString(16).padStart(16, '0'), new SimDisk());
    const startAt = i === 0 ? 0 : rand.int(0, 3_000);
    network.schedule(startAt, () => startNode(id, i === 0 ? [] : [ids[0]!]));
  }

  const agreed = (): ClusterState | null => {
    if (nodes.size !== k) return null;
    const all = ids.map((id) => nodes.get(id)!);
    if (!all.every((n) => n.hasJoined)) return null;
    const state = all[0]!.clusterState;
    const d = digest(state);
    if (!all.every((n) => digest(n.clusterState) === d)) return null;
    if (validMembers(state).length !== k) return null;
    const claimant = claimantOf(state);
    if (claimant === null || maybeReclaim(state, claimant) !== null) return null;
    return state;
  };

  let joined: ClusterState | null = null;
  while (network.now() < config.joinLimitMs) {
    await network.runFor(250);
    checkRingOrigin();
    joined = agreed();
    if (joined) break;
  }
  // Every ring a cluster member holds must come from the cluster's claimant
  // (n1: the lowest id, never leaving), never from a node's private
  // single-node ring made before it joined. Checked while joining (and at the
  // end): a stray ring takes partitions, hence reads and writes, away from
  // the nodes holding the data.
  function checkRingOrigin(): void {
    for (const [id, node] of nodes) {
      const ring = node.clusterState.ring;
      const member = Object.keys(node.clusterState.members).length > 1;
      if ((node.hasJoined || member) && ring.claimant !== ids[0] && !strayRings.has(id)) {
        strayRings.add(id);
        violations.push(`STRAY RING at ${id}: v${ring.version} claimed by ${ring.claimant}, not by the claimant ${ids[0]} (owners ${JSON.stringify([...ownerCounts(ring.owners)])})`);
        note(`${id} adopted ring v${ring.version} of ${ring.claimant}`);
      }
    }
  }
  if (startFailures.length > 0) violations.push(`node start failed: ${startFailures.join('; ')}`);
  if (!joined) {
    violations.push(`membership did not converge within ${config.joinLimitMs} ms: ${membershipSummary(ids, nodes)}`);
    return finish();
  }
  note(`joined: ring v${joined.ring.version} ${digest(joined)}`);
  // Mixed bucket n: the props of the buckets of other n than the default, agreed on by every node before the load.
  const configured = [...new Set(config.bucketNs)].filter((n) => n !== DEFAULT_BUCKET_PROPS.n);
  for (const n of configured) {
    let done = false;
    let failed: unknown = null;
    nodes.get(ids[0]!)!.setBucketProps(`b${n}`, { n, r: Math.min(2, n), w: Math.min(2, n) }).then(() => (done = true), (err: unknown) => (failed = err));
    const limit = network.now() + 10_000;
    while (network.now() < limit && !(done && agreed() !== null && ids.every((id) => nodes.get(id)!.bucketProps(`b${n}`).n === n))) await network.runFor(50);
    if (failed !== null || !done || agreed() === null) {
      violations.push(`bucket b${n} props did not spread: ${String(failed ?? 'timed out')}`);
      return finish();
    }
  }
  if (configured.length > 0) note(`buckets: ${keys.map((key) => `${key}:${bucketName(key)}`).join(' ')}`);
  if (config.readFanout !== 'all') {
    // The bucket's read fan-out, in force on every node before the load (setBucketProps pushes it to each member).
    // (Virtual time: the call's messages move only while the network runs.)
    let set = false;
    // Every bucket of the run (the one bucket 'b', or the mixed-n ones), one after the other.
    for (const name of bucketBuffers.keys()) {
      let set = false;
      nodes
        .get(ids[0]!)!
        .setBucketProps(name, { read_fanout: config.readFanout })
        .then(
          () => (set = true),
          (err: unknown) => violations.push(`setting read_fanout of ${name} failed: ${String(err)}`),
        );
      const fanoutLimit = network.now() + 10_000;
      while ((!set || ids.some((id) => nodes.get(id)!.bucketProps(name).read_fanout !== config.readFanout)) && network.now() < fanoutLimit) await network.runFor(100);
      if (ids.some((id) => nodes.get(id)!.bucketProps(name).read_fanout !== config.readFanout)) {
        violations.push(`read_fanout ${config.readFanout} of ${name} did not reach every node in 10 s`);
        return finish();
      }
    }
    note(`buckets ${[...bucketBuffers.keys()].join(', ')}: read_fanout ${config.readFanout}`);
  }

  // --- phase 2: client load with faults ------------------------------------
  const loadStart = network.now();
  const loadMs = rand.int(config.loadMs[0], config.loadMs[1]);
  // Half the ops are spread uniformly, half come in bursts (concurrent writes
  // through different coordinators); a third of all ops hit one hot key.
  const bursts = Array.from({ length: Math.max(1, Math.floor(opCount / 8)) }, () => loadStart + rand.int(0, loadMs - 50));
  for (let i = 0; i < opCount; i++) {
    const roll = rand.int(0, 99);
    const kind: OpKind = roll < 15 ? 'del' : roll < 55 ? 'put' : 'rw';
    ops.push({
      id: i,
      kind,
      node: rand.pick(ids),
      key: rand.chance(1 / 3) ? keys[0]! : rand.pick(keys),
      at: rand.chance(0.5) ? loadStart + rand.int(0, loadMs) : rand.pick(bursts) + rand.int(0, 40),
      value: kind === 'del' ? null : `v${i}`,
      outcome: 'pending',
    });
    written.add(`v${i}`);
    writerOf.set(`v${i}`, ops[ops.length - 1]!);
  }
  // Tail deletes: two keys are deleted (read, then delete with the context)
  // while the faults still run, and get no client op after: their tombstones
  // are reaped, and any stale copy that survives somewhere (a late hint, a
  // replica that missed the reap, a data-lost node refilled from a hint)
  // has the quiet period — handoff, anti-entropy, the final read repair — to
  // come back. (On busy keys later writes' contexts would mask it.)
  const tailKeys = rand.chance(0.5) ? [keys[1]!, keys[2]!] : [keys[keyCount - 1]!, keys[1]!];
  for (const key of tailKeys) {
    const at = loadStart + rand.int(Math.floor(loadMs / 3), loadMs - 200);
    for (const op of ops) if (op.key === key && op.at > at) op.key = keys[0]!;
    for (const dt of [0, 150]) {
      ops.push({ id: ops.length, kind: 'del', node: rand.pick(ids), key, at: at + dt, value: null, outcome: 'pending' });
    }
  }
  ops.sort((a, b) => a.at - b.at || a.id - b.id);

  const isolated = rand.pick(ids);
  const isolateAt = loadStart + rand.int(0, Math.floor(loadMs / 2));
  const isolateFor = rand.int(config.isolateMs[0], config.isolateMs[1]);
  network.schedule(isolateAt, () => {
    network.isolate(isolated);
    note(`fault: isolate ${isolated} for ${isolateFor} ms`);
  });
  network.schedule(isolateAt + isolateFor, () => {
    network.heal();
    note(`fault: heal ${isolated}`);
  });

  // One crash per seed, with a restart on the same engine or (data loss) on a
  // fresh one with a new epoch. Drawn after everything above, so the
  // isolation schedule of a seed did not change when crashes were added.
  let crashed = rand.pick(ids);
  let crashAt = loadStart + rand.int(0, Math.floor((loadMs * 2) / 3));
  const crashFor = rand.int(config.crashMs[0], config.crashMs[1]);
  // (Never in transfer-read mode: a replica that lost its disk is not a source for its old data.)
  const dataLoss = rand.chance(config.dataLossChance) && !config.transferReads;
  // w = 1 for some writes (own stream: the schedules above stay as they were).
  const wrand = new Rand(subSeed(seed, 4));
  for (const op of ops) if (!dataLoss && wrand.chance(config.w1Chance)) op.w = 1;
  // dw = 1 for some writes, and the crash of the isolated node (own streams too).
  const dwrand = new Rand(subSeed(seed, 6));
  for (const op of ops) if (dwrand.chance(config.dw1Chance)) op.dw = 1;
  const crand = new Rand(subSeed(seed, 7));
  if (crand.chance(config.crashIsolatedChance)) {
    // Cut off, then down: its w = 1 writes since the cut exist only in its memory, or on its disk.
    crashed = isolated;
    crashAt = isolateAt + crand.int(Math.floor(isolateFor / 3), isolateFor - 1);
  }
  network.schedule(crashAt, () => {
    network.crash(crashed);
    stopServices(crashed);
    down.add(crashed);
    note(`fault: crash ${crashed} for ${crashFor} ms${dataLoss ? ' (its data will be lost)' : ''}`);
    // Clients connected to it see the connection drop: their ops fail.
    for (const op of ops) {
      if (op.node === crashed && op.outcome === 'pending' && op.at <= network.now()) settle(op, 'fail', 'CONNECTION_LOST');
    }
    crashEngine(crashed, dataLoss).catch((err: unknown) => violations.push(`crash of ${crashed}'s engine failed: ${String(err)}`));
  });
  network.schedule(crashAt + crashFor, () => {
    network.restart(crashed);
    let seeds = [ids[0]!];
    const i = ids.indexOf(crashed);
    if (dataLoss) {
      lostDisks++;
      // A new disk: a new epoch, hence a new actor; no cluster state, so it rejoins through a seed.
      const epoch = ((1 + lostDisks) * 0x100 + i + 1).toString(16).padStart(16, '0');
      void openEngine(crashed, epoch, new SimDisk()).then(() => {
        note(`fault: restart ${crashed} with its data lost (epoch ${epoch})`);
        startNode(crashed, crashed === ids[0] ? [ids[1]!] : seeds);
      });
      return;
    }
    // The same disk: the stored epoch wins over the one passed.
    void openEngine(crashed, (i + 1).toString(16).padStart(16, '0'), disks.get(crashed)!).then(() => {
      note(`fault: restart ${crashed}`);
      if (crashed === ids[0]) seeds = [];
      startNode(crashed, seeds);
    });
  });

  /**
   * The crash of a node's engine: every write it had not flushed is lost.
   * Records the dots whose last copy went with it (held in its memory, not on
   * its disk, by no other node), then checks at once that every acknowledged
   * write is still held somewhere (LOST at the crash, for dw >= 1).
   */
  async function crashEngine(id: string, diskLost: boolean): Promise<void> {
    const engine = engines.get(id)!;
    const before = await holdings(engine);
    engine.crash();
    let after: Held = new Map();
    if (!diskLost) {
      // What the disk kept, seen through an engine opened on it (and dropped: it writes nothing).
      const look = await PureEngine.open({ nodeId: id, epoch: engine.epoch, partitionBits }, { disk: disks.get(id)! });
      after = await holdings(look);
      look.crash();
    }
    downHeld.set(id, after);
    const elsewhere = await everyHolding(id);
    let dropped = 0;
    for (const [key, ctxs] of before) {
      // The node's own counters its disk lost (see rolledBack).
      const own = Math.max(0, ...(after.get(key) ?? []).flatMap((c) => c.filter((e) => e.actor.toString('utf8') === engine.actor).map((e) => e.counter)));
      const top = Math.max(0, ...ctxs.flatMap((c) => c.filter((e) => e.actor.toString('utf8') === engine.actor).map((e) => e.counter)));
      for (let counter = own + 1; counter <= top; counter++) rolledBack.add(`${key}/${engine.actor}/${counter}`);
      const kept = [...(after.get(key) ?? []), ...(elsewhere.get(key) ?? [])];
      for (const ctx of ctxs) {
        for (const e of ctx) {
          const actor = e.actor.toString('utf8');
          for (let counter = 1; counter <= e.counter; counter++) {
            const d = { actor, counter };
            const name = `${key}/${actor}/${counter}`;
            if (lastCopyLost.has(name) || kept.some((c) => covers(c, d))) continue;
            lastCopyLost.set(name, { node: id, at: network.now(), diskLost });
            dropped++;
          }
        }
      }
    }
    note(`${id} engine crashed: ${dropped} dot(s) lost with their last copy${diskLost ? ' (disk lost)' : ''}`);
    await checkHeld(`the crash of ${id}`);
  }

  // Membership change (a third of the seeds): while clients write, a new node
  // joins through a seed, and/or a node (not n1, not the crashed one) leaves:
  // node.leave(), then it is stopped once its TransferService has given every
  // partition (both passes) and its hint store is empty — or after
  // leaveLimitMs. Client ops routed to it after that fail (connection refused).
  const gone = new Set<string>();
  /** Hint stores holding hints for the node that left (never delivered: see hintsLeft). */
  const strandedHints = new Set<string>();
  let leaver: string | null = null;
  let leaverStopped = false;
  if (joiner) {
    const joinAt = loadStart + mrand.int(0, Math.floor(loadMs / 2));
    await openEngine(joiner, (k + 1).toString(16).padStart(16, '0'), new SimDisk());
    network.schedule(joinAt, () => {
      note(`membership: ${joiner} starts with seed ${ids[0]}`);
      startNode(joiner, [ids[0]!]);
    });
  }
  if (leaveWanted) {
    const candidates = ids.slice(1).filter((id) => id !== crashed);
    leaver = mrand.pick(candidates);
    const leaveAt = loadStart + mrand.int(0, Math.floor(loadMs / 2));
    const who = leaver;
    network.schedule(leaveAt, () => {
      // Not while it is down or not (re)started: try again a little later.
      const start = (): void => {
        const node = nodes.get(who);
        if (down.has(who) || !node) {
          network.schedule(network.now() + 100, start);
          return;
        }
        note(`membership: ${who} leaves`);
        node.leave().then(
          () => watchLeaver(network.now()),
          (err: unknown) => violations.push(`${who} could not leave: ${String(err)}`),
        );
      };
      start();
    });
    let quietSince: number | null = null;
    const watchLeaver = (leftAt: number): void => {
      const node = nodes.get(who)!;
      const svc = services.get(who);
      void engines.get(who)!.hintTargets().then((hints) => {
        const isLeft = node.clusterState.members[who]?.status === 'left';
        const idle = isLeft && svc !== undefined && svc.transfers.status().length === 0 && hints.length === 0;
        if (idle) quietSince ??= network.now();
        else quietSince = null;
        // Idle for a few transfer ticks: the new ring's transfers were planned and all given.
        const done = quietSince !== null && network.now() - quietSince >= 500;
        const timedOut = network.now() - leftAt >= config.leaveLimitMs;
        if (!done && !timedOut) {
          network.schedule(network.now() + 100, () => watchLeaver(leftAt));
          return;
        }
        const pendingXfer = svc?.transfers.status() ?? [];
        note(`membership: ${who} stops${done ? '' : ` after ${config.leaveLimitMs} ms (status ${node.clusterState.members[who]?.status}, ${pendingXfer.length} transfers pending, hints for ${hints.join('+') || 'none'})`}`);
        if (!done) violations.push(`LEAVE did not finish in ${config.leaveLimitMs} ms: ${who} is ${node.clusterState.members[who]?.status}, ${pendingXfer.length} transfers pending, hints for ${hints.join('+') || 'none'}`);
        stopServices(who);
        gone.add(who);
        down.add(who);
        leaverStopped = true;
        for (const op of ops) {
          if (op.node === who && op.outcome === 'pending' && op.at <= network.now()) settle(op, 'fail', 'CONNECTION_LOST');
        }
        void node.stop();
      });
    };
  }

  // Transfer-read mode: r = n reads on random nodes all along the membership
  // change (from the start of the load until it has settled). STALE READ: a
  // successful one misses a write acknowledged before it started — neither
  // holds one of its dots nor covers it in its context (a causal successor),
  // nor was the key reaped over it. Only readers on a ring at least as new as
  // any ring held when the write was acknowledged are judged (a reader behind
  // on gossip asks the old replicas). A node still receiving a partition is no
  // source on its own (docs/cluster.md "Partition transfer"): without that,
  // r = n reads right after a join or leave answer from replicas that do not
  // have the data yet.
  const probeRand = new Rand(subSeed(seed, 5));
  let probing = config.transferReads;
  const probeStats = { ok: 0, failed: 0 };
  const probe = (): void => {
    if (!probing) return;
    const live = [...nodes.keys()].filter((id) => !down.has(id) && !gone.has(id) && nodes.get(id)!.hasJoined);
    if (live.length > 0) {
      const id = probeRand.pick(live);
      const node = nodes.get(id)!;
      const key = probeRand.pick(keys);
      const at = network.now();
      const ringVersion = node.clusterState.ring.version;
      const n = node.bucketProps(bucketName(key)).n;
      const r = config.probeR === 'n' ? n : node.bucketProps(bucketName(key)).r;
      // For the report: the key's replicas as the reader sees them, and which were still receiving it.
      const ring = node.clusterState.ring;
      const partition = partitionOf(ring, engines.get(id)!.hashKey(bucketOf(key), Buffer.from(key)));
      const replicas = node.preferenceListOf(partition, n).primaries;
      const receiving = replicas.filter((r) => services.get(r)?.transfers.receiving().some((e) => e.partition === partition));
      node.get(bucketOf(key), Buffer.from(key), { r, pr: r }).then(
        (res) => {
          probeStats.ok++;
          const rec = res.record ? decodeRecord(res.record) : null;
          if (rec) observe(key, rec, `probe read via ${id}`, at, ringVersion);
          for (const op of ops) {
            if (op.key !== key || op.outcome !== 'ok' || op.doneAt === undefined || op.doneAt >= at) continue;
            // A reader still on an older ring than one the write may have been routed by does not ask the
            // new replicas at all (gossip lag, not a transfer: a w = 1 write there can be missed).
            if (ringVersion < op.ringAtAck!) continue;
            // R + W <= N promises no read-your-writes (probeR 'r' with a w = 1 write).
            if ((op.w ?? node.bucketProps(bucketName(key)).w) + r <= n) continue;
            if (op.dots!.some((d) => (rec !== null && covers(rec.context, d)) || reapedCovers(key, d))) continue;
            // Lost with its last unflushed copy in a crash before this read (dw = 0 allows it; the LOST check
            // counts it): no replica can return it. A w = 1 write of an n = 2 bucket (mixed-n mode) has one copy often.
            if (op.dots!.every((d) => (lastCopyLost.get(`${key}/${d.actor}/${d.counter}`)?.at ?? Infinity) <= at) && lostUnflushed(op, op.dots!)) continue;
            violations.push(
              `STALE READ during transfer: r=${r} read of ${key} at ${at} via ${id} (ring v${ringVersion}, partition ${partition}, replicas ${replicas.join(',')}, receiving ${receiving.join(',') || 'none'}) missed op${op.id} (${op.value ?? '†'} via ${op.node}, dots ${op.dots!.map(dotStr).join('|')}, acknowledged at ${op.doneAt}): got ${rec ? describeRecord(rec) : 'not found'}`,
            );
          }
        },
        () => probeStats.failed++,
      );
    }
    network.schedule(network.now() + config.probeEveryMs, probe);
  };
  if (probing) network.schedule(loadStart, probe);

  // LOST checked during the run as well as at the end (see checkHeld).
  const heldReported = new Set<number>();
  let checkingHeld = true;
  const heldTick = (): void => {
    if (!checkingHeld) return;
    void checkHeld('periodic check');
    network.schedule(network.now() + 250, heldTick);
  };
  network.schedule(loadStart + 250, heldTick);

  const settle = (op: ClientOp, outcome: 'ok' | 'fail', error?: string): boolean => {
    if (op.outcome !== 'pending') return false; // already failed by a crash of its node
    op.outcome = outcome;
    op.doneAt = network.now();
    if (error !== undefined) op.error = error;
    return true;
  };

  const runOp = async (op: ClientOp): Promise<void> => {
    if (down.has(op.node)) {
      const err = new Error(`${op.node} is down`) as Error & { code: string };
      err.code = 'CONNECTION_REFUSED';
      throw err;
    }
    const node = nodes.get(op.node)!;
    const key = Buffer.from(op.key);
    let context: Buffer | null = null;
    if (op.kind !== 'put') {
      const got = await node.get(bucketOf(op.key), key);
      context = got.record ? recordContextBytes(got.record) : null;
      if (got.record) observe(op.key, decodeRecord(got.record), `op${op.id} get`, op.at, node.clusterState.ring.version);
      note(`op${op.id} ${op.node} get ${op.key} -> ${got.record ? describeRecord(decodeRecord(got.record)) : 'not found'} (${got.answered} answered)`);
    }
    op.context = context;
    const value = op.value === null ? null : Buffer.from(op.value);
    const putAt = network.now();
    const w = Math.min(op.w ?? node.bucketProps(bucketName(op.key)).w, node.bucketProps(bucketName(op.key)).n);
    const quorum = config.transferReads ? { w, pw: w } : op.w !== undefined ? { w } : {};
    const result = await node.put(bucketOf(op.key), key, context, value, op.dw !== undefined ? { ...quorum, dw: op.dw } : quorum);
    const rec = decodeRecord(result.record);
    observe(op.key, rec, `op${op.id} put`, putAt, node.clusterState.ring.version);
    const own = decodeContext(context);
    op.dots = rec.siblings
      .filter((s) => (value === null ? s.tombstone : !s.tombstone && s.value.equals(value)))
      .map(sibDot)
      .filter((d) => !covers(own, d));
    if (op.dots.length === 0) throw new Error(`acknowledged write has no new sibling in its result record ${describeRecord(rec)}`);
    return;
  };
  for (const op of ops) {
    network.schedule(op.at, () => {
      note(`op${op.id} ${op.kind} ${op.node} ${op.key}${op.value ? ` ${op.value}` : ''}${op.w !== undefined ? ` w=${op.w}` : ''}${op.dw !== undefined ? ` dw=${op.dw}` : ''} issued`);
      runOp(op).then(
        () => {
          if (!settle(op, 'ok')) return;
          op.ringAtAck = Math.max(...[...nodes.entries()].filter(([id]) => !down.has(id) && !gone.has(id)).map(([, n]) => n.clusterState.ring.version));
          note(`op${op.id} ok dots ${op.dots!.map(dotStr).join('|')}`);
        },
        (err: unknown) => {
          if (!settle(op, 'fail', errCode(err))) return;
          note(`op${op.id} fail ${op.error}${op.context !== undefined ? ' (write issued)' : ''}`);
          if (!(err instanceof Error) || !('code' in err)) violations.push(`op${op.id}: unexpected error ${String(err)}`);
        },
      );
    });
  }

  // --- phase 3: faults stop, quiet ------------------------------------------
  await network.runUntil(loadStart + loadMs);
  network.heal();
  network.setDropRate(0);
  network.setDelay(1, Math.min(maxDelay, 10));
  note('faults stop');
  const settleLimit = network.now() + 30_000;
  while (ops.some((o) => o.outcome === 'pending') && network.now() < settleLimit) await network.runFor(100);
  const stuck = ops.filter((o) => o.outcome === 'pending');
  if (stuck.length > 0) violations.push(`ops never settled: ${stuck.map((o) => `op${o.id}`).join(', ')}`);
  await network.runFor(config.quietMs);

  // The members at the end: the leaver is gone, the joiner is in.
  const finalIds = [...ids.filter((id) => id !== leaver), ...(joiner ? [joiner] : [])];
  const membershipChanged = joiner !== null || leaver !== null;
  if (membershipChanged) {
    // The leaver stops and membership, ring and transfers settle (bounded).
    const settled = (): boolean => {
      if (leaver !== null && !leaverStopped) return false;
      const live = finalIds.map((id) => nodes.get(id));
      if (!live.every((n) => n?.hasJoined)) return false;
      const d = digest(live[0]!.clusterState);
      if (!live.every((n) => digest(n!.clusterState) === d)) return false;
      if (finalIds.some((id) => (services.get(id)?.transfers.status().length ?? 0) > 0)) return false;
      // No partition stays pending at a receiver (finish, giver asked, or the time limit).
      if (finalIds.some((id) => (services.get(id)?.transfers.receiving().length ?? 0) > 0)) return false;
      const claimant = claimantOf(live[0]!.clusterState);
      return claimant !== null && maybeReclaim(live[0]!.clusterState, claimant) === null;
    };
    const limit = network.now() + config.leaveLimitMs + config.joinLimitMs;
    while (!settled() && network.now() < limit) await network.runFor(250);
    if (!settled()) {
      violations.push(
        `membership change did not settle: ${membershipSummary(finalIds, nodes)}; transfers pending ${finalIds.map((id) => `${id}:${services.get(id)?.transfers.status().length ?? '-'}/${services.get(id)?.transfers.receiving().length ?? '-'}`).join(' ')}`,
      );
    } else note(`membership settled: ring v${nodes.get(ids[0]!)!.clusterState.ring.version}`);
    probing = false;
    // Anti-entropy rounds over the new ring.
    await network.runFor(2_000);
  }

  // Hinted handoff: every hint reaches its primary once the faults are over.
  const hintsLeft = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const id of finalIds) {
      // Hints for the node that left go to the keys' current primaries
      // instead (HandoffService.rehome): none may stay behind either.
      const all = await engines.get(id)!.hintTargets();
      if (all.some((t) => gone.has(t))) strandedHints.add(`${id}→${leaver}`);
      if (all.length > 0) out.push(`${id}→${all.join('+')}`);
    }
    return out;
  };
  const handoffLimit = network.now() + config.handoffLimitMs;
  while ((await hintsLeft()).length > 0 && network.now() < handoffLimit) await network.runFor(250);
  const undelivered = await hintsLeft();
  if (undelivered.length > 0) violations.push(`HINTS not delivered ${config.quietMs + config.handoffLimitMs} ms after the faults stopped: ${undelivered.join(' ')}`);
  else note('hint stores empty');
  if (!dataLoss) await checkReplicatedBeforeReads();

  checkingHeld = false;
  await checkHeld('before the final reads');

  // --- phase 4: final reads (r = n, with read repair), then invariants -------
  const readerId = rand.pick(ids);
  const reader = nodes.get(gone.has(readerId) ? ids[0]! : readerId)!;
  const finalReadAt = network.now();
  const finals = new Map<string, { record: Buffer | null } | { error: string }>();
  for (const key of keys) {
    reader.get(bucketOf(key), Buffer.from(key), { r: reader.bucketProps(bucketName(key)).n }).then(
      (r) => finals.set(key, { record: r.record }),
      (err: unknown) => finals.set(key, { error: errCode(err) }),
    );
  }
  const readLimit = network.now() + 5_000;
  while (finals.size < keys.length && network.now() < readLimit) await network.runFor(50);
  await network.runFor(1_000); // read-repair window, repairs in flight

  await checkInvariants();
  const leftAtEnd = await hintsLeft();
  if (leftAtEnd.length > 0 && undelivered.length === 0) violations.push(`HINTS held at the end: ${leftAtEnd.join(' ')}`);
  return finish();

  // -------------------------------------------------------------------------

  /** What an engine holds in its objects and hints (a running node's memory view). */
  async function holdings(engine: PureEngine): Promise<Held> {
    const out: Held = new Map();
    const add = (key: string, record: Buffer): void => {
      const list = out.get(key) ?? [];
      list.push(decodeRecord(record).context);
      out.set(key, list);
    };
    for (const key of keys) {
      const rec = engine.getSync(bucketOf(key), Buffer.from(key));
      if (rec) add(key, rec);
    }
    for (const target of await engine.hintTargets()) {
      for (const h of await engine.hintList(target, 1_000_000)) add(h.key.toString('utf8'), h.record);
    }
    return out;
  }

  /** Everything every node holds — a running node's memory, a crashed one's disk — except `skip`'s. */
  async function everyHolding(skip?: string): Promise<Held> {
    const out: Held = new Map();
    for (const [id, engine] of engines) {
      if (id === skip) continue;
      const held = downHeld.get(id) ?? (await holdings(engine));
      for (const [key, ctxs] of held) out.set(key, [...(out.get(key) ?? []), ...ctxs]);
    }
    return out;
  }

  /** Every dot of the write had its last copy dropped by crashes: allowed for dw = 0 only (and for a lost disk). */
  function lostUnflushed(op: ClientOp, dots: Dot[]): boolean {
    return dots.every((d) => {
      const lost = lastCopyLost.get(`${op.key}/${d.actor}/${d.counter}`);
      return lost !== undefined && ((op.dw ?? 0) === 0 || lost.diskLost);
    });
  }

  /**
   * LOST during the run: every acknowledged write is held (covered by the
   * context of an object or a hint) by some node, or reaped, or lost with its
   * last unflushed copy as docs/durability.md allows. Reported once per write.
   */
  async function checkHeld(when: string): Promise<void> {
    const held = await everyHolding();
    for (const op of ops) {
      if (op.outcome !== 'ok' || heldReported.has(op.id)) continue;
      const ctxs = held.get(op.key) ?? [];
      const gone = op.dots!.filter((d) => !reapedCovers(op.key, d) && !ctxs.some((c) => covers(c, d)));
      if (gone.length < op.dots!.length || lostUnflushed(op, gone)) continue;
      heldReported.add(op.id);
      violations.push(
        `LOST acknowledged op${op.id} (${op.kind} ${op.key} ${op.value ?? '†'} via ${op.node}, w=${op.w ?? '-'} dw=${op.dw ?? 0}, dots ${op.dots!.map(dotStr).join('|')}) ` +
          `held by no node at ${network.now()} (${when})${gone.some((d) => lastCopyLost.has(`${op.key}/${d.actor}/${d.counter}`)) ? ': its last copy was lost unflushed in a crash' : ''}`,
      );
    }
  }

  // UNDER-REPLICATED (seeds without data loss, after handoff, before the
  // final read repairs anything): every acknowledged write is held — as a
  // sibling, or covered by the record's context — by at least W primaries of
  // its key. Its W acks were the coordinator's own copy plus copies at other
  // primaries or hints for them, and hinted handoff must have brought every
  // hint to its primary. (With a data loss the wiped node's copies are gone
  // until read repair, so the check is skipped there.)
  async function checkReplicatedBeforeReads(): Promise<void> {
    const state = nodes.get(ids[0]!)!.clusterState;
    for (const op of ops) {
      if (op.outcome !== 'ok') continue;
      const { n, w } = nodes.get(ids[0]!)!.bucketProps(bucketName(op.key));
      const key = Buffer.from(op.key);
      const position = engines.get(ids[0]!)!.hashKey(bucketOf(op.key), key);
      const primaries = preferenceList(state.ring, partitionOf(state.ring, position), Math.min(n, finalIds.length), zonesOf(state)).primaries;
      // Reaped since: the reap check saw the write's dots covered at every primary.
      if (op.dots!.every((d) => reapedCovers(op.key, d))) continue;
      // Lost unflushed in a crash (allowed for dw = 0): no copy left to count.
      if (lostUnflushed(op, op.dots!)) continue;
      const holders: string[] = [];
      for (const id of primaries) {
        const stored = await engines.get(id)!.get(bucketOf(op.key), key);
        if (stored && op.dots!.some((d) => covers(decodeRecord(stored).context, d))) holders.push(id);
      }
      if (holders.length < Math.min(op.w ?? w, k)) {
        violations.push(`UNDER-REPLICATED acknowledged op${op.id} (${op.key} ${op.value ?? '†'} via ${op.node}, dots ${op.dots!.map(dotStr).join('|')}): held by ${holders.join(',') || 'no'} primary of ${primaries.join(',')} after handoff`);
      }
    }
  }

  async function checkInvariants(): Promise<void> {
    // Membership: same digest everywhere, every node a valid member, ring
    // balanced and unchanged since the join phase settled.
    const states = finalIds.map((id) => nodes.get(id)!.clusterState);
    const state = states[0]!;
    checkRingOrigin();
    const digests = new Set(states.map(digest));
    if (digests.size !== 1) violations.push(`membership digests differ: ${membershipSummary(finalIds, nodes)}`);
    for (const s of states) {
      for (const id of finalIds) {
        if (s.members[id]?.status !== 'valid') violations.push(`${id} is not a valid member in some node's view (${s.members[id]?.status ?? 'absent'})`);
      }
      if (leaver !== null && s.members[leaver]?.status !== 'left') violations.push(`${leaver} left but is ${s.members[leaver]?.status ?? 'absent'} in some node's view`);
      // isBalanced: every owner among finalIds, each with floor/ceil of Q/S.
      if (!isBalanced(s.ring.owners, finalIds)) {
        violations.push(`ring not balanced: ${JSON.stringify([...ownerCounts(s.ring.owners)])} for Q=${s.ring.owners.length}, S=${finalIds.length} (${finalIds.join(',')})`);
      }
    }
    // Without a planned membership change the ring must not move after the join settled.
    if (joined && !membershipChanged && state.ring.version !== joined.ring.version) {
      violations.push(`ring changed after membership settled: v${joined.ring.version} -> v${state.ring.version} (no member came or went)`);
    }
    note(`final membership ${[...digests].join(' ')}`);

    // Every put/delete context issued, for the "superseded" test.
    const issued = ops.filter((o) => o.context).map((o) => ({ op: o, ctx: decodeContext(o.context!) }));
    for (const key of keys) {
      const n = reader.bucketProps(bucketName(key)).n;
      const final = finals.get(key);
      if (!final) {
        violations.push(`final read of ${key} never answered`);
        continue;
      }
      if ('error' in final) {
        violations.push(`final read of ${key} failed: ${final.error}`);
        continue;
      }
      const rec = final.record ? decodeRecord(final.record) : { context: [], siblings: [] };
      note(`final ${key} ${describeRecord(rec)}`);
      observe(key, rec, 'final read', finalReadAt);

      // (1) No acknowledged write lost. An acknowledged write W (dot d, value v)
      // is SUPERSEDED when some put/delete issued by a client (acknowledged or
      // not) carried a context covering d — that client had read d (or a
      // version that already replaced it) and deliberately replaced it. Every
      // acknowledged write must be either present in the final record (a
      // sibling with one of its dots and its value/tombstone), or superseded:
      // each of its dots covered by the final record's context AND by the
      // context of some issued write.
      for (const op of ops) {
        if (op.key !== key || op.outcome !== 'ok') continue;
        const dots = op.dots!;
        const present = rec.siblings.some((s) =>
          dots.some((d) => d.actor === s.actor.toString('utf8') && d.counter === s.counter) &&
          (op.value === null ? s.tombstone : !s.tombstone && s.value.toString('utf8') === op.value),
        );
        if (present) continue;
        // A reaped key: the reaped record's context stands in for the final
        // one (the key reads absent). A reaped delete's own tombstone needs
        // nothing more — the reap is the delete's effect holding; a value
        // still needs a client write that superseded it.
        const unexplained = dots.filter((d) =>
          op.value === null && reapedCovers(key, d)
            ? false
            : !(covers(rec.context, d) || reapedCovers(key, d)) || !issued.some((w) => w.op !== op && covers(w.ctx, d)),
        );
        if (unexplained.length > 0 && lostUnflushed(op, unexplained)) {
          lostUnflushedCount++;
          note(`op${op.id} (${op.key} ${op.value ?? '†'}, w=${op.w ?? '-'} dw=0) lost unflushed in a crash, as dw = 0 allows`);
          continue;
        }
        if (unexplained.length > 0) {
          violations.push(
            `LOST acknowledged op${op.id} (${op.kind} ${key} ${op.value ?? '†'} via ${op.node}, w=${op.w ?? '-'} dw=${op.dw ?? 0}, dots ${dots.map(dotStr).join('|')}): ` +
              `final ${describeRecord(rec)}; not superseded: ${unexplained.map(dotStr).join('|')}`,
          );
        }
      }

      // (2) Convergence: after the r = n read and its repairs, every primary
      // holds byte-identical records, equal to what the read returned; nodes
      // outside the preference list hold nothing (the ring never changed
      // during the load).
      const ring = state.ring;
      const position = engines.get(ids[0]!)!.hashKey(bucketOf(key), Buffer.from(key));
      const primaries = preferenceList(ring, partitionOf(ring, position), n, zonesOf(state)).primaries;
      // Mixed bucket n: a node that held the key's partition for its n under no ring has no business holding it.
      const everPrimary = (id: string): boolean =>
        [...adoptedRings.values()].some((r) =>
          // The cluster's rings from the load on (not a node's private ring from before it joined).
          r.claimant === ids[0] && r.version >= joined!.ring.version && preferenceList(r, partitionOf(r, position), n, zonesOf(state)).primaries.includes(id));
      for (const id of finalIds) {
        const stored = await engines.get(id)!.get(bucketOf(key), Buffer.from(key));
        // A former replica keeps its (stale, never served) copy after giving
        // the partition away: checked for dot reuse and phantoms only.
        const stray = stored !== null && !primaries.includes(id);
        if (stored) observe(key, decodeRecord(stored), `stored at ${id}`, stray && membershipChanged ? -1 : network.now());
        if (stray && config.bucketNs.length > 0 && !everPrimary(id)) {
          violations.push(`STRAY COPY of ${key} (bucket ${bucketName(key)}, n=${n}) at ${id}, never among its ${n} primaries under any ring: ${describeRecord(decodeRecord(stored))}`);
          continue;
        }
        if (stray && membershipChanged) continue;
        if (primaries.includes(id)) {
          const want = final.record;
          if (!(stored === null ? want === null : want !== null && stored.equals(want))) {
            violations.push(
              `DIVERGED ${key} at ${id}: ${stored ? describeRecord(decodeRecord(stored)) : 'none'} vs read ${final.record ? describeRecord(rec) : 'none'}`,
            );
          }
        } else if (stored !== null) {
          violations.push(`stray copy of ${key} at non-primary ${id}: ${describeRecord(decodeRecord(stored))}`);
        }
      }
    }
  }

  async function finish(): Promise<SimResult> {
    for (const id of [...services.keys()]) stopServices(id);
    for (const node of nodes.values()) await node.stop();
    for (const [id, engine] of engines) if (!downHeld.has(id)) await engine.close(); // a crashed one is closed already
    const acked = ops.filter((o) => o.outcome === 'ok').length;
    const metric = async (name: string): Promise<number> => {
      let sum = 0;
      for (const node of incarnations) {
        const m = await node.metrics.registry.getSingleMetric(name)?.get();
        sum += m?.values.reduce((a, v) => a + v.value, 0) ?? 0;
      }
      return sum;
    };
    const labelled = async (name: string, label: string): Promise<Record<string, number>> => {
      const out: Record<string, number> = {};
      for (const node of incarnations) {
        const m = await node.metrics.registry.getSingleMetric(name)?.get();
        for (const v of m?.values ?? []) {
          const l = String((v.labels as Record<string, unknown>)[label]);
          out[l] = (out[l] ?? 0) + v.value;
        }
      }
      return Object.fromEntries(Object.entries(out).sort());
    };
    return {
      seed,
      log,
      violations,
      traceTail: [...trace.tail(), '-- network --', ...netTrace.tail().slice(-Math.ceil(config.traceKeep / 2))],
      stats: {
        nodes: k,
        partitionBits,
        keys: keyCount,
        ops: ops.length,
        acked,
        failed: ops.length - acked,
        virtualMs: network.now(),
        events,
        fallbackWrites: await metric('ringkv_fallback_writes_total'),
        hintsStored: await metric('ringkv_hints_stored_total'),
        hintsDelivered: await metric('ringkv_hints_delivered_total'),
        reaped: await metric('ringkv_tombstones_reaped_total'),
        reapedKeys: new Set(reaps.map((r) => r.key)).size,
        reapOutcomes: await labelled('ringkv_reap_attempts_total', 'outcome'),
        aaeRepaired: await metric('ringkv_aae_keys_repaired_total'),
        dataLoss,
        joinedDuringLoad: joiner,
        leftDuringLoad: leaver,
        strandedHints: [...strandedHints].sort().join(' '),
        staleRingResurrections: staleRingResurrections.length,
        transferred: transferServices.reduce((sum, t) => sum + t.totals.objects, 0),
        transferReads: await metric('ringkv_transfer_reads_total'),
        fallbackCoordinated: await metric('ringkv_fallback_coordinated_total'),
        probeReads: probeStats.ok,
        probeReadsFailed: probeStats.failed,
        lostUnflushed: lostUnflushedCount,
        droppedDots: lastCopyLost.size,
        gets: (await labelled('ringkv_requests_total', 'op')).get ?? 0,
        replicaGets: (await labelled('ringkv_replica_requests_total', 'type'))['kv.get'] ?? 0,
        readExtraAsks: await labelled('ringkv_read_extra_asks_total', 'reason'),
      },
    };
  }
}

function membershipSummary(ids: string[], nodes: Map<string, RingkvNode>): string {
  return ids
    .map((id) => {
      const n = nodes.get(id);
      if (!n) return `${id}:not started`;
      const s = n.clusterState;
      const members = Object.values(s.members).map((m) => `${m.id}${m.status === 'valid' ? '' : `(${m.status})`}`);
      return `${id}:${n.hasJoined ? '' : 'unjoined,'}${digest(s)}[${members.join(',')}]`;
    })
    .join(' ');
}
