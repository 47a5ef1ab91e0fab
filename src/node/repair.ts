// Repair on demand (`ringkv repair`, POST /admin/repair): anti-entropy
// exchanges run now, over the partitions an operator names, instead of on
// the service's schedule. A job compares each chosen partition this node is
// a primary of with every other primary of it, exchange after exchange
// until the two agree (an exchange repairs at most maxKeys keys; the next
// finds the rest), and keeps a summary a client polls. It shares the
// service's one-exchange-at-a-time rule: a job waits while a scheduled
// exchange runs.
import { invariant } from '../core/types.js';
import type { RepairJob, RepairRequest } from '../api-types.js';
import type { Clock } from '../transport/types.js';
import type { ExchangeReport } from './anti-entropy.js';

export type { RepairJob, RepairRequest };

/** What a repair job uses of anti-entropy (AntiEntropyService). */
export interface RepairContext {
  clock: Clock;
  primaryPartitions(): number[];
  peersOf(partition: number): string[];
  readonly running: boolean;
  exchange(partition: number, peer: string, only: { bucket?: Buffer }): Promise<ExchangeReport>;
}

export class RepairError extends Error {
  constructor(
    readonly code: 'REPAIR_RUNNING' | 'NOT_A_PRIMARY' | 'STOPPING',
    message: string,
  ) {
    super(message);
    this.name = 'RepairError';
  }
}

/** Exchanges of one partition-peer pair at most per job (each repairs up to maxKeys keys). */
export const MAX_EXCHANGES_PER_PAIR = 50;
/** Finished jobs remembered. */
const KEPT_JOBS = 16;
/** How often a job waiting for a scheduled exchange looks again. */
const WAIT_MS = 50;

export class RepairService {
  private readonly jobs = new Map<string, RepairJob>();
  private next = 1;
  private active: RepairJob | null = null;
  private stopped = false;

  constructor(private readonly ctx: RepairContext) {}

  /** Starts a job (one at a time per node); resolves with it at once (it runs on). */
  start(request: RepairRequest): RepairJob {
    if (this.stopped) throw new RepairError('STOPPING', 'the node is stopping');
    if (this.active) throw new RepairError('REPAIR_RUNNING', `repair ${this.active.id} is still running`);
    const mine = this.ctx.primaryPartitions();
    let partitions = mine;
    if (request.partition !== undefined) {
      if (!mine.includes(request.partition)) throw new RepairError('NOT_A_PRIMARY', `this node is not a primary of partition ${request.partition}`);
      partitions = [request.partition];
    }
    const job: RepairJob = {
      id: `r${this.next++}`,
      state: 'running',
      request,
      startedAtMs: this.ctx.clock.now(),
      finishedAtMs: null,
      partitions: { total: partitions.length, compared: 0 },
      inSync: 0,
      diverged: 0,
      keysDiffered: 0,
      keysRepaired: { local: 0, remote: 0 },
      failedExchanges: 0,
      failedKeys: 0,
      current: null,
      error: null,
    };
    this.jobs.set(job.id, job);
    for (const id of this.jobs.keys()) if (this.jobs.size > KEPT_JOBS && this.jobs.get(id) !== job) this.jobs.delete(id);
    this.active = job;
    void this.run(job, partitions).finally(() => {
      this.active = null;
    });
    return job;
  }

  get(id: string): RepairJob | undefined {
    return this.jobs.get(id);
  }

  stop(): void {
    this.stopped = true;
  }

  private async run(job: RepairJob, partitions: readonly number[]): Promise<void> {
    const bucket = job.request.bucket === undefined ? undefined : Buffer.from(job.request.bucket, 'utf8');
    try {
      for (const p of partitions) {
        if (this.stopped) throw new RepairError('STOPPING', 'the node stopped');
        job.current = p;
        for (const peer of this.ctx.peersOf(p)) await this.repairPair(job, p, peer, bucket);
        job.partitions.compared++;
      }
      job.state = 'done';
    } catch (err) {
      job.state = 'failed';
      job.error = String((err as Error).message ?? err);
    } finally {
      job.current = null;
      job.finishedAtMs = this.ctx.clock.now();
      invariant(job.partitions.compared <= job.partitions.total, 'repair compared more partitions than it planned');
    }
  }

  /** Exchanges with one peer until the partition agrees, nothing more gets repaired, or an exchange fails. */
  private async repairPair(job: RepairJob, partition: number, peer: string, bucket: Buffer | undefined): Promise<void> {
    for (let i = 0; i < MAX_EXCHANGES_PER_PAIR; i++) {
      const report = await this.exchangeWhenFree(partition, peer, bucket);
      if (report.outcome === 'failed') {
        job.failedExchanges++;
        return;
      }
      if (report.outcome === 'in_sync') {
        if (i === 0) job.inSync++;
        return;
      }
      if (i === 0) job.diverged++;
      // What the first comparison found (later ones find what is left of it).
      if (i === 0) job.keysDiffered += report.differing.keys;
      job.keysRepaired.local += report.repaired.local;
      job.keysRepaired.remote += report.repaired.remote;
      job.failedKeys += report.failedKeys;
      // Found everything and repaired what it could (or the rest is another bucket's): done.
      if (report.complete || report.repaired.local + report.repaired.remote === 0) return;
    }
  }

  private async exchangeWhenFree(partition: number, peer: string, bucket: Buffer | undefined): Promise<ExchangeReport> {
    for (;;) {
      if (this.stopped) throw new RepairError('STOPPING', 'the node stopped');
      if (!this.ctx.running) {
        try {
          return await this.ctx.exchange(partition, peer, bucket === undefined ? {} : { bucket });
        } catch (err) {
          // A scheduled exchange started between the check and the call: wait for it.
          if (!this.ctx.running) throw err;
        }
      }
      await new Promise<void>((resolve) => this.ctx.clock.setTimer(WAIT_MS, resolve));
    }
  }
}
