// The put driver (Riak's riak_kv_put_fsm.erl): runs one client write over
// the pure write state machine (src/core/put-coordinator.ts). A primary
// coordinates (its replica role makes the version) and replicates the copies
// writePlan chooses; a non-primary forwards to a primary (forwardOrder), once
// per write id; when no primary takes the write it coordinates as a fallback
// under a one-off actor (the engine makes that version: coordinateDetached).
// It depends on a narrow context (PutDriverContext), never on RingkvNode.
import { type Health, fallbackCoordination, forwardOrder, writePlan } from '../core/apl.js';
import { PutCoordinator, type PutEffect } from '../core/put-coordinator.js';
import type { Quorum } from '../core/quorum.js';
import type { PreferenceList } from '../core/ring.js';
import { invariant } from '../core/types.js';
import type { Engine } from '../engine/types.js';
import { type ConflictMode, type WriteAttributes, decodeRecord } from '../record/index.js';
import { isTransportError, type Clock, type Timer } from '../transport/types.js';
import { NodeError, nodeErrorFrom } from './errors.js';
import type { PeerMessageType, PeerReply, PeerRequestBody } from './messages.js';
import type { NodeMetrics } from './metrics.js';
import { isAllTombstones } from './reaper.js';
import { type Replica, asNodeError } from './replica.js';

/** Forwarded write ids remembered at most (oldest dropped first). */
const MAX_REMEMBERED_WRITES = 100_000;
/** How long past its deadline a forwarded write's outcome is remembered. */
const FORWARDED_WRITE_TTL_MS = 10_000;
/** The end of the last block of one-off actor numbers reserved (see oneOffActor). */
const ONE_OFF_ACTORS_META = 'fallback.actors';
const ONE_OFF_ACTOR_BLOCK = 1000;

export interface PutResult {
  record: Buffer;
  acks: number;
}

/** What the put driver needs from the node around it. */
export interface PutDriverContext {
  readonly id: string;
  /** The engine itself: its actor, fallback versions (coordinateDetached) and metadata (one-off actor blocks). */
  readonly engine: Pick<Engine, 'actor' | 'coordinateDetached' | 'metaGet' | 'metaPut' | 'flush'>;
  readonly clock: Clock;
  readonly metrics: NodeMetrics;
  /** The replica role: this node's own copy of a write (made, merged, or held as a hint). */
  readonly replica: Pick<Replica, 'coordinate' | 'mergeLocal' | 'storeHint'>;
  /** Sloppy quorum: further attempts per replica of a write (on fallbacks) after a failed one. */
  readonly writeRetries: number;
  /** Tombstone reaping delay; -1 keeps tombstones (no reap is scheduled). */
  readonly reapDelayMs: number;
  /** This node's view of its peers' health at `now` (src/core/apl.ts). */
  healthAt(now: number): Health;
  /** Whether this node coordinates its own clients' writes of a key (a valid primary) rather than forwarding them. */
  coordinatesOwnWrites(pl: PreferenceList): boolean;
  /** A typed peer request with the node's suspicion bookkeeping (src/node/messages.ts). */
  peerRequest<T extends PeerMessageType>(node: string, type: T, body: PeerRequestBody<T>, timeoutMs: number): Promise<PeerReply<T>>;
  /** A delete every primary acknowledged directly: check and reap it later (the node's reap coordination). */
  scheduleReap(bucket: Buffer, key: Buffer, n: number): void;
}

export class PutDriver {
  /**
   * Writes forwarded to this node, by the forwarder's write id: a forward
   * retried after a lost reply gets the first coordination's outcome rather
   * than a second version (see forward). Insertion order ~ expiry order.
   */
  private readonly forwardedWrites = new Map<string, { expiresAt: number; outcome: Promise<PutResult> }>();
  private writeIdSeq = 0;
  /** One-off actors (see oneOffActor): the block reserved in engine metadata, and its next unused number. */
  private oneOff = { next: 0, end: 0 };
  private oneOffReserving: Promise<void> | null = null;

  constructor(private readonly ctx: PutDriverContext) {}

  /**
   * A client's put (value) or delete (value null). A primary coordinates (its
   * engine creates the new dot from the key's own record); a non-primary
   * forwards to a healthy one, and coordinates itself only when no primary
   * can (coordinateAsFallback). So does a leaving primary: its partitions are
   * moving away, and cut off from the cluster it may hold a copy the others
   * have since deleted and reaped (a reap does not wait for nodes that left).
   */
  put(bucket: Buffer, key: Buffer, context: Buffer | null, value: Buffer | null, q: Quorum, pl: PreferenceList, attrs: WriteAttributes = {}): Promise<PutResult> {
    return this.ctx.coordinatesOwnWrites(pl) ? this.coordinate(bucket, key, context, value, q, pl, attrs) : this.forward(bucket, key, context, value, q, pl, attrs);
  }

  /**
   * Sloppy quorum write (Dynamo §4.6). This node (a primary) creates the
   * version; each other primary gets a copy, except that a suspected primary
   * is replaced by the next healthy fallback, which stores the copy as a hint
   * naming that primary and acks; a hinted ack counts toward W (and DW), not
   * toward PW. A copy whose request fails is retried on the next fallback
   * (at most `writeRetries` times per copy, until the deadline).
   *
   * When is a write refused? Only when the quorum cannot be met by this node
   * plus the live nodes it can reach: with W=1 the coordinator's own write is
   * the one ack, so a W=1 write succeeds whenever some primary can coordinate
   * it, whatever else is down. With every primary down, the node asked
   * coordinates it as a fallback under a one-off actor (coordinateAsFallback),
   * so a W=1 write is refused only when no node can take it.
   */
  async coordinate(
    bucket: Buffer,
    key: Buffer,
    context: Buffer | null,
    value: Buffer | null,
    q: Quorum,
    pl: PreferenceList,
    attrs: WriteAttributes = {},
  ): Promise<PutResult> {
    // Synchronous unless it waits for disk or a reap of the key (no extra turn before the copies go out).
    const made = this.ctx.replica.coordinate(bucket, key, context, value, q.mode, q.dw > 0, attrs);
    const record = made instanceof Promise ? await made : made;
    return this.replicatePut(bucket, key, value, record, q, pl, null);
  }

  /**
   * Sends a version this node made to the key's replicas (the quorum part of
   * coordinate). `heldFor`: a fallback coordinator already holds its copy
   * as a hint for this primary (see coordinateAsFallback); the other copies
   * go to the other primaries or their substitutes.
   */
  private replicatePut(bucket: Buffer, key: Buffer, value: Buffer | null, record: Buffer, q: Quorum, pl: PreferenceList, heldFor: string | null): Promise<PutResult> {
    const startedAt = this.ctx.clock.now();
    const { targets, retries } = writePlan(pl, this.ctx.healthAt(startedAt), this.ctx.id, heldFor);
    // This node's own copy is made: a copy to itself would count twice.
    invariant(targets.every((t) => t.node !== this.ctx.id), 'a write target is the coordinator itself');
    const fsm = new PutCoordinator(targets, q.w, q.dw, q.dw > 0, {
      pw: q.pw,
      // Retries go to healthy fallbacks first; a suspected one may still answer.
      fallbacks: retries,
      maxRetries: this.ctx.writeRetries,
    });
    // A delete whose tombstone every primary took directly (no fallback, no
    // hint) is reaped after reapDelayMs (see reap()).
    let directAcks = 0;
    const reapable = value === null && this.ctx.reapDelayMs >= 0 && pl.primaries.includes(this.ctx.id) && isAllTombstones(decodeRecord(record));
    return new Promise<PutResult>((resolve, reject) => {
      let deadline: Timer | null = null;
      const apply = (effects: PutEffect[]): void => {
        for (const e of effects) {
          if (e.kind === 'send') {
            if (e.hintFor !== null) this.ctx.metrics.fallbackWrites.inc();
            // A first attempt gets half the deadline, so that a copy whose
            // node does not answer can still be retried on a fallback in time.
            const left = startedAt + q.timeoutMs - this.ctx.clock.now();
            const attemptMs = Math.max(1, e.hintFor === null ? Math.min(left, Math.ceil(q.timeoutMs / 2)) : left);
            this.sendMerge(e.node, bucket, key, record, q.mode, q.dw > 0, attemptMs, e.hintFor).then(
              (durable) => {
                if (e.hintFor === null) directAcks++;
                apply(fsm.onAck(e.node, durable));
              },
              () => apply(fsm.onFailure(e.node)),
            );
          } else if (e.kind === 'reply') {
            if (e.ok) resolve({ record, acks: e.acks });
            else
              reject(
                new NodeError(
                  e.code,
                  `write quorum not reached: ${e.acks} of w=${e.needed} acks, ${e.durableAcks} of dw=${e.durableNeeded} durable, ${e.primaryAcks} of pw=${e.primaryNeeded} from primaries`,
                  { acks: e.acks, needed: e.needed },
                ),
              );
          } else {
            deadline?.cancel();
            if (reapable && directAcks === targets.length) this.ctx.scheduleReap(bucket, key, q.n);
          }
        }
      };
      deadline = this.ctx.clock.setTimer(q.timeoutMs, () => apply(fsm.onDeadline()));
      apply(fsm.start());
    });
  }

  /**
   * A non-replica hands the write to a primary (Dynamo §5): healthy ones
   * first, suspected ones last. An attempt gets half the time left while
   * other primaries remain, so one that does not answer leaves time for the
   * next.
   *
   * One client write, one version: every attempt carries the same write id,
   * and a coordinator asked twice with one id answers with its first outcome
   * (forwardedWrites). The write moves on to another primary only after a
   * failure that proves the last one never got it (the transport never sent
   * it, or the peer refused it as overloaded before handling it). After an
   * ambiguous failure (a timeout, a connection lost with the request in
   * flight) the write may exist at that primary, so only that primary is
   * asked again, with the time left; if it still does not answer the write
   * fails with TIMEOUT (its outcome unknown) instead of being coordinated a
   * second time elsewhere under a new dot (issue #9, finding 2).
   *
   * Without pw, only healthy primaries are tried, and when none of them took
   * the write this node coordinates it itself with the time left (sloppy
   * quorum: see coordinateAsFallback). With pw, suspected primaries are tried
   * too, and a write no primary takes is refused.
   */
  async forward(
    bucket: Buffer,
    key: Buffer,
    context: Buffer | null,
    value: Buffer | null,
    q: Quorum,
    pl: PreferenceList,
    attrs: WriteAttributes,
    /** How many times the write is handed on with this forward (2: a forwarded write this node's ring routes elsewhere). */
    forwards = 1,
  ): Promise<PutResult> {
    const started = this.ctx.clock.now();
    const canFallBack = q.pw === 0;
    const ordered = forwardOrder(pl, this.ctx.healthAt(started), this.ctx.id, canFallBack);
    const wid = `${this.ctx.id}:${started}:${this.writeIdSeq++}`;
    const tried: string[] = [];
    const attempt = async (node: string, attemptMs: number): Promise<PutResult> => {
      // The coordinator answers (even a failure) a little before this attempt's deadline.
      const coordinatorMs = Math.max(1, attemptMs - Math.min(100, Math.floor(attemptMs / 5)));
      this.ctx.metrics.forwarded.inc({ op: value === null ? 'delete' : 'put' });
      const body: PeerRequestBody<'kv.put'> = { b: bucket, k: key, context, value, n: q.n, w: q.w, dw: q.dw, pw: q.pw, timeoutMs: coordinatorMs, wid };
      if (forwards > 1) body.fwd = forwards;
      if (attrs.contentType !== undefined) body.ct = attrs.contentType;
      if (attrs.meta !== undefined && attrs.meta.length > 0) body.meta = attrs.meta.map(([n, v]) => [n, v]);
      const reply = await this.ctx.peerRequest(node, 'kv.put', body, attemptMs);
      return { record: reply.record, acks: reply.acks };
    };
    for (const [i, node] of ordered.entries()) {
      const left = started + q.timeoutMs - this.ctx.clock.now();
      if (left <= 0) break;
      tried.push(node);
      try {
        return await attempt(node, i < ordered.length - 1 ? Math.ceil(left / 2) : left);
      } catch (err) {
        if (isTransportError(err, 'REMOTE')) throw nodeErrorFrom(err.remoteCode, err.message);
        if (isTransportError(err) && (err.unsent || err.code === 'OVERLOADED')) continue; // `node` never got it
        if (!isTransportError(err)) throw err;
        return this.forwardAgainOrGiveUp(node, started + q.timeoutMs, attempt, err.message);
      }
    }
    const left = started + q.timeoutMs - this.ctx.clock.now();
    if (canFallBack && left > 0) return this.coordinateAsFallback(bucket, key, context, value, { ...q, timeoutMs: left }, pl, attrs);
    throw new NodeError('UNAVAILABLE', `no primary could coordinate the write (tried ${tried.join(', ') || 'none'} within ${q.timeoutMs} ms)`);
  }

  /** After an ambiguous forward failure: asks the same coordinator again (same write id) until the deadline. */
  private async forwardAgainOrGiveUp(
    node: string,
    deadline: number,
    attempt: (node: string, attemptMs: number) => Promise<PutResult>,
    firstError: string,
  ): Promise<PutResult> {
    let lastError = firstError;
    for (let round = 0; round < 8; round++) {
      const left = deadline - this.ctx.clock.now();
      if (left <= 0) break;
      try {
        return await attempt(node, left);
      } catch (err) {
        if (isTransportError(err, 'REMOTE')) throw nodeErrorFrom(err.remoteCode, err.message);
        if (!isTransportError(err)) throw err;
        lastError = err.message;
        // Unsent (backoff) or overloaded: wait a little before asking again.
        if (err.unsent || err.code === 'OVERLOADED') await this.sleep(Math.min(100, Math.max(1, deadline - this.ctx.clock.now())));
      }
    }
    throw new NodeError(
      'TIMEOUT',
      `the write was handed to ${node}, which did not answer in time (${lastError}); it may or may not have been stored, and was not coordinated again elsewhere so that it is not made twice`,
    );
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.ctx.clock.setTimer(ms, resolve));
  }

  /** Coordinates a forwarded write once per write id; a repeat gets the first outcome. */
  coordinateForwarded(wid: string | null, timeoutMs: number, run: () => Promise<PutResult>): Promise<PutResult> {
    if (wid === null) return run();
    const now = this.ctx.clock.now();
    for (const [id, entry] of this.forwardedWrites) {
      if (entry.expiresAt > now && this.forwardedWrites.size <= MAX_REMEMBERED_WRITES) break;
      this.forwardedWrites.delete(id);
    }
    const known = this.forwardedWrites.get(wid);
    if (known !== undefined) return known.outcome;
    const outcome = run();
    outcome.catch(() => {}); // a repeat sees the same failure; the first caller handles it
    // Kept past the forwarder's deadline: a repeat can only come within it.
    this.forwardedWrites.set(wid, { expiresAt: now + timeoutMs + FORWARDED_WRITE_TTL_MS, outcome });
    invariant(this.forwardedWrites.size <= MAX_REMEMBERED_WRITES + 1, 'forwarded write ids beyond their bound');
    return outcome;
  }

  /**
   * A write no primary of the key could coordinate (all unreachable, or
   * refusing): this node makes the version and keeps its copy as a hint for
   * the first primary; the other copies go to the other primaries or, for
   * suspected ones, to healthy fallbacks as hints (Dynamo's sloppy quorum).
   * Only when W (and DW) can be met by this node plus the healthy nodes it
   * can reach; with pw it is never done (forward).
   *
   * The new dot is (a one-off actor, 1), never this node's own actor: the
   * engine's counter for an actor is max(stored, context) + 1 over the key's
   * local record, and a non-primary keeps no record of the key — its hints
   * are deleted once delivered — so a second write here would reissue the
   * same dot for another value. A one-off actor (`<engine actor>/f<n>`, n from
   * a durable counter: see withOneOffActor) has made no other dot anywhere, so
   * its dot is new whatever this node remembers. The engine makes the version
   * (coordinateDetached: its coordinate over no stored record, under that
   * actor), so it is the code the replicas merge it with, Rust in production.
   * The cost: each such write adds one entry to the key's version vector for
   * good (docs/cluster.md).
   */
  private async coordinateAsFallback(
    bucket: Buffer,
    key: Buffer,
    context: Buffer | null,
    value: Buffer | null,
    q: Quorum,
    pl: PreferenceList,
    attrs: WriteAttributes,
  ): Promise<PutResult> {
    // This node's copy stands for the first primary (not itself: a leaving primary coordinates as a fallback).
    const { heldFor, reachable } = fallbackCoordination(pl, this.ctx.healthAt(this.ctx.clock.now()), this.ctx.id);
    if (heldFor === undefined) throw new NodeError('UNAVAILABLE', 'no other replica of the key to hold the write for');
    if (1 + reachable.length < Math.max(q.w, q.dw)) {
      throw new NodeError('UNAVAILABLE', `no primary could coordinate the write, and w=${q.w} dw=${q.dw} cannot be met by this node and the ${reachable.length} other nodes it can reach`);
    }
    let record: Buffer;
    try {
      // The engine builds the version (the code replicas merge it with) and checks
      // the write as coordinate does: value, attributes, context (also a full one).
      record = await this.withOneOffActor((actor) =>
        this.ctx.engine.coordinateDetached({ context, actor, value, now: this.ctx.clock.now(), mode: q.mode, contentType: attrs.contentType, meta: attrs.meta }),
      );
      await this.ctx.replica.storeHint(heldFor, bucket, key, record, q.dw > 0);
    } catch (err) {
      throw asNodeError(err);
    }
    this.ctx.metrics.fallbackCoordinated.inc();
    return this.replicatePut(bucket, key, value, record, q, pl, heldFor);
  }

  /**
   * Runs `build` with a new one-off actor: `<engine actor>/f<n>`. n comes from
   * a counter kept in engine metadata and reserved in blocks (the block's end
   * is flushed before any n of it is used), so after a crash n starts above
   * every n used; the engine actor (node id and data epoch) makes it unique
   * across nodes and across a lost disk. n is used up only when `build`
   * succeeds (a refused write leaves it to the next one): between reading it
   * and using it up nothing awaits, so no two writes get one n.
   */
  private async withOneOffActor(build: (actor: Buffer) => Buffer): Promise<Buffer> {
    while (this.oneOff.next >= this.oneOff.end) {
      this.oneOffReserving ??= (async () => {
        const saved = await this.ctx.engine.metaGet(ONE_OFF_ACTORS_META);
        const from = saved ? Number(saved.toString('utf8')) : 0;
        if (!Number.isSafeInteger(from) || from < 0) throw new NodeError('INTERNAL', `bad ${ONE_OFF_ACTORS_META} in engine metadata`);
        await this.ctx.engine.metaPut(ONE_OFF_ACTORS_META, Buffer.from(String(from + ONE_OFF_ACTOR_BLOCK)));
        await this.ctx.engine.flush();
        this.oneOff = { next: from, end: from + ONE_OFF_ACTOR_BLOCK };
      })().finally(() => (this.oneOffReserving = null));
      await this.oneOffReserving;
    }
    // A number outside the reserved (flushed) block could be reissued after a crash.
    invariant(this.oneOff.next < this.oneOff.end, 'one-off actor outside its reserved block');
    const n = this.oneOff.next;
    const record = build(Buffer.from(`${this.ctx.engine.actor}/f${n}`, 'utf8'));
    this.oneOff.next = n + 1;
    return record;
  }

  /** Sends a record to a replica to merge (or, with `hintFor`, to a fallback to hold as a hint); resolves with whether it was flushed. */
  async sendMerge(
    node: string,
    bucket: Buffer,
    key: Buffer,
    record: Buffer,
    mode: ConflictMode,
    durable: boolean,
    timeoutMs: number,
    hintFor: string | null = null,
  ): Promise<boolean> {
    if (node === this.ctx.id) {
      if (hintFor !== null) return this.ctx.replica.storeHint(hintFor, bucket, key, record, durable);
      await this.ctx.replica.mergeLocal(bucket, key, record, mode, durable);
      return durable;
    }
    const body: PeerRequestBody<'kv.merge'> = { b: bucket, k: key, record, lww: mode === 'lww', durable };
    if (hintFor !== null) body.hint = hintFor;
    const reply = await this.ctx.peerRequest(node, 'kv.merge', body, timeoutMs);
    return reply.durable;
  }
}
