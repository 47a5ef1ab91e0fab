// The last minutes of one node's scrapes, as chart series: request rate,
// error rate and latency percentiles per interval between two scrapes.
import { bucketDelta, mergedBuckets, quantile, rate, type Labels, type Scrape } from './prom.js';

/** Request outcomes that are answers, not errors (src/node/node.ts: found, not_found, ok). */
const ANSWERED = new Set(['ok', 'found', 'not_found']);
const isError = (labels: Labels): boolean => labels.outcome !== undefined && !ANSWERED.has(labels.outcome);

export interface Point {
  /** End of the interval, seconds since the epoch (uPlot's x). */
  t: number;
  /** Requests per second by operation (get, put, delete, ...). */
  rateByOp: Record<string, number>;
  errorsPerS: number | null;
  /** Latency in milliseconds; null when no request finished in the interval. */
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
}

export interface SiblingStats {
  /** Reads counted since the node started. */
  reads: number;
  meanSiblings: number | null;
  /** Share of reads that returned more than one sibling. */
  conflictedShare: number | null;
}

export class MetricsHistory {
  private scrapes: Scrape[] = [];
  private points: Point[] = [];

  constructor(private readonly windowMs: number = 5 * 60_000) {}

  /** Adds a scrape (in time order) and the interval it closes. */
  add(scrape: Scrape): void {
    const prev = this.scrapes.at(-1);
    if (prev !== undefined && scrape.atMs <= prev.atMs) return;
    this.scrapes.push(scrape);
    if (prev !== undefined) this.points.push(intervalPoint(prev, scrape));
    const oldest = scrape.atMs - this.windowMs;
    while (this.scrapes.length > 2 && this.scrapes[0]!.atMs < oldest) this.scrapes.shift();
    while (this.points.length > 0 && this.points[0]!.t * 1000 < oldest) this.points.shift();
  }

  latest(): Scrape | undefined {
    return this.scrapes.at(-1);
  }

  previous(): Scrape | undefined {
    return this.scrapes.at(-2);
  }

  series(): readonly Point[] {
    return this.points;
  }

  /** Operations seen in the window, sorted (a stable set of chart lines). */
  ops(): string[] {
    return [...new Set(this.points.flatMap((p) => Object.keys(p.rateByOp)))].sort();
  }
}

export function intervalPoint(prev: Scrape, cur: Scrape): Point {
  const ops = new Set((cur.samples.get('ringkv_requests_total') ?? []).map((s) => s.labels.op).filter((op): op is string => op !== undefined));
  const rateByOp: Record<string, number> = {};
  for (const op of ops) {
    const r = rate(prev, cur, 'ringkv_requests_total', (l) => l.op === op);
    if (r !== null) rateByOp[op] = r;
  }
  const latency = bucketDelta(prev, cur, 'ringkv_request_duration_seconds');
  const ms = (q: number): number | null => {
    const v = latency === null ? null : quantile(latency, q);
    return v === null ? null : v * 1000;
  };
  return { t: cur.atMs / 1000, rateByOp, errorsPerS: rate(prev, cur, 'ringkv_requests_total', isError), p50Ms: ms(0.5), p95Ms: ms(0.95), p99Ms: ms(0.99) };
}

/** Siblings per successful read since the node started (ringkv_get_siblings); null fields when nothing was read. */
export function siblingStats(scrape: Scrape): SiblingStats | null {
  const series = scrape.histograms.get('ringkv_get_siblings');
  const buckets = mergedBuckets(scrape, 'ringkv_get_siblings');
  if (series === undefined || buckets === null) return null;
  const reads = series.reduce((s, h) => s + h.count, 0);
  const sum = series.reduce((s, h) => s + h.sum, 0);
  const single = buckets.find((b) => b.le === 1)?.count ?? 0;
  return { reads, meanSiblings: reads > 0 ? sum / reads : null, conflictedShare: reads > 0 ? (reads - single) / reads : null };
}
