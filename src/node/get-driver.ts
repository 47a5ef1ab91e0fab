// The get driver (Riak's riak_kv_get_fsm.erl): runs one client read over the
// pure read state machine (src/core/get-coordinator.ts) — asks the replicas
// readPlan chooses, follows the givers of a replica still receiving the
// key's partition, applies the machine's effects (reply, read repair, the
// end of the late window) with the node's timers. It depends on a narrow
// context (GetDriverContext), never on RingkvNode.
import { readPlan, type Health } from '../core/apl.js';
import { GetCoordinator, type GetEffect } from '../core/get-coordinator.js';
import type { Quorum } from '../core/quorum.js';
import type { PreferenceList } from '../core/ring.js';
import type { Engine } from '../engine/types.js';
import { type ConflictMode, type Context, decodeRecord, join } from '../record/index.js';
import type { Clock, Timer } from '../transport/types.js';
import { sameBytes } from '../util/bytes.js';
import { NodeError, errorCode } from './errors.js';
import type { PeerMessageType, PeerReply, PeerRequestBody } from './messages.js';
import type { NodeMetrics } from './metrics.js';
import { isAllTombstones, withoutCovered } from './reaper.js';
import { asNodeError } from './replica.js';

/** How far a read follows givers that are themselves still receiving the partition. */
const MAX_GIVER_HOPS = 4;

/** What the get driver needs from the node around it. */
export interface GetDriverContext {
  readonly id: string;
  /** The engine itself: this node's own copy (N=1 fast path) and the reconciliation of answers. */
  readonly engine: Pick<Engine, 'getSync' | 'reconcile'>;
  readonly clock: Clock;
  readonly metrics: NodeMetrics;
  /** After answering a read, wait this long for late replies before read repair. */
  readonly readRepairWindowMs: number;
  /** Fan-out quorum: a read without R answers this long after it began asks one more replica (Cassandra's speculative retry); <= 0: never. */
  readonly readRetryAfterMs: number;
  /** The key's preference list under this node's ring (refuses an oversize or bad key). */
  preference(bucket: Buffer, key: Buffer, n: number): PreferenceList;
  /** This node's view of its peers' health at `now` (src/core/apl.ts). */
  healthAt(now: number): Health;
  /** Suspected at `now`. */
  isSuspect(node: string, now: number): boolean;
  /** In the cluster state at all (a member of any status). */
  isKnownMember(node: string): boolean;
  /** Whether this node coordinates its own clients' writes of a key (a valid primary). */
  coordinatesOwnWrites(pl: PreferenceList): boolean;
  /** The version of the ring this node routes by. */
  ringVersion(): number;
  /** Whether this node holds a reap floor for the key. */
  hasFloor(bucket: Buffer, key: Buffer): boolean;
  /** For a key of a partition this node is still receiving: the nodes to read it from instead; else null. */
  receivingSources(bucket: Buffer, key: Buffer): readonly string[] | null;
  /** This node's own copy as a replica answers with it (a substitute's includes its hints). */
  localRecord(bucket: Buffer, key: Buffer, withHintsToo: boolean): Promise<{ record: Buffer | null; reaped: Buffer | null }>;
  /** A typed peer request with the node's suspicion bookkeeping (src/node/messages.ts). */
  peerRequest<T extends PeerMessageType>(node: string, type: T, body: PeerRequestBody<T>, timeoutMs: number): Promise<PeerReply<T>>;
  /** Read repair: sends a record to a replica to merge (the put driver's sendMerge). */
  sendMerge(node: string, bucket: Buffer, key: Buffer, record: Buffer, mode: ConflictMode, durable: boolean, timeoutMs: number): Promise<boolean>;
  /** After a read that met reap floors: asks primaries holding only deleted history to reap too. */
  reapRepair(bucket: Buffer, key: Buffer, primaries: readonly string[], answers: ReadonlyMap<string, Buffer | null>, floors: readonly Buffer[], timeoutMs: number): void;
}

/** One replica's answer to a read (see fetch). */
interface Fetched {
  record: Buffer | null;
  floor: Buffer | null;
  /** Set when the replica is still receiving the key's partition: its givers, to read with it. */
  pending: readonly string[] | null;
}

/** A read's outcome before decoding (the facade decodes it once). */
export interface ReadOutcome {
  record: Buffer | null;
  answered: number;
}

export class GetDriver {
  constructor(private readonly ctx: GetDriverContext) {}

  /**
   * Reads ask the key's N primaries, replacing each suspected primary by the
   * next healthy fallback (sloppy quorum, Dynamo §4.6). A fallback answers
   * from its objects and from any hint it holds for the key: while the
   * primary is down the newest acknowledged version may live only in hints.
   * A suspected primary with no healthy fallback left is asked anyway. A
   * replica still receiving the key's partition answers with its givers: its
   * copy counts only together with one of theirs (see readGiver).
   */
  get(bucket: Buffer, key: Buffer, q: Quorum): Promise<ReadOutcome> {
    const ctx = this.ctx;
    const pl = ctx.preference(bucket, key, q.n);
    if (!pl.primaries.includes(ctx.id)) ctx.metrics.nonPrimaryReads.inc();
    const { replicas, substitutes, awaited, ask } = readPlan(pl, ctx.healthAt(ctx.clock.now()), ctx.id, ctx.coordinatesOwnWrites(pl), { fanout: q.readFanout, r: q.r, pr: q.pr });
    // This node is the key's only replica (N=1): its copy is the answer, now —
    // no state machine, timers or repairs — unless a reap floor or a pending
    // transfer makes the copy need the general path.
    if (replicas.length === 1 && replicas[0] === ctx.id && substitutes.size === 0 && !ctx.hasFloor(bucket, key) && !ctx.receivingSources(bucket, key)) {
      try {
        return Promise.resolve({ record: ctx.engine.getSync(bucket, key), answered: 1 });
      } catch (err) {
        return Promise.reject(asNodeError(err));
      }
    }
    // Reap floors answered by replicas (src/node/reaper.ts): siblings they
    // cover are deleted history (e.g. a fallback's stale hint of a reaped
    // key) and are never served or repaired back.
    const floors: Buffer[] = [];
    let floorCtx: Context | null = null;
    const answers = new Map<string, Buffer | null>();
    const merge = (records: readonly Uint8Array[]): Uint8Array | null => {
      const merged = ctx.engine.reconcile(records, q.mode);
      return floorCtx ? withoutCovered(merged, floorCtx) : merged;
    };
    const fsm = new GetCoordinator(replicas, q.r, merge, sameBytes, { primaries: pl.primaries, pr: q.pr, awaited, ask });
    return new Promise<ReadOutcome>((resolve, reject) => {
      const timers: Timer[] = [];
      const apply = (effects: GetEffect[]): void => {
        for (const e of effects) {
          if (e.kind === 'reply') {
            if (e.ok) resolve({ record: e.record ? Buffer.from(e.record) : null, answered: e.answered });
            else
              reject(
                new NodeError(
                  e.code,
                  `read quorum not reached: ${e.answered} of r=${e.needed} replicas answered, ${e.primaryAnswered} of pr=${e.primaryNeeded} primaries`,
                  { answered: e.answered, needed: e.needed },
                ),
              );
            timers.push(ctx.clock.setTimer(ctx.readRepairWindowMs, () => apply(fsm.onLateWindowEnd())));
          } else if (e.kind === 'repair') {
            ctx.metrics.readRepairs.inc();
            void ctx.sendMerge(e.node, bucket, key, Buffer.from(e.record), q.mode, false, q.timeoutMs).catch(() => undefined);
          } else if (e.kind === 'ask') {
            if (e.why !== 'first') ctx.metrics.readExtraAsks.inc({ reason: e.why });
            read(e.node);
          } else {
            timers.forEach((t) => t.cancel());
            if (floorCtx) ctx.reapRepair(bucket, key, pl.primaries, answers, floors, q.timeoutMs);
          }
        }
      };
      timers.push(ctx.clock.setTimer(q.timeoutMs, () => apply(fsm.onDeadline())));
      // Fan-out quorum: replicas left unasked, and R answers not in after the retry delay: one more (speculative retry).
      if (ask < replicas.length && ctx.readRetryAfterMs > 0 && ctx.readRetryAfterMs < q.timeoutMs) {
        timers.push(ctx.clock.setTimer(ctx.readRetryAfterMs, () => apply(fsm.onSlow())));
      }
      const noteFloor = (floor: Buffer | null): void => {
        if (!floor) return;
        floors.push(floor);
        floorCtx = join(floorCtx ?? [], decodeRecord(floor).context);
      };
      // Every node read from in this request (replicas, and givers read for a replica still
      // receiving the partition), each once: a giver that is also a replica is not read twice.
      const reads = new Map<string, Promise<Fetched>>();
      // Reads `node`, a replica the state machine asks (a giver's read started earlier is reused).
      const read = (node: string): void => {
        let fetched = reads.get(node);
        if (fetched === undefined) {
          fetched = this.fetch(node, bucket, key, q.timeoutMs, substitutes.has(node));
          reads.set(node, fetched);
        }
        fetched
          .then(async ({ record, floor, pending }) => {
            answers.set(node, record);
            noteFloor(floor);
            if (!pending) return apply(fsm.onReply(node, record));
            // `node` is still receiving the partition: its copy counts only together with a giver's.
            const from = await this.readGiver(node, pending, reads, bucket, key, q.timeoutMs, q.mode);
            from.floors.forEach(noteFloor);
            const present = [record, from.record].filter((r): r is Buffer => r !== null);
            return apply(fsm.onStandInReply(node, record, present.length === 0 ? null : ctx.engine.reconcile(present, q.mode)));
          })
          .catch((err: unknown) => apply(fsm.onFailure(node, errorCode(err))));
      };
      // Every replica asked at once starts before any answer is handled (a giver read later may reuse one).
      const first = fsm.start();
      for (const e of first) if (e.kind === 'ask') reads.set(e.node, this.fetch(e.node, bucket, key, q.timeoutMs, substitutes.has(e.node)));
      apply(first);
    });
  }

  /**
   * One replica's record (a substitute's includes its hints), and its reap
   * floor for the key if it has one; a record (or floor) that does not
   * decode counts as a failed replica.
   */
  private async fetch(node: string, bucket: Buffer, key: Buffer, timeoutMs: number, substitute: boolean): Promise<Fetched> {
    const ctx = this.ctx;
    let reply: { record: Uint8Array | null; reaped?: Uint8Array | null; pending?: readonly string[] | null };
    if (node === ctx.id) {
      const pending = ctx.receivingSources(bucket, key);
      reply = { ...(await ctx.localRecord(bucket, key, substitute)), pending };
    } else {
      const body: PeerRequestBody<'kv.get'> = { b: bucket, k: key, ring: ctx.ringVersion() };
      if (substitute) body.hints = true;
      reply = await ctx.peerRequest(node, 'kv.get', body, timeoutMs);
    }
    const record = reply.record ? Buffer.from(reply.record) : null;
    const floor = reply.reaped ? Buffer.from(reply.reaped) : null;
    // A peer's record is checked here; this node's own engine wrote its own.
    if (record && node !== ctx.id) decodeRecord(record);
    if (floor && !isAllTombstones(decodeRecord(floor))) throw new NodeError('INTERNAL', 'a reap floor with a live sibling');
    const pending = Array.isArray(reply.pending) && reply.pending.every((s) => typeof s === 'string') ? reply.pending : null;
    return { record, floor, pending };
  }

  /**
   * The copy of a giver of `node`, which is still receiving the key's
   * partition (the node it replaces first, healthy ones first): the answer
   * of one this request reads anyway (a replica too), else a read of its
   * own. A giver that is itself still receiving (a cluster that grew twice in
   * a row: c receives from b, which still receives from a) hands on to its
   * own givers, and the copies along that chain count together, up to
   * MAX_GIVER_HOPS; one that fails passes to the next. Healthy givers at any
   * depth come before suspected ones: a suspected giver may be a dead host
   * whose request only times out, and asking it before the healthy giver
   * one hop further made the read time out (issue 9: the simulated replace,
   * test/sim/replace-pending.sim.test.ts). None left: the replica counts as
   * failed. `floors` holds the floors of copies read here (a replica's floor
   * is noted with its answer).
   */
  private async readGiver(
    node: string,
    givers: readonly string[],
    reads: Map<string, Promise<Fetched>>,
    bucket: Buffer,
    key: Buffer,
    timeoutMs: number,
    mode: ConflictMode,
  ): Promise<{ record: Buffer | null; floors: Buffer[] }> {
    const now = this.ctx.clock.now();
    const seen = new Set([node]);
    // Givers still to ask, each with its hop count: healthy ones, then suspected ones (each group in the order found).
    const healthy: Array<{ giver: string; hop: number }> = [];
    const suspected: Array<{ giver: string; hop: number }> = [];
    const enqueue = (list: readonly string[], hop: number): void => {
      if (hop >= MAX_GIVER_HOPS) return;
      for (const g of list) {
        if (seen.has(g) || !this.ctx.isKnownMember(g)) continue;
        seen.add(g);
        (this.ctx.isSuspect(g, now) ? suspected : healthy).push({ giver: g, hop });
      }
    };
    // Copies of the still-receiving givers met on the way: they count with the one that has the partition.
    const chain: Buffer[] = [];
    const floors: Buffer[] = [];
    enqueue(givers, 0);
    let lastError: unknown = new NodeError('UNAVAILABLE', `${node} is still receiving the key's partition and none of its givers (${givers.join(', ')}) is a member`);
    for (let next = healthy.shift() ?? suspected.shift(); next !== undefined; next = healthy.shift() ?? suspected.shift()) {
      const { giver, hop } = next;
      let read = reads.get(giver);
      const own = read === undefined;
      if (read === undefined) {
        read = this.fetch(giver, bucket, key, timeoutMs, false);
        reads.set(giver, read);
        this.ctx.metrics.transferReads.inc();
      }
      try {
        const from = await read;
        if (own && from.floor) floors.push(from.floor);
        if (from.record) chain.push(from.record);
        if (!from.pending) return { record: chain.length === 0 ? null : this.ctx.engine.reconcile(chain, mode), floors };
        enqueue(from.pending, hop + 1);
        lastError = new NodeError('UNAVAILABLE', `${node} and its giver ${giver} are both still receiving the key's partition`);
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }
}
