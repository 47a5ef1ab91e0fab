// Partition transfer on join and leave: when the ring changes, this node
// streams the partitions it gives (src/core/transfer-plan.ts) to their new
// replicas in batches, through the normal DVV merge, so writes that reach the
// new replica meanwhile are neither lost nor overwritten. The plan and each
// transfer's cursor are persisted, so a crash of either side resumes where it
// stopped. One request in flight at a time; each tick sends up to `batch`
// objects, over as many partitions as that takes, then pauses.
import { preferenceList, type Ring } from '../core/ring.js';
import { planTransfers, transfersFrom, type Transfer } from '../core/transfer-plan.js';
import { zonesOf } from '../core/membership.js';
import type { Timer } from '../transport/types.js';
import { ForegroundLoad } from './foreground.js';
import type { RingkvNode } from './node.js';

export interface TransferOptions {
  /** How often to look for ring changes and send the next batch. */
  intervalMs: number;
  /** Objects per batch. */
  batch: number;
  /** Replicas planned for (the largest bucket n in use; default 3). */
  n: number;
  timeoutMs: number;
  /**
   * A finished transfer runs once more after this long: coordinators still
   * routing by the old ring (until gossip reaches them) may have written to
   * this node behind the first pass's cursor.
   */
  catchUpAfterMs: number;
  /** Skip a batch while the node's recent client p99 is above this (ms). */
  yieldAboveMs: number;
  yieldMinSamples: number;
}

export const DEFAULT_TRANSFER_OPTIONS: TransferOptions = { intervalMs: 200, batch: 200, n: 3, timeoutMs: 5_000, catchUpAfterMs: 5_000, yieldAboveMs: 100, yieldMinSamples: 20 };

interface Pending extends Transfer {
  /** Disk-key cursor of the last object sent (hex), null before the first batch. */
  cursor: string | null;
  sent: number;
  /** 1 for the first pass, 2 for the catch-up pass. */
  pass: number;
  /** Not before this time (the catch-up pass waits for gossip to settle). */
  notBefore: number;
}

interface Saved {
  ring: Ring;
  ringPrivate: boolean;
  pending: Pending[];
}

const META = 'xfer.state';

/** Partition scans and peer requests one tick may make (see sendNextBatch). */
const MAX_STEPS_PER_TICK = 256;

export interface TransferStatus {
  partition: number;
  to: string;
  sent: number;
  pass: number;
}

export class TransferService {
  private readonly opts: TransferOptions;
  private ring: Ring | null = null;
  /** Whether `ring` is the private ring of a node that had not joined a cluster yet. */
  private ringPrivate = false;
  private pending: Pending[] = [];
  private timer: Timer | null = null;
  private readonly foreground: ForegroundLoad;
  private busy = false;
  private stopped = false;
  /** Objects sent and batches acknowledged since start (for metrics and benchmarks). */
  readonly totals = { objects: 0, batches: 0, bytes: 0 };

  constructor(
    private readonly node: RingkvNode,
    opts: Partial<TransferOptions> = {},
  ) {
    this.opts = { ...DEFAULT_TRANSFER_OPTIONS, ...opts };
    this.foreground = new ForegroundLoad(node, this.opts);
  }

  async start(): Promise<void> {
    this.node.registerService('xfer.', (from, type, body) => this.onRequest(from, type, body));
    const saved = await this.node.engine.metaGet(META);
    if (saved) {
      const state = JSON.parse(saved.toString('utf8')) as Saved;
      this.ring = state.ring;
      this.ringPrivate = state.ringPrivate;
      this.pending = state.pending;
    } else {
      // The ring at first start needs no transfer: nothing was stored under another ring.
      this.ring = this.node.clusterState.ring;
      this.ringPrivate = !this.node.hasJoined;
      await this.save();
    }
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  /** Transfers this node still has to give. */
  status(): TransferStatus[] {
    return this.pending.map((p) => ({ partition: p.partition, to: p.to, sent: p.sent, pass: p.pass }));
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.node.clock.setTimer(this.opts.intervalMs, () => {
      void this.tick().finally(() => this.schedule());
    });
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await this.noticeRingChange();
      // Foreground requests first (Dynamo §6.5): no batch while clients see slow answers.
      if (this.pending.length > 0 && !(await this.foreground.busy())) await this.sendNextBatch();
    } catch {
      // A failed batch is retried from the same cursor on the next tick.
    } finally {
      this.busy = false;
    }
  }

  private async noticeRingChange(): Promise<void> {
    const state = this.node.clusterState;
    const ring = state.ring;
    if (!this.ring || (this.ring.version === ring.version && this.ring.claimant === ring.claimant)) return;
    if (!this.node.hasJoined || this.ringPrivate) {
      // Until it joins, and when it first adopts the cluster's ring, a node
      // has nothing to give: its private one-node ring held no one else's data.
      this.ring = ring;
      this.ringPrivate = !this.node.hasJoined;
      await this.save();
      return;
    }
    // Members that left give nothing — except this node itself while it still
    // runs: a leaving node may hold acknowledged writes no one else has.
    const givers = new Set(Object.values(state.members).filter((m) => m.status !== 'left').map((m) => m.id));
    givers.add(this.node.id);
    const zones = zonesOf(state);
    const mine = transfersFrom(planTransfers(this.ring, ring, this.opts.n, givers, zones), this.node.id);
    // A transfer still pending from an earlier change whose target is no
    // longer a replica of the partition under the new ring would only leave a
    // stray copy there: it goes to the partition's new replicas instead (the
    // data it was to carry may exist nowhere else).
    const kept: Pending[] = [];
    for (const p of this.pending) {
      const next = preferenceList(ring, p.partition, this.opts.n, zones).primaries;
      if (next.includes(p.to)) {
        kept.push(p);
        continue;
      }
      for (const to of next) {
        if (to !== this.node.id) mine.push({ partition: p.partition, from: this.node.id, to });
      }
    }
    this.pending = kept;
    for (const t of mine) {
      if (!this.pending.some((p) => p.partition === t.partition && p.to === t.to)) this.pending.push({ ...t, cursor: null, sent: 0, pass: 1, notBefore: 0 });
    }
    this.ring = ring;
    await this.save();
  }

  /**
   * One tick's work: up to `batch` objects, over as many pending partitions
   * as that takes (at most MAX_STEPS_PER_TICK scans and requests, one at a
   * time). With Q = 4096 a join moves thousands of partitions holding a few
   * objects each; one partition per tick would take minutes however little
   * data moves. The state is saved once, after the tick.
   */
  private async sendNextBatch(): Promise<void> {
    const members = this.node.clusterState.members;
    // Targets that left or are not members any more get nothing.
    this.pending = this.pending.filter((p) => members[p.to] && members[p.to]!.status !== 'left');
    const now = this.node.clock.now();
    let budget = this.opts.batch;
    let steps = 0;
    let changed = false;
    try {
      for (const job of [...this.pending]) {
        if (budget <= 0 || steps >= MAX_STEPS_PER_TICK) break;
        if (job.notBefore > now || this.node.isSuspected(job.to)) continue;
        steps++;
        const page = await this.node.engine.scanPartition(job.partition, job.cursor ? Buffer.from(job.cursor, 'hex') : null, budget);
        if (page.items.length > 0) {
          const items = page.items.map((i) => ({ b: i.bucket, k: i.key, record: i.record }));
          steps++;
          await this.node.peerRequest(job.to, 'xfer.batch', { partition: job.partition, items }, this.opts.timeoutMs);
          budget -= items.length;
          job.sent += items.length;
          this.totals.objects += items.length;
          this.totals.batches++;
          this.totals.bytes += items.reduce((s, i) => s + i.b.length + i.k.length + i.record.length, 0);
        }
        if (page.next) job.cursor = page.next.toString('hex');
        // The catch-up wait counts from now, not from the tick's start: a tick may take a while.
        else if (job.pass === 1) Object.assign(job, { pass: 2, cursor: null, notBefore: this.node.clock.now() + this.opts.catchUpAfterMs });
        else this.pending = this.pending.filter((p) => p !== job);
        changed = true;
      }
    } finally {
      // Progress acknowledged before a failure is kept too.
      if (changed) await this.save();
    }
  }

  private async onRequest(_from: string, type: string, body: unknown): Promise<unknown> {
    if (type !== 'xfer.batch') throw new Error(`unknown transfer request '${type}'`);
    const { items } = body as { items: Array<{ b: Uint8Array; k: Uint8Array; record: Uint8Array }> };
    if (!Array.isArray(items)) throw new Error('bad transfer batch');
    await this.node.engine.mergeMany(
      items.map((i) => ({
        bucket: i.b,
        key: i.k,
        record: i.record,
        mode: this.node.bucketProps(Buffer.from(i.b).toString('utf8')).mode,
        // The giver moves its cursor past this batch once we ack: it must be on disk.
        durable: true,
      })),
    );
    return { merged: items.length };
  }

  private async save(): Promise<void> {
    const saved: Saved = { ring: this.ring!, ringPrivate: this.ringPrivate, pending: this.pending };
    await this.node.engine.metaPut(META, Buffer.from(JSON.stringify(saved)));
  }
}
