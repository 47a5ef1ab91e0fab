// Runs a load or run phase: threadcount workers, each with one operation in
// flight. Closed loop (no target): a worker starts its next operation when the
// previous one answers. Open loop (target ops/s): operation k has the intended
// start time t0 + k/target on one fixed schedule; a free worker waits for the
// next slot, or starts at once if the schedule is ahead of it, and latency
// is also measured from the intended start ("Intended-" measurements).
// Bounded by the operation count AND maxexecutiontime.
import type { DB, Status } from './bindings/db.js';
import { Measurements } from './measurements.js';
import type { WorkloadConfig } from './properties.js';
import type { CoreWorkload, MeasuredDB, Operation } from './workload.js';
import type { Fields } from './record.js';

export interface PhaseResult {
  phase: 'load' | 'run';
  mode: 'closed' | 'open';
  threads: number;
  targetRate: number | null;
  runtimeMs: number;
  measurements: Measurements;
  /** True when maxexecutiontime ended the phase before the operation count. */
  timedOut: boolean;
}

export interface RunPhaseOptions {
  phase: 'load' | 'run';
  workload: CoreWorkload;
  db: DB;
  /** Called once per interval with the closed interval (YCSB's -s status line). */
  onInterval?: (line: string) => void;
}

/** Measures each DB call of one worker: service time, and in open loop the time from the operation's intended start. */
class WorkerDB implements MeasuredDB {
  intendedStartMs = 0;
  constructor(private readonly db: DB, private readonly m: Measurements, private readonly open: boolean) {}
  init(): Promise<void> {
    return this.db.init();
  }
  cleanup(): Promise<void> {
    return this.db.cleanup();
  }
  async read(table: string, key: string, fields: readonly string[] | null, result?: Fields): Promise<Status> {
    const st = performance.now();
    return this.done('READ', st, await this.db.read(table, key, fields, result));
  }
  async update(table: string, key: string, values: Fields): Promise<Status> {
    const st = performance.now();
    return this.done('UPDATE', st, await this.db.update(table, key, values));
  }
  async insert(table: string, key: string, values: Fields): Promise<Status> {
    const st = performance.now();
    return this.done('INSERT', st, await this.db.insert(table, key, values));
  }
  measureComposite(op: Operation, startMs: number, status: Status): void {
    this.done(op, startMs, status);
  }
  private done(op: Operation, startMs: number, status: Status): Status {
    const end = performance.now();
    this.m.measure(op, (end - startMs) * 1000);
    this.m.reportStatus(op, status);
    if (this.open) {
      this.m.measure(`Intended-${op}`, (end - this.intendedStartMs) * 1000);
      this.m.reportStatus(`Intended-${op}`, status);
    }
    return status;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Resolves at or after `atMs` (performance.now()), never before: libuv
 * timers count from the loop's cached time in whole ms and can fire early,
 * which would send a request before its intended start. The last
 * millisecond is waited out with setImmediate, still yielding to I/O.
 */
async function waitUntil(atMs: number): Promise<void> {
  for (let left = atMs - performance.now(); left > 0; left = atMs - performance.now()) {
    if (left >= 2) await sleep(left - 1);
    else await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

export async function runPhase(opts: RunPhaseOptions): Promise<PhaseResult> {
  const c: WorkloadConfig = opts.workload.config;
  const open = c.target !== null;
  const total = opts.phase === 'load' ? c.insertcount : c.operationcount;
  const intervalMs = 1000 / (c.target ?? 1);
  const start = performance.now();
  const deadline = start + c.maxexecutiontimeMs;
  const m = new Measurements(start, open ? 'Intended-' : '');
  let claimed = 0;
  let timedOut = false;

  const ticker = setInterval(() => {
    const point = m.tick(performance.now());
    opts.onInterval?.(statusLine(point.tMs, m.operationCount, point.throughput, point.ops));
  }, c.statusIntervalMs);

  const worker = async (): Promise<void> => {
    const db = new WorkerDB(opts.db, m, open);
    for (;;) {
      if (claimed >= total) return;
      if (performance.now() >= deadline) {
        timedOut = true;
        return;
      }
      const k = claimed++;
      if (open) {
        const intended = start + k * intervalMs;
        if (intended >= deadline) {
          timedOut = true;
          return;
        }
        await waitUntil(intended);
        db.intendedStartMs = intended;
      } else {
        db.intendedStartMs = performance.now();
      }
      if (opts.phase === 'load') await opts.workload.doInsert(db);
      else await opts.workload.doTransaction(db);
      m.operationDone();
    }
  };

  try {
    await Promise.all(Array.from({ length: c.threadcount }, worker));
  } finally {
    clearInterval(ticker);
  }
  const end = performance.now();
  m.tick(end);
  return {
    phase: opts.phase,
    mode: open ? 'open' : 'closed',
    threads: c.threadcount,
    targetRate: c.target,
    runtimeMs: end - start,
    measurements: m,
    timedOut,
  };
}

function statusLine(tMs: number, done: number, throughput: number, ops: Record<string, { count: number; p99Us: number }>): string {
  const per = Object.entries(ops).map(([op, s]) => `[${op}: Count=${s.count}, 99=${s.p99Us}]`).join(' ');
  return `${(tMs / 1000).toFixed(0)} sec: ${done} operations; ${throughput.toFixed(1)} current ops/sec; ${per}`;
}
