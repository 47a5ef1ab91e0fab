// The replica role (Riak's riak_kv_vnode.erl): everything that reads or
// writes this node's local copy of a key — local reads (with hints and reap
// floors), merges from peers, hints held for others, the local part of a
// reap, the per-key gates that order writes and reaps — and one handler per
// peer request kind that reaches a replica. It depends on a narrow context
// (ReplicaContext), never on RingkvNode.
import { decodeContext, decodeRecord, encodeContext, join, keyId, type ConflictMode, type WriteAttributes } from '../record/index.js';
import { type ReapCheck, localReapStep } from '../core/reap.js';
import { invariant } from '../core/types.js';
import { EngineError, type Engine, type MergeRequest } from '../engine/types.js';
import type { Clock } from '../transport/types.js';
import { NodeError, nodeErrorFrom } from './errors.js';
import { HintStore, withHints } from './handoff.js';
import { KeyGates } from './key-gates.js';
import type { PeerReplyBody, PeerRequest } from './messages.js';
import type { NodeMetrics } from './metrics.js';
import { ReapFloors, isAllTombstones, withoutCovered } from './reaper.js';

/** What the replica role needs from the node around it. */
export interface ReplicaContext {
  readonly id: string;
  /** The engine itself (not the guarded one the replica hands to services). */
  readonly engine: Engine;
  readonly clock: Clock;
  readonly metrics: NodeMetrics;
  log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void;
  /** Called after this replica reaped a tombstone (tests, the simulator). */
  onReap?: (e: { bucket: Buffer; key: Buffer; record: Buffer }) => void;
  /** Throws UNAVAILABLE until this node joined its cluster. */
  checkJoined(): void;
  /** The ring this node routes by. */
  ring(): { version: number; claimant: string };
  /** A peer routes by a newer ring than this node's: fetch its state now. */
  pullState(from: string): void;
  /** The bucket's conflict mode. */
  modeOf(bucket: Buffer): ConflictMode;
  /** The key's primaries under this node's ring; null before the join (a private single-node ring). */
  primariesOf(bucket: Buffer, key: Buffer): readonly string[] | null;
  /** Whether `node` is a current member and one of the key's primaries. */
  isPrimaryMember(node: string, bucket: Buffer, key: Buffer): boolean;
  /** For a key of a partition this node is still receiving: the nodes to read it from instead; else null. */
  receivingSources(bucket: Buffer, key: Buffer): readonly string[] | null;
  /** Tells `node` to reap `record` (see RingkvNode.sendReap). */
  sendReap(node: string, bucket: Buffer, key: Buffer, record: Buffer): Promise<boolean>;
}


export class Replica {
  readonly hints: HintStore;
  /** Keys this node reaped, remembered for reapFloorTtlMs (src/node/reaper.ts). */
  readonly floors: ReapFloors;
  /** Per key: writes in progress and a reap in progress, which exclude each other. */
  readonly gates = new KeyGates();
  /** The engine as background services see it: merges go through the reap floors and the key gates. */
  readonly guardedEngine: Engine;

  constructor(
    private readonly ctx: ReplicaContext,
    floors: { ttlMs: number; maxEntries: number },
  ) {
    this.hints = new HintStore(ctx.engine);
    this.floors = new ReapFloors(ctx.engine, floors);
    this.guardedEngine = this.guardEngine(ctx.engine);
  }

  // ---------------------------------------------------------------------------
  // One handler per peer request kind (bodies decoded by src/node/messages.ts)

  async onGet(from: string, req: PeerRequest<'kv.get'>): Promise<PeerReplyBody<'kv.get'>> {
    this.ctx.metrics.replicaRequests.inc({ type: 'kv.get' });
    this.ctx.checkJoined();
    // Routed by a ring this node has not adopted yet: under it this node may be a new
    // replica that does not know it is still to receive the key's partition.
    const ring = this.ctx.ring();
    if (req.ring !== undefined && req.ring > ring.version) {
      this.ctx.pullState(from);
      throw new NodeError('UNAVAILABLE', `read routed by ring v${req.ring}; this node is still on v${ring.version}`);
    }
    // A partition still being received: this copy is no source on its own; the
    // answer names where to read instead (checked before reading: a finish that
    // lands during the read must not make a partial copy count).
    const pending = this.ctx.receivingSources(req.b, req.k);
    // A fallback standing in for a down primary answers with its hints for the key too.
    const reply = await this.localRecord(req.b, req.k, req.hints === true);
    return pending ? { ...reply, pending: [...pending] } : reply;
  }

  async onMerge(from: string, req: PeerRequest<'kv.merge'>): Promise<PeerReplyBody<'kv.merge'>> {
    this.ctx.metrics.replicaRequests.inc({ type: 'kv.merge' });
    const durable = req.durable === true;
    const hint = req.hint ?? null;
    if (hint !== null && hint !== this.ctx.id) {
      await this.storeHint(hint, req.b, req.k, req.record, durable);
      return { durable, hinted: true };
    }
    await this.mergeFromPeer(from, req.b, req.k, req.record, req.lww === true ? 'lww' : 'siblings', durable);
    return { durable };
  }

  async onMergeBatch(from: string, req: PeerRequest<'kv.mergebatch'>): Promise<PeerReplyBody<'kv.mergebatch'>> {
    this.ctx.metrics.replicaRequests.inc({ type: 'kv.mergebatch' });
    // Hint delivery in batches: the merges run together, so durable ones share flushes.
    const durable = req.durable === true;
    await Promise.all(req.items.map((item) => this.mergeFromPeer(from, item.b, item.k, item.record, item.lww === true ? 'lww' : 'siblings', durable)));
    return { durable, merged: req.items.length };
  }

  async onReapCheck(_from: string, req: PeerRequest<'kv.reapcheck'>): Promise<PeerReplyBody<'kv.reapcheck'>> {
    this.ctx.checkJoined();
    return this.reapCheck(req.b, req.k);
  }

  async onReapRequest(_from: string, req: PeerRequest<'kv.reap'>): Promise<PeerReplyBody<'kv.reap'>> {
    return { reaped: await this.reapLocal(req.b, req.k, req.record) };
  }

  // ---------------------------------------------------------------------------
  // Local reads

  /** The local record (with hints: merged with any held for the key, minus what this node's floor covers) and the key's reap floor. */
  async localRecord(bucket: Buffer, key: Buffer, withHintsToo: boolean): Promise<{ record: Buffer | null; reaped: Buffer | null }> {
    const record = this.ctx.engine.getSync(bucket, key);
    const floor = this.floors.get(bucket, key);
    if (!withHintsToo) return { record, reaped: floor?.record ?? null };
    const merged = withHints(this.ctx.engine, record, await this.hints.lookup(bucket, key));
    return { record: merged && floor ? withoutCovered(merged, floor.context) : merged, reaped: floor?.record ?? null };
  }

  /** What a reap check needs from this node: its copy, whether it holds a hint for the key, and its ring. */
  async reapCheck(bucket: Buffer, key: Buffer): Promise<ReapCheck> {
    const ring = this.ctx.ring();
    return {
      record: await this.ctx.engine.get(bucket, key),
      hinted: (await this.hints.lookup(bucket, key)).length > 0,
      ringVersion: ring.version,
      claimant: ring.claimant,
    };
  }

  // ---------------------------------------------------------------------------
  // Local writes

  /**
   * A new version of the key made here (this node coordinates it). A key
   * this node reaped: its new dot must be above every dot it issued for the
   * key before (reaper.ts "Counter reuse"). The floor's context joins the
   * client's; the engine's counter rule does the rest.
   */
  coordinate(bucket: Buffer, key: Buffer, context: Buffer | null, value: Buffer | null, mode: ConflictMode, durable: boolean, attrs: WriteAttributes = {}): Buffer | Promise<Buffer> {
    const engine = this.ctx.engine;
    const coordinate = () => {
      const floor = this.floors.get(bucket, key);
      const ctx = floor ? encodeContext(join(decodeContext(context), floor.context)) : context;
      const req = { bucket, key, context: ctx, value, now: this.ctx.clock.now(), mode, contentType: attrs.contentType, meta: attrs.meta };
      return durable ? engine.coordinate({ ...req, durable: true }) : engine.coordinateSync(req);
    };
    // A write that does not wait for disk runs to the end at once (synchronously): nothing can interleave unless a reap already holds the key.
    if (this.gates.reapUnderway(bucket, key) || durable) {
      return this.gates.write(bucket, key, async () => coordinate()).catch((err: unknown) => {
        throw asNodeError(err);
      });
    }
    try {
      return coordinate() as Buffer;
    } catch (err) {
      throw asNodeError(err);
    }
  }

  /** A replica write from a peer (replication, repair, hint delivery). */
  async mergeFromPeer(from: string, bucket: Buffer, key: Buffer, record: Buffer, mode: ConflictMode, durable: boolean): Promise<void> {
    // A copy for a key this node does not replicate (any more) under its
    // ring — from a sender on an older ring, or a hint aimed under one: its
    // transfer of the partition may be over, so the copy would stay behind
    // here, where no read and no anti-entropy of the key's replicas looks.
    // It holds it as a hint for the key's first primary instead.
    const primaries = this.ctx.primariesOf(bucket, key);
    if (primaries !== null && !primaries.includes(this.ctx.id)) {
      await this.storeHint(primaries[0]!, bucket, key, record, durable);
      return;
    }
    const kept = await this.mergeLocal(bucket, key, record, mode, durable);
    // A stale copy of a key this node reaped, from another primary (e.g.
    // its anti-entropy, after its kv.reap was lost): tell it to reap too.
    if (!kept && this.ctx.isPrimaryMember(from, bucket, key)) {
      const floor = this.floors.get(bucket, key);
      if (floor) void this.ctx.sendReap(from, bucket, key, floor.record);
    }
  }

  /**
   * Merges a replica's record into this node's objects, minus what the key's
   * reap floor covers (deleted history). Resolves with whether anything was
   * merged (false: the record held only deleted history).
   */
  async mergeLocal(bucket: Buffer, key: Buffer, record: Buffer, mode: ConflictMode, durable: boolean): Promise<boolean> {
    const engine = this.ctx.engine;
    const merge = (): boolean | Promise<boolean> => {
      const floor = this.floors.get(bucket, key);
      const kept = floor ? withoutCovered(record, floor.context) : record;
      if (kept === null) return false;
      if (!durable) return (engine.mergeSync({ bucket, key, record: kept, mode }), true);
      return engine.merge({ bucket, key, record: kept, mode, durable }).then(() => true);
    };
    // A write that does not wait for disk runs to the end at once: nothing can interleave unless a reap already holds the key.
    try {
      return await (durable || this.gates.reapUnderway(bucket, key) ? this.gates.write(bucket, key, async () => merge()) : merge());
    } catch (err) {
      this.logIfAtHardLimit(err, keyFields(bucket, key));
      throw err;
    }
  }

  /** Holds a replica for `target` in the hint store (never the objects store); resolves with whether it was flushed. */
  async storeHint(target: string, bucket: Buffer, key: Buffer, record: Buffer, durable: boolean): Promise<boolean> {
    // A copy for this node itself belongs in its objects, where reads and anti-entropy look.
    invariant(target !== this.ctx.id, 'a hint for this node itself');
    await this.hints.put(target, bucket, key, record);
    this.ctx.metrics.hintsStored.inc();
    this.ctx.metrics.hintsPending.set(this.hints.pending());
    // hintPut alone is not durable (it reaches disk on the background flush).
    if (durable) await this.ctx.engine.flush();
    return durable;
  }

  /**
   * Merges refuse only at the encoding's hard maximum of siblings (65535;
   * client writes stop at maxSiblings), which needs hundreds of sides of a
   * partition writing one key at once. The replicas of that key then stay
   * apart, so say so loudly.
   */
  private logIfAtHardLimit(err: unknown, fields: Record<string, unknown>): void {
    if (err instanceof EngineError && err.code === 'TOO_MANY_SIBLINGS') {
      this.ctx.log('error', 'merge refused at the hard sibling maximum: the key\'s replicas cannot converge until a client write with its context resolves the siblings', { ...fields, error: err.message });
    }
  }

  // ---------------------------------------------------------------------------
  // The local part of a reap (docs/cluster.md "Deletes and tombstones")

  /**
   * This replica's part of a reap: `record` is a reaped (or being reaped)
   * all-tombstone record. The floor is written first (durably), then:
   * - the stored record is `record`: the engine's compare-and-delete;
   * - the stored record holds only deleted history (every sibling covered by
   *   `record`'s context — a replica that missed the reap, or was refilled
   *   from a stale copy after losing its data): `record` is merged in (which
   *   leaves tombstones only) and that is reaped;
   * - anything newer, or no record: nothing is deleted.
   * A reap that does not happen puts the previous floor back (a floor must
   * only ever stand for a reap that happened), except with no record at
   * all: then the floor guards this replica against late stale copies.
   */
  reapLocal(bucket: Buffer, key: Buffer, record: Buffer): Promise<boolean> {
    let tomb;
    try {
      tomb = decodeRecord(record);
    } catch (err) {
      throw asNodeError(err);
    }
    if (!isAllTombstones(tomb)) throw new NodeError('BAD_REQUEST', 'kv.reap: only an all-tombstone record can be reaped');
    return this.gates.exclusive(bucket, key, async () => {
      const engine = this.ctx.engine;
      const metrics = this.ctx.metrics;
      const now = this.ctx.clock.now();
      const stored = await engine.get(bucket, key);
      const step = localReapStep(stored, record, tomb);
      if (step === 'floor') {
        if (this.floors.get(bucket, key) || !this.floors.full()) await this.floors.add(bucket, key, record, now);
        metrics.reapFloors.set(this.floors.size);
        return false;
      }
      if (step === 'refuse') return false;
      invariant(stored !== null, 'a local reap step other than floor has a stored record');
      let target = stored;
      if (step === 'merge') {
        const mode = this.ctx.modeOf(bucket);
        let merged: Buffer;
        try {
          merged = engine.reconcile([stored, record], mode);
        } catch (err) {
          // Both were decoded above: CORRUPT_RECORD here means no sibling survives the merge, nothing to reap through the engine.
          if (err instanceof EngineError && err.code === 'CORRUPT_RECORD') return false;
          throw err;
        }
        if (!isAllTombstones(decodeRecord(merged))) return false;
        target = await engine.merge({ bucket, key, record: merged, mode, durable: false });
        if (!isAllTombstones(decodeRecord(target))) return false;
      }
      const prev = await this.floors.add(bucket, key, target, now);
      let reaped = false;
      try {
        reaped = await engine.reap(bucket, key, target);
      } finally {
        if (!reaped) await this.floors.restore(bucket, key, prev);
        metrics.reapFloors.set(this.floors.size);
      }
      if (reaped) {
        metrics.tombstonesReaped.inc();
        this.ctx.onReap?.({ bucket: Buffer.from(bucket), key: Buffer.from(key), record: target });
      }
      return reaped;
    });
  }

  // ---------------------------------------------------------------------------
  // The engine handed to background services

  /**
   * The engine handed to background services (anti-entropy, transfers,
   * handoff): the same engine, except that merges go through the reap
   * floors like the node's own (so anti-entropy cannot copy a stale replica's
   * deleted value back onto a node that reaped the key).
   */
  private guardEngine(engine: Engine): Engine {
    const filter = (req: MergeRequest): Uint8Array | null => {
      const floor = this.floors.get(req.bucket, req.key);
      return floor ? withoutCovered(req.record, floor.context) : req.record;
    };
    const merge = (req: MergeRequest): Promise<Buffer> =>
      this.gates.write(req.bucket, req.key, async () => {
        const record = filter(req);
        if (record === null) return (await engine.get(req.bucket, req.key)) ?? Buffer.alloc(0);
        return engine.merge({ ...req, record }).catch((err: unknown) => {
          this.logIfAtHardLimit(err, keyFields(req.bucket, req.key));
          throw err;
        });
      });
    // Every key's gate (in sorted order: no deadlock with reaps), filter, one batch.
    const mergeMany = (reqs: ReadonlyArray<MergeRequest>): Promise<Buffer[]> =>
      this.gates.writeMany(
        reqs.map((r) => keyId(r.bucket, r.key)),
        async () => {
          const kept = reqs.map((r) => ({ ...r, record: filter(r) }));
          const live = kept.filter((r): r is MergeRequest => r.record !== null);
          const merged = live.length > 0 ? await engine.mergeMany(live).catch((err: unknown) => {
            // The engine's batch error does not name the item.
            this.logIfAtHardLimit(err, { batchOfKeys: live.length });
            throw err;
          }) : [];
          let i = 0;
          const out: Buffer[] = [];
          for (const r of kept) out.push(r.record !== null ? merged[i++]! : ((await engine.get(r.bucket, r.key)) ?? Buffer.alloc(0)));
          return out;
        },
      );
    return new Proxy(engine, {
      get: (target, prop) => {
        if (prop === 'merge') return merge;
        if (prop === 'mergeMany') return mergeMany;
        // Background services write through the floors and the key gates: asynchronously.
        if (prop === 'mergeSync' || prop === 'coordinateSync') return () => { throw new NodeError('INTERNAL', `${prop} is not for background services`); };
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v;
      },
    });
  }
}

export function keyFields(bucket: Uint8Array, key: Uint8Array): Record<string, string> {
  return { bucket: Buffer.from(bucket).toString('utf8'), key: Buffer.from(key).toString('base64url') };
}

export function asNodeError(err: unknown): Error {
  if (err instanceof EngineError) return nodeErrorFrom(err.code, err.message);
  return err as Error;
}
