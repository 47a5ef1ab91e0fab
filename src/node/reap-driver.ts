// The reaping protocol's driver (docs/cluster.md "Deletes and tombstones";
// the floors and why they are needed: src/node/reaper.ts), as riak_kv's
// reaper: its own throttled queue, fed by hooks from the write path (a
// delete every primary acknowledged: `schedule`), the read path (a primary
// still holding deleted history: `repair`) and the replica role (a reap the
// replica asks for: `sendReap`).
//
// Why a queue and not a timer per delete: a burst of deletes used to start
// its reaps together, each asking every member at once (members × deletes
// requests in one turn). Here reaps wait their delay in FIFO order (the
// delay is the same for all, so FIFO is due order), one timer stands for
// the whole queue, and at most `maxRunning` run at a time.
import { type ReapCheck, reapVerdict } from '../core/reap.js';
import { invariant } from '../core/types.js';
import { decodeRecord } from '../record/index.js';
import { isTransportError, type Clock, type Timer } from '../transport/types.js';
import { isClosedError } from './errors.js';
import type { PeerReply, PeerRequestBody } from './messages.js';
import type { NodeMetrics } from './metrics.js';
import { type ReapFloors, allCovered } from './reaper.js';

/** Reaps waiting for their delay at most; deletes beyond keep their tombstones. */
export const MAX_PENDING_REAPS = 10_000;
/** Reaps running at once (each asks every member, then each primary). */
export const MAX_RUNNING_REAPS = 8;
/** Further attempts of a kv.reap to a primary that did not answer. */
const REAP_RETRIES = 2;

export type { ReapCheck };

/** What the reap driver needs of its node: the narrow part of it (never the node class). */
export interface ReapDriverContext {
  id: string;
  clock: Clock;
  metrics: Pick<NodeMetrics, 'reapAttempts' | 'reapFloors'>;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  floors: ReapFloors;
  /** Delay after an acknowledged delete (-1: never reap). */
  reapDelayMs: number;
  reapFloorTtlMs: number;
  requestTimeoutMs: number;
  ring: () => { version: number; claimant: string };
  primariesOf: (bucket: Buffer, key: Buffer, n: number) => readonly string[];
  isSuspect: (node: string, now: number) => boolean;
  /** Members that have not left. */
  memberIds: () => string[];
  /** This node's own answers (the replica role). */
  local: {
    reapCheck: (bucket: Buffer, key: Buffer) => Promise<ReapCheck>;
    reapLocal: (bucket: Buffer, key: Buffer, record: Buffer) => Promise<boolean>;
  };
  peerRequest: <T extends 'kv.reapcheck' | 'kv.reap'>(node: string, type: T, body: PeerRequestBody<T>, timeoutMs: number) => Promise<PeerReply<T>>;
}

interface PendingReap {
  bucket: Buffer;
  key: Buffer;
  n: number;
  /** The ring the delete was written under. */
  ringVersion: number;
  dueAt: number;
}

export class ReapDriver {
  /** FIFO of reaps waiting for their delay; `head` is the next one. */
  private queue: PendingReap[] = [];
  private head = 0;
  private running = 0;
  /** Fires when the queue's head is due (at most one). */
  private timer: Timer | null = null;
  private sweepTimer: Timer | null = null;
  private stopped = false;

  constructor(
    private readonly ctx: ReapDriverContext,
    private readonly limits: { maxPending: number; maxRunning: number } = { maxPending: MAX_PENDING_REAPS, maxRunning: MAX_RUNNING_REAPS },
  ) {}

  /** Reaps waiting or running. */
  get pending(): number {
    return this.queue.length - this.head + this.running;
  }

  start(): void {
    this.scheduleFloorSweep();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    this.sweepTimer?.cancel();
    this.sweepTimer = null;
    this.queue = [];
    this.head = 0;
  }

  /** A delete every primary acknowledged directly: check and reap it after reapDelayMs. */
  schedule(bucket: Buffer, key: Buffer, n: number): void {
    if (this.ctx.reapDelayMs < 0 || this.stopped) return;
    if (this.queue.length - this.head >= this.limits.maxPending) {
      this.ctx.metrics.reapAttempts.inc({ outcome: 'too_many_pending' });
      return;
    }
    const dueAt = this.ctx.clock.now() + this.ctx.reapDelayMs;
    const last = this.queue[this.queue.length - 1];
    invariant(last === undefined || this.head === this.queue.length || last.dueAt <= dueAt, 'reap queue out of due order');
    this.queue.push({ bucket, key, n, ringVersion: this.ctx.ring().version, dueAt });
    this.pump();
  }

  /** Starts every due reap the running limit allows, then waits for the next one. */
  private pump(): void {
    if (this.stopped) return;
    const now = this.ctx.clock.now();
    while (this.running < this.limits.maxRunning && this.head < this.queue.length && this.queue[this.head]!.dueAt <= now) {
      const next = this.queue[this.head++]!;
      this.run(next);
    }
    // Drop the consumed prefix now and then (amortised O(1) per reap).
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    invariant(this.running <= this.limits.maxRunning, 'more reaps running than allowed');
    if (this.timer !== null || this.head >= this.queue.length || this.running >= this.limits.maxRunning) return;
    this.timer = this.ctx.clock.setTimer(Math.max(0, this.queue[this.head]!.dueAt - now), () => {
      this.timer = null;
      this.pump();
    });
  }

  private run(p: PendingReap): void {
    this.running++;
    this.reap(p.bucket, p.key, p.n, p.ringVersion)
      .then(
        (outcome) => this.ctx.metrics.reapAttempts.inc({ outcome }),
        (err: unknown) => {
          this.ctx.metrics.reapAttempts.inc({ outcome: 'error' });
          if (!isClosedError(err)) this.ctx.log('warn', 'reap failed', { error: String(err) });
        },
      )
      .finally(() => {
        this.running--;
        this.pump();
      });
  }

  /**
   * The reap of one deleted key, coordinated by the primary that coordinated
   * the delete. The tombstone is reaped only if, now:
   * - the ring is the one the delete was written under (no partition on the
   *   move: a transfer could carry an old copy), and no primary is suspected;
   * - every primary answers, each with the byte-identical all-tombstone record
   *   (so no primary holds the old value, or anything newer);
   * - no node that answers holds a hint for the key (an old version waiting
   *   for handoff), and no non-primary holds the object (a stray copy). Every
   *   member is asked and must answer, from the same ring.
   * Then each primary is sent 'kv.reap' (compare-and-delete, see
   * Replica.reapLocal); one whose record changed meanwhile refuses. Returns
   * the outcome (metric).
   */
  private async reap(bucket: Buffer, key: Buffer, n: number, ringVersion: number): Promise<string> {
    const { ctx } = this;
    if (this.stopped) return 'stopped';
    const ring = ctx.ring();
    if (ring.version !== ringVersion) return 'ring_changed';
    if (ctx.floors.full()) return 'floors_full';
    const primaries = ctx.primariesOf(bucket, key, n);
    if (!primaries.includes(ctx.id)) return 'not_primary';
    const now = ctx.clock.now();
    if (primaries.some((p) => ctx.isSuspect(p, now))) return 'primary_suspected';
    const members = ctx.memberIds();
    const timeoutMs = ctx.requestTimeoutMs;
    const checks = await Promise.all(members.map((m) => this.reapCheck(m, bucket, key, timeoutMs).catch(() => null)));
    // Tombstones wait while any member is unreachable or routes by another ring (src/core/reap.ts).
    const verdict = reapVerdict(members, primaries, checks, { version: ringVersion, claimant: ring.claimant });
    if (verdict.kind === 'wait') return verdict.reason;
    if (this.stopped || ctx.ring().version !== ringVersion) return 'ring_changed';
    const record = verdict.tombstone;
    const results = await Promise.all(primaries.map((p) => this.sendReap(p, bucket, key, record, timeoutMs, REAP_RETRIES)));
    return results.every((r) => r) ? 'reaped' : results.some((r) => r) ? 'partly_reaped' : 'refused';
  }

  private async reapCheck(node: string, bucket: Buffer, key: Buffer, timeoutMs: number): Promise<ReapCheck> {
    if (node === this.ctx.id) return this.ctx.local.reapCheck(bucket, key);
    const reply = await this.ctx.peerRequest(node, 'kv.reapcheck', { b: bucket, k: key }, timeoutMs);
    return { record: reply.record, hinted: reply.hinted, ringVersion: reply.ringVersion ?? -1, claimant: reply.claimant ?? '' };
  }

  /** Asks a replica to reap `record` (retrying one that does not answer); resolves with whether it reaped. */
  async sendReap(node: string, bucket: Buffer, key: Buffer, record: Buffer, timeoutMs = this.ctx.requestTimeoutMs, retries = 0): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        if (node === this.ctx.id) return await this.ctx.local.reapLocal(bucket, key, record);
        return (await this.ctx.peerRequest(node, 'kv.reap', { b: bucket, k: key, record }, timeoutMs)).reaped;
      } catch (err) {
        if (attempt >= retries || this.stopped || !isTransportError(err) || isTransportError(err, 'REMOTE')) return false;
        await new Promise<void>((resolve) => this.ctx.clock.setTimer(timeoutMs, resolve));
      }
    }
  }

  /**
   * After a read: a primary that answered with only deleted history (every
   * sibling covered by a floor another replica answered with) missed a reap
   * (its kv.reap was lost, or it was refilled from a stale copy): ask it to
   * reap too.
   */
  repair(bucket: Buffer, key: Buffer, primaries: readonly string[], answers: ReadonlyMap<string, Buffer | null>, floors: readonly Buffer[], timeoutMs: number): void {
    for (const p of primaries) {
      const record = answers.get(p);
      if (!record) continue;
      const rec = decodeRecord(record);
      const floor = floors.find((f) => allCovered(rec, decodeRecord(f).context));
      if (floor) void this.sendReap(p, bucket, key, floor, timeoutMs).catch(() => undefined);
    }
  }

  private scheduleFloorSweep(): void {
    if (this.stopped) return;
    const every = Math.max(1_000, Math.min(this.ctx.reapFloorTtlMs / 4, 600_000));
    this.sweepTimer = this.ctx.clock.setTimer(every, () => {
      this.ctx.floors
        .sweep(this.ctx.clock.now())
        .then(
          () => this.ctx.metrics.reapFloors.set(this.ctx.floors.size),
          (err: unknown) => {
            if (!isClosedError(err)) this.ctx.log('warn', 'reap floor sweep failed', { error: String(err) });
          },
        )
        .finally(() => this.scheduleFloorSweep());
    });
  }
}
