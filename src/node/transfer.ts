// Partition transfer on join and leave: when the ring changes, this node
// streams the partitions it gives (src/core/transfer-plan.ts) to their new
// replicas in batches, through the normal DVV merge, so writes that reach the
// new replica meanwhile are neither lost nor overwritten. The plan and each
// transfer's cursor are persisted, so a crash of either side resumes where it
// stopped. One request in flight at a time; each tick sends up to `batch`
// objects, over as many partitions as that takes, then pauses.
//
// Both ends: as a giver this service streams and then sends 'finish'; as a
// receiver it tracks the partitions it is still receiving (InboundTransfers
// in src/core/transfer-plan.ts) and tells the node, which then does not
// serve reads of them from its own copy (docs/cluster.md "Partition
// transfer"). Ring changes reach it synchronously from the node, so a read
// never sees the new ring before the pending partitions are known.
import type { Ring } from '../core/ring.js';
import { InboundTransfers, bucketNsInUse, carryOverTransfers, planTransfers, transfersFrom, type Inbound, type InboundState, type Transfer } from '../core/transfer-plan.js';
import { zonesOf } from '../core/membership.js';
import type { Timer } from '../transport/types.js';
import { ForegroundLoad } from './foreground.js';
import type { ServiceContext } from './context.js';
import { invariant } from '../core/types.js';
import { MAX_TRANSFER_BATCH, type ServiceHandlers, type ServiceMessageType } from './messages.js';

/** What partition transfer uses of the node. */
export type TransferContext = Pick<
  ServiceContext,
  'id' | 'metrics' | 'engine' | 'clock' | 'clusterState' | 'hasJoined' | 'bucketProps' | 'isSuspected' | 'peerRequest' | 'registerService' | 'onRingChange' | 'setReceiving'
>;

export interface TransferOptions {
  /** How often to look for ring changes and send the next batch. */
  intervalMs: number;
  /** Objects per batch. */
  batch: number;
  /**
   * n of the buckets with no props of their own (DEFAULT_BUCKET_PROPS.n).
   * Plans are made for it and for every configured bucket's n
   * (bucketNsInUse in src/core/transfer-plan.ts).
   */
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
  /** Receiver: ask the giver of a partition still pending this often whether it is still sending. */
  receiveCheckMs: number;
  /** Receiver: a partition is pending at most this long, whatever its giver does (then this node serves it as it is). */
  receiveLimitMs: number;
  /** Receiver: a giver that left and has not answered for this long is taken to have stopped (gives nothing more). */
  receiveGoneMs: number;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export const DEFAULT_TRANSFER_OPTIONS: TransferOptions = {
  intervalMs: 200,
  batch: 200,
  n: 3,
  timeoutMs: 5_000,
  catchUpAfterMs: 5_000,
  yieldAboveMs: 100,
  yieldMinSamples: 20,
  receiveCheckMs: 5_000,
  receiveLimitMs: 600_000,
  receiveGoneMs: 60_000,
};

interface Pending extends Omit<Transfer, 'ns'> {
  /**
   * The bucket n values whose keys this transfer carries; absent in a
   * transfer saved before plans were made per n (version 1): every key.
   */
  ns?: number[];
  /** Disk-key cursor of the last object sent (hex), null before the first batch. */
  cursor: string | null;
  sent: number;
  /** 1 for the first pass, 2 for the catch-up pass, 3 once both are given. */
  pass: number;
  /** The receiver acknowledged 'finish' (sent once both passes are given). */
  finished?: boolean;
  /** Not before this time (the catch-up pass waits for gossip to settle). */
  notBefore: number;
}

/**
 * The persisted state. Version 2: transfers carry their bucket n values
 * (`ns`) and inbound entries theirs (`byN`). State without a version is
 * version 1 (one plan for every bucket): its transfers send every key and
 * its inbound entries stand for every n, so nothing pending is lost.
 */
const STATE_VERSION = 2;

interface Saved {
  version?: number;
  ring: Ring;
  ringPrivate: boolean;
  pending: Pending[];
  /** Absent in state saved before receivers tracked their partitions. */
  inbound?: InboundState;
}

const META = 'xfer.state';

/**
 * Partition scans and peer requests one tick may make (see sendNextBatch).
 * An empty partition costs one scan (~tens of µs): at 2048 a 3-node cluster
 * of Q = 4096 hands its empty partitions to a joiner in a few ticks plus the
 * catch-up wait (~7 s; 17 s at 256).
 */
const MAX_STEPS_PER_TICK = 2048;
/** One object of an 'xfer.batch' (the receiver merges each whatever its partition). */
interface BatchItem {
  b: Buffer;
  k: Buffer;
  record: Buffer;
}

/** Receiver: 'xfer.status' questions one tick may have in flight. */
const MAX_STATUS_CHECKS = 256;

/** What TransferService.progress() tells: pending work now, and what moved since start. */
export interface TransferProgress {
  /** Transfers (partition → node) this node still has to give. */
  sending: number;
  /** Partitions this node is still receiving. */
  receiving: number;
  sent: { objects: number; bytes: number; partitions: number };
  received: { objects: number; bytes: number; partitions: number };
}

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
  /** Partitions this node is still receiving. */
  private inbound = new InboundTransfers();
  /** Receiver side: a giver that left → since when its status questions fail. */
  private readonly silentSince = new Map<string, number>();
  /** Last status query per pending partition (receiver side). */
  private readonly checkedAt = new Map<number, number>();
  /** Saves run one after another, each writing the state as it is then. */
  private saving: Promise<void> = Promise.resolve();
  /** Objects sent and batches acknowledged since start (for metrics and benchmarks). */
  readonly totals = { objects: 0, batches: 0, bytes: 0 };
  /** Receiver side: objects and bytes merged from givers, and partitions whose receipt ended, since start. */
  private readonly received = { objects: 0, bytes: 0, partitions: 0 };
  /** Giver side: transfers done (both passes given and the finish acknowledged) since start. */
  private given = 0;

  constructor(
    private readonly node: TransferContext,
    opts: Partial<TransferOptions> = {},
  ) {
    this.opts = { ...DEFAULT_TRANSFER_OPTIONS, ...opts };
    // A tick's batch to one target is at most `batch` objects: it must be one the receiver accepts.
    invariant(Number.isInteger(this.opts.batch) && this.opts.batch >= 1 && this.opts.batch <= MAX_TRANSFER_BATCH, `transfer batch must be in 1..${MAX_TRANSFER_BATCH}`);
    this.foreground = new ForegroundLoad(node, this.opts);
    node.registerService(this.handlers());
  }

  /** Loads the saved plan, listens for ring changes and starts the ticks. */
  async start(): Promise<void> {
    const saved = await this.node.engine.metaGet(META);
    if (saved) {
      const state = JSON.parse(saved.toString('utf8')) as Saved;
      invariant((state.version ?? 1) <= STATE_VERSION, () => `transfer state version ${state.version} is newer than this build's (${STATE_VERSION})`);
      this.ring = state.ring;
      this.ringPrivate = state.ringPrivate;
      this.pending = state.pending;
      this.inbound = new InboundTransfers(state.inbound);
    } else {
      // The ring at first start needs no transfer: nothing was stored under another ring.
      this.ring = this.node.clusterState.ring;
      this.ringPrivate = !this.node.hasJoined;
    }
    // From now on every ring the node adopts is planned for at once (a read
    // must not find the new ring before its pending partitions are known);
    // a ring adopted while this service was down is planned for here.
    this.node.onRingChange(() => this.noticeRingChange());
    this.node.setReceiving((partition, n) => (this.stopped ? null : this.inbound.sourcesOf(partition, n)));
    this.noticeRingChange();
    await this.save();
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

  /** Progress both ways since start, for metrics and the status summary (src/node/transfer-progress.ts). */
  progress(): TransferProgress {
    return {
      sending: this.pending.length,
      receiving: this.inbound.size,
      sent: { objects: this.totals.objects, bytes: this.totals.bytes, partitions: this.given },
      received: { ...this.received },
    };
  }

  /** Partitions this node is still receiving (reads of them go to their sources). */
  receiving(): readonly Inbound[] {
    return this.inbound.list();
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
      this.noticeRingChange();
      await this.checkReceiving();
      // Foreground requests first (Dynamo §6.5): no batch while clients see slow answers.
      if (this.pending.length > 0 && !(await this.foreground.busy())) await this.sendNextBatch();
    } catch {
      // A failed batch is retried from the same cursor on the next tick.
    } finally {
      this.busy = false;
    }
  }

  /**
   * Plans for a ring change (synchronously: called by the node as it adopts
   * a ring); returns whether anything changed. The caller saves (the node's
   * listener schedules it).
   */
  private noticeRingChange(): boolean {
    if (this.stopped || !this.planRingChange()) return false;
    void this.save().catch(() => undefined);
    return true;
  }

  private planRingChange(): boolean {
    const state = this.node.clusterState;
    const ring = state.ring;
    if (!this.ring || (this.ring.version === ring.version && this.ring.claimant === ring.claimant)) return false;
    if (!this.node.hasJoined || this.ringPrivate) {
      // Until it joins, and when it first adopts the cluster's ring, a node
      // has nothing to give: its private one-node ring held no one else's
      // data. Nor anything to wait for: before its first cluster ring it
      // replicated nothing of the cluster's (a node that rejoins after
      // losing its data is refilled by handoff, read repair and anti-entropy).
      this.ring = ring;
      this.ringPrivate = !this.node.hasJoined;
      return true;
    }
    // Members that left give nothing — except this node itself while it still
    // runs: a leaving node may hold acknowledged writes no one else has.
    const members = new Set(Object.values(state.members).filter((m) => m.status !== 'left').map((m) => m.id));
    const givers = new Set(members).add(this.node.id);
    const zones = zonesOf(state);
    const ns = bucketNsInUse(state.buckets, this.opts.n);
    const mine: Pending[] = transfersFrom(planTransfers(this.ring, ring, ns, givers, zones), this.node.id).map((t) => ({ ...t, cursor: null, sent: 0, pass: 1, notBefore: 0 }));
    this.inbound.onRingChange(this.ring, ring, ns, members, this.node.id, this.node.clock.now(), zones);
    // Transfers still pending from an earlier change go where their n values' replicas are now (carryOverTransfers).
    const { kept, moved } = carryOverTransfers(this.pending, ring, ns, this.node.id, zones);
    for (const t of moved) mine.push({ ...t, cursor: null, sent: 0, pass: 1, notBefore: 0 });
    this.pending = kept;
    // A map, not a scan of the list per transfer: a join at Q = 4096 plans thousands.
    // One transfer per (partition, target): the receiver's finish ends all of it.
    const planned = new Map(this.pending.map((p) => [`${p.partition}>${p.to}`, p]));
    for (const t of mine) {
      const key = `${t.partition}>${t.to}`;
      const had = planned.get(key);
      if (had === undefined) {
        planned.set(key, t);
        this.pending.push(t);
        continue;
      }
      const union = had.ns === undefined || t.ns === undefined ? undefined : [...new Set([...had.ns, ...t.ns])].sort((a, b) => a - b);
      if (union !== undefined && had.ns !== undefined && union.length === had.ns.length) continue;
      if (union === undefined && had.ns === undefined) continue;
      // New n values for a transfer under way: it starts over with all of
      // them (what it sent already merges again, harmlessly).
      Object.assign(had, { ns: union, cursor: null, pass: 1, notBefore: 0, finished: undefined });
    }
    this.ring = ring;
    return true;
  }

  /**
   * Receiver side: ends partitions pending past receiveLimitMs, and asks the
   * givers of each partition pending for receiveCheckMs whether they are
   * still sending (a lost 'finish', or a giver whose plan differs, ends here).
   */
  private async checkReceiving(): Promise<void> {
    if (this.inbound.size === 0) return;
    const before = this.inbound.size;
    try {
      await this.checkReceivingNow();
    } finally {
      this.received.partitions += Math.max(0, before - this.inbound.size);
    }
  }

  private async checkReceivingNow(): Promise<void> {
    const now = this.node.clock.now();
    let changed = false;
    for (const e of this.inbound.expire(now, this.opts.receiveLimitMs)) {
      changed = true;
      this.opts.log?.('warn', 'partition still not received after the limit: serving it as it is', { partition: e.partition, from: e.givers });
    }
    // At most MAX_STATUS_CHECKS questions at once: a join at Q = 4096 leaves thousands pending.
    const due = this.inbound
      .list()
      .filter((e) => now - Math.max(e.since, this.checkedAt.get(e.partition) ?? -Infinity) >= this.opts.receiveCheckMs)
      .slice(0, MAX_STATUS_CHECKS);
    await Promise.all(
      due.flatMap((e) => {
        this.checkedAt.set(e.partition, now);
        return e.givers.map(async (giver) => {
          try {
            const reply = await this.node.peerRequest(giver, 'xfer.status', { partition: e.partition }, this.opts.timeoutMs);
            this.silentSince.delete(giver);
            if (this.inbound.onGiverStatus(e.partition, giver, reply.ring, reply.sending)) changed = true;
          } catch {
            // A giver that left and has not answered for receiveGoneMs is taken to have
            // stopped: nothing more will come from it. (One that is only cut off gives
            // once it is back: a leaving node runs until it has given everything.)
            const m = this.node.clusterState.members[giver];
            if (m && m.status !== 'left') return;
            const since = this.silentSince.get(giver) ?? now;
            this.silentSince.set(giver, since);
            if (now - since >= this.opts.receiveGoneMs && this.inbound.onGiverGone(e.partition, giver)) changed = true;
          }
        });
      }),
    );
    for (const p of this.checkedAt.keys()) if (this.inbound.sourcesOf(p) === null) this.checkedAt.delete(p);
    if (changed) await this.save();
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
    // A job carries the keys of the buckets whose n it was planned for (all, for one saved without n values).
    const nOf = new Map<string, number>();
    const carries = (job: Pending, bucket: Buffer): boolean => {
      if (job.ns === undefined) return true;
      const name = bucket.toString('utf8');
      let n = nOf.get(name);
      if (n === undefined) nOf.set(name, (n = this.node.bucketProps(name).n));
      return job.ns.includes(n);
    };
    let changed = false;
    try {
      // Both passes given: the receiver holds everything this node held when
      // it planned, and what coordinators still on the old ring wrote here
      // meanwhile (simulator seed 57 of the transfer-read mode: a finish after
      // the first pass let a write made here just after it go unread), so
      // it may serve these partitions from now on. One 'finish' per target
      // carries all of them (one save there). A job ends once its finish
      // was acknowledged.
      const due = new Map<string, Pending[]>();
      for (const job of this.pending) {
        if (job.pass === 3 && job.finished !== true && !this.node.isSuspected(job.to)) due.set(job.to, [...(due.get(job.to) ?? []), job]);
      }
      for (const [to, jobs] of due) {
        steps++;
        await this.node.peerRequest(to, 'xfer.finish', { partitions: jobs.map((j) => j.partition), ring: this.ring!.version }, this.opts.timeoutMs);
        for (const j of jobs) j.finished = true;
        changed = true;
      }
      const before = this.pending.length;
      this.pending = this.pending.filter((p) => !(p.pass === 3 && p.finished === true));
      this.given += before - this.pending.length;
      if (this.pending.length !== before) changed = true;
      // Scan first, then one durable 'xfer.batch' per target carries the
      // objects of all its partitions scanned this tick: at Q = 4096 a
      // partition often holds a handful of objects, and a durable round trip
      // per partition would bound the transfer rate.
      const outgoing = new Map<string, { items: BatchItem[]; scanned: Array<{ job: Pending; sent: number; next: Buffer | null }> }>();
      for (const job of [...this.pending]) {
        if (budget <= 0 || steps >= MAX_STEPS_PER_TICK) break;
        if (job.pass === 3 || job.notBefore > now || this.node.isSuspected(job.to)) continue;
        steps++;
        const page = await this.node.engine.scanPartition(job.partition, job.cursor ? Buffer.from(job.cursor, 'hex') : null, budget);
        budget -= page.items.length;
        const out = outgoing.get(job.to) ?? { items: [], scanned: [] };
        outgoing.set(job.to, out);
        let sent = 0;
        for (const i of page.items) {
          if (!carries(job, i.bucket)) continue;
          out.items.push({ b: i.bucket, k: i.key, record: i.record });
          sent++;
        }
        out.scanned.push({ job, sent, next: page.next });
      }
      for (const [to, { items, scanned }] of outgoing) {
        if (items.length > 0) {
          await this.node.peerRequest(to, 'xfer.batch', { partition: scanned[0]!.job.partition, items }, this.opts.timeoutMs);
          this.totals.objects += items.length;
          this.totals.batches++;
          this.totals.bytes += items.reduce((s, i) => s + i.b.length + i.k.length + i.record.length, 0);
        }
        // Acknowledged (or nothing to send): the cursors move.
        for (const { job, sent, next } of scanned) {
          job.sent += sent;
          if (next) job.cursor = next.toString('hex');
          // The catch-up wait counts from now, not from the tick's start: a tick may take a while.
          else if (job.pass === 1) Object.assign(job, { pass: 2, cursor: null, notBefore: this.node.clock.now() + this.opts.catchUpAfterMs });
          else job.pass = 3;
        }
        changed = true;
      }
    } finally {
      // Progress acknowledged before a failure is kept too.
      if (changed) await this.save();
    }
  }

  /** The 'xfer.' requests this node serves (bodies decoded by the node: src/node/messages.ts). */
  private handlers(): ServiceHandlers<Extract<ServiceMessageType, `xfer.${string}`>> {
    return {
      'xfer.finish': async (from, req) => {
        const before = this.inbound.size;
        for (const p of req.partitions ?? [req.partition!]) this.inbound.onFinish(p, from, req.ring);
        this.received.partitions += Math.max(0, before - this.inbound.size);
        await this.save();
        return {};
      },
      'xfer.status': async (from, req) => {
        // A receiver asks whether this node still sends it a partition (on this node's current ring).
        this.noticeRingChange();
        return { ring: this.ring!.version, sending: this.pending.some((p) => p.partition === req.partition && p.to === from) };
      },
      'xfer.batch': async (_from, req) => {
        await this.node.engine.mergeMany(
          req.items.map((i) => ({
            bucket: i.b,
            key: i.k,
            record: i.record,
            mode: this.node.bucketProps(i.b.toString('utf8')).mode,
            // The giver moves its cursor past this batch once we ack: it must be on disk.
            durable: true,
          })),
        );
        this.received.objects += req.items.length;
        this.received.bytes += req.items.reduce((s, i) => s + i.b.length + i.k.length + i.record.length, 0);
        return { merged: req.items.length };
      },
    };
  }

  /** Persists the state as it is when this save's turn comes (saves never overtake each other). */
  private save(): Promise<void> {
    const next = this.saving.then(async () => {
      const saved: Saved = { version: STATE_VERSION, ring: this.ring!, ringPrivate: this.ringPrivate, pending: this.pending, inbound: this.inbound.toJSON() };
      await this.node.engine.metaPut(META, Buffer.from(JSON.stringify(saved)));
    });
    this.saving = next.catch(() => undefined);
    return next;
  }
}
