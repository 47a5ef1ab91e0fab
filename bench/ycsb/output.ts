// The results of a phase: YCSB's text summary ("[OVERALL], RunTime(ms), ...")
// and the JSON document bench/plot.ts and bench/suite.ts read.
import type { Measurements, OpResult, OpSummary } from './measurements.js';
import type { PhaseResult } from './runner.js';

const OPERATION_ORDER = ['INSERT', 'READ', 'UPDATE', 'READ-MODIFY-WRITE'];

export type { OpResult };

export interface YcsbResult {
  workload: string;
  /** The binding (system under test): 'ringkv' or 'baseline'. */
  target: string;
  phase: 'load' | 'run';
  mode: 'closed' | 'open';
  threads: number;
  targetRate: number | null;
  overall: { runtimeMs: number; throughput: number; operations: number; errors: number };
  /** Per operation; in open loop, latency from the intended start (YCSB's Intended-* measurements). */
  operations: Record<string, OpResult>;
  /** Open loop only: per-request service time (from when each request was sent), which hides queueing. */
  serviceTime?: Record<string, OpResult>;
  timeseries: Array<{ tMs: number; throughput: number; ops: Record<string, { count: number; p50Us: number; p99Us: number; p999Us: number }> }>;
  /** A free-form label (the suite's run name), and anything else a caller adds. */
  label?: string;
  timedOut: boolean;
}

function orderedNames(m: Measurements, prefix: '' | 'Intended-'): string[] {
  const names = m.names()
    .filter((n) => (prefix ? n.startsWith(prefix) : !n.startsWith('Intended-')))
    .map((n) => n.slice(prefix.length));
  const rank = (n: string) => (OPERATION_ORDER.includes(n) ? OPERATION_ORDER.indexOf(n) : OPERATION_ORDER.length);
  return names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

function opResult(s: OpSummary): OpResult {
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return { count: s.count, errors: s.errors, avgUs: round(s.avgUs), minUs: s.minUs, maxUs: s.maxUs, p50Us: s.p50Us, p95Us: s.p95Us, p99Us: s.p99Us, p999Us: s.p999Us };
}

export function toJson(result: PhaseResult, workload: string, target: string, percentiles: readonly number[], label?: string): YcsbResult {
  const m = result.measurements;
  const primary: '' | 'Intended-' = result.mode === 'open' ? 'Intended-' : '';
  const section = (prefix: '' | 'Intended-') =>
    Object.fromEntries(orderedNames(m, prefix).map((op) => [op, opResult(m.summary(prefix + op, percentiles))]));
  const operations = section(primary);
  // A read-modify-write's read and update are also counted as READ and UPDATE (as YCSB does); count errors once per operation.
  const errors = Object.entries(operations).reduce((sum, [op, r]) => (op === 'READ-MODIFY-WRITE' ? sum : sum + r.errors), 0);
  return {
    workload,
    target,
    phase: result.phase,
    mode: result.mode,
    threads: result.threads,
    targetRate: result.targetRate,
    overall: {
      runtimeMs: Math.round(result.runtimeMs),
      throughput: m.operationCount / (result.runtimeMs / 1000),
      operations: m.operationCount,
      errors,
    },
    operations,
    ...(result.mode === 'open' ? { serviceTime: section('') } : {}),
    timeseries: m.timeseries(),
    ...(label ? { label } : {}),
    timedOut: result.timedOut,
  };
}

/** YCSB's TextMeasurementsExporter format. */
export function toText(result: PhaseResult, percentiles: readonly number[]): string {
  const m = result.measurements;
  const lines = [
    `[OVERALL], RunTime(ms), ${Math.round(result.runtimeMs)}`,
    `[OVERALL], Throughput(ops/sec), ${m.operationCount / (result.runtimeMs / 1000)}`,
  ];
  const prefixes: Array<'' | 'Intended-'> = result.mode === 'open' ? ['', 'Intended-'] : [''];
  for (const prefix of prefixes) {
    for (const op of orderedNames(m, prefix)) {
      const name = prefix + op;
      const s = m.summary(name, percentiles);
      lines.push(
        `[${name}], Operations, ${s.count}`,
        `[${name}], AverageLatency(us), ${s.avgUs}`,
        `[${name}], MinLatency(us), ${s.minUs}`,
        `[${name}], MaxLatency(us), ${s.maxUs}`,
        ...s.percentiles.map((p) => `[${name}], ${ordinal(p.percentile)}PercentileLatency(us), ${p.us}`),
        ...Object.entries(s.statuses).map(([status, n]) => `[${name}], Return=${status}, ${n}`),
      );
    }
  }
  return lines.join('\n');
}

/** YCSB's label for a percentile: 95 → "95th", 99.9 → "99.9". */
function ordinal(p: number): string {
  if (!Number.isInteger(p)) return String(p);
  const suffixes = ['th', 'st', 'nd', 'rd', 'th', 'th', 'th', 'th', 'th', 'th'];
  return [11, 12, 13].includes(p % 100) ? `${p}th` : `${p}${suffixes[p % 10]}`;
}
