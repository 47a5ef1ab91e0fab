// Latency histograms (HDR, µs) per measurement name, with YCSB's status
// counts, and a per-interval time series. Names follow YCSB: "READ" is the
// service time of a call (from when it was sent); "Intended-READ", recorded
// only in open loop, runs from the operation's intended start on the fixed
// schedule, so a stall that delays the requests queued behind it is counted
// (no coordinated omission).
import * as hdr from 'hdr-histogram-js';
import type { Status } from './bindings/db.js';

type Histogram = hdr.Histogram;

function newHistogram(): Histogram {
  // 1 µs .. 1 h at 3 significant digits, as YCSB's Recorder(3).
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

/** One operation's figures, as the JSON output carries them. */
export interface OpResult {
  count: number;
  errors: number;
  avgUs: number;
  minUs: number;
  maxUs: number;
  p50Us: number;
  p95Us: number;
  p99Us: number;
  p999Us: number;
}

export interface OpSummary extends OpResult {
  /** Values at the configured percentiles (hdrhistogram.percentiles), for the text output. */
  percentiles: Array<{ percentile: number; us: number }>;
  statuses: Record<string, number>;
}

export interface IntervalPoint {
  tMs: number;
  throughput: number;
  ops: Record<string, { count: number; p50Us: number; p99Us: number; p999Us: number }>;
}

class OneMeasurement {
  readonly total = newHistogram();
  readonly interval = newHistogram();
  readonly statuses = new Map<Status, number>();
  record(us: number): void {
    const v = Math.max(1, Math.round(us));
    this.total.recordValue(v);
    this.interval.recordValue(v);
  }
}

export class Measurements {
  private readonly byName = new Map<string, OneMeasurement>();
  private readonly series: IntervalPoint[] = [];
  private operationsInInterval = 0;
  private operations = 0;
  private intervalStartMs: number;

  /** `seriesPrefix`: which names the time series follows ('' = service time, 'Intended-' = open-loop latency). */
  constructor(private readonly startMs: number, private readonly seriesPrefix: '' | 'Intended-' = '') {
    this.intervalStartMs = startMs;
  }

  measure(name: string, us: number): void {
    this.get(name).record(us);
  }

  reportStatus(name: string, status: Status): void {
    const m = this.get(name);
    m.statuses.set(status, (m.statuses.get(status) ?? 0) + 1);
  }

  /** One workload operation (an insert, read, update or read-modify-write) finished. */
  operationDone(): void {
    this.operations++;
    this.operationsInInterval++;
  }

  get operationCount(): number {
    return this.operations;
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** Closes the current interval at `nowMs` and appends it to the time series. */
  tick(nowMs: number): IntervalPoint {
    const seconds = Math.max(1e-6, (nowMs - this.intervalStartMs) / 1000);
    const point: IntervalPoint = { tMs: Math.round(nowMs - this.startMs), throughput: this.operationsInInterval / seconds, ops: {} };
    for (const [name, m] of this.byName) {
      if (name.startsWith(this.seriesPrefix) && (this.seriesPrefix !== '' || !name.startsWith('Intended-'))) {
        const h = m.interval;
        point.ops[name.slice(this.seriesPrefix.length)] = {
          count: h.totalCount,
          p50Us: h.totalCount ? h.getValueAtPercentile(50) : 0,
          p99Us: h.totalCount ? h.getValueAtPercentile(99) : 0,
          p999Us: h.totalCount ? h.getValueAtPercentile(99.9) : 0,
        };
      }
      m.interval.reset();
    }
    this.series.push(point);
    this.operationsInInterval = 0;
    this.intervalStartMs = nowMs;
    return point;
  }

  timeseries(): IntervalPoint[] {
    return this.series;
  }

  summary(name: string, percentiles: readonly number[]): OpSummary {
    const m = this.byName.get(name);
    if (!m) throw new Error(`no measurement named ${name}`);
    const h = m.total;
    const at = (p: number) => (h.totalCount ? h.getValueAtPercentile(p) : 0);
    const statuses = Object.fromEntries(m.statuses);
    return {
      count: h.totalCount,
      errors: Object.entries(statuses).reduce((sum, [s, n]) => (s === 'OK' ? sum : sum + n), 0),
      avgUs: h.totalCount ? h.mean : 0,
      minUs: h.totalCount ? h.minNonZeroValue : 0,
      maxUs: h.maxValue,
      p50Us: at(50),
      p95Us: at(95),
      p99Us: at(99),
      p999Us: at(99.9),
      percentiles: percentiles.map((p) => ({ percentile: p, us: at(p) })),
      statuses,
    };
  }

  destroy(): void {
    for (const m of this.byName.values()) {
      m.total.destroy();
      m.interval.destroy();
    }
    this.byName.clear();
  }

  private get(name: string): OneMeasurement {
    let m = this.byName.get(name);
    if (!m) this.byName.set(name, (m = new OneMeasurement()));
    return m;
  }
}
