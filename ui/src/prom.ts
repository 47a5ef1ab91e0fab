// One /metrics scrape as numbers, and what two scrapes say together: rates
// of counters and latency quantiles of histograms over the interval between
// them. Pure: the page keeps the scrapes (history.ts), this computes.
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  labels: Labels;
  value: number;
}

export interface HistogramSample {
  labels: Labels;
  /** Cumulative counts by upper bound, ascending; the last is +Inf. */
  buckets: Array<{ le: number; count: number }>;
  count: number;
  sum: number;
}

export interface Scrape {
  atMs: number;
  /** Counters, gauges and untyped metrics by name. */
  samples: ReadonlyMap<string, Sample[]>;
  histograms: ReadonlyMap<string, HistogramSample[]>;
  /** name → HELP text, for metrics the page shows without knowing them. */
  help: ReadonlyMap<string, string>;
}

/**
 * Parses the exposition text. The parser library reads samples, labels and
 * escapes; histograms are put together here from their `_bucket`, `_sum`
 * and `_count` samples, because the library's own histogram grouping drops
 * the labels, sum and count when `le` is not the last label (prom-client
 * writes it first). So histogram families are handed to it as untyped.
 */
export function parseScrape(text: string, atMs: number): Scrape {
  const histogramNames = new Set<string>();
  const untyped = text.replace(/^# TYPE (\S+) histogram$/gm, (_line, name: string) => {
    histogramNames.add(name);
    return `# TYPE ${name} untyped`;
  });
  const samples = new Map<string, Sample[]>();
  const help = new Map<string, string>();
  for (const family of parsePrometheusTextFormat(untyped)) {
    if (family.help) help.set(family.name, family.help);
    if (family.type === 'SUMMARY' || family.type === 'HISTOGRAM') continue;
    const list = family.metrics.map((m) => ({ labels: m.labels ?? {}, value: Number(m.value) }));
    samples.set(family.name, [...(samples.get(family.name) ?? []), ...list]);
  }
  const histograms = new Map<string, HistogramSample[]>();
  for (const name of histogramNames) {
    const series = new Map<string, HistogramSample>();
    const seriesOf = (labels: Labels): HistogramSample => {
      const { le: _le, ...rest } = labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      let h = series.get(key);
      if (h === undefined) {
        h = { labels: rest, buckets: [], count: 0, sum: 0 };
        series.set(key, h);
      }
      return h;
    };
    for (const b of samples.get(`${name}_bucket`) ?? []) {
      if (b.labels.le !== undefined) seriesOf(b.labels).buckets.push({ le: b.labels.le === '+Inf' ? Infinity : Number(b.labels.le), count: b.value });
    }
    for (const c of samples.get(`${name}_count`) ?? []) seriesOf(c.labels).count = c.value;
    for (const x of samples.get(`${name}_sum`) ?? []) seriesOf(x.labels).sum = x.value;
    for (const h of series.values()) h.buckets.sort((a, b) => a.le - b.le);
    histograms.set(name, [...series.values()]);
    for (const suffix of ['', '_bucket', '_count', '_sum']) samples.delete(`${name}${suffix}`);
  }
  return { atMs, samples, histograms, help };
}

/** Sum of a metric's samples that pass `keep`; null when the node does not export the metric. */
export function total(scrape: Scrape, name: string, keep: (labels: Labels) => boolean = () => true): number | null {
  const list = scrape.samples.get(name);
  if (list === undefined) return null;
  return list.filter((s) => keep(s.labels)).reduce((sum, s) => sum + s.value, 0);
}

/** A metric's sums grouped by one label (e.g. hints pending by `target`); empty when absent or unlabelled. */
export function byLabel(scrape: Scrape, name: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of scrape.samples.get(name) ?? []) {
    const key = s.labels[label];
    if (key !== undefined) out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}

/**
 * Per-second rate of a counter between two scrapes, null when it cannot be
 * told: the metric is missing, no time passed, or the counter went down
 * (the node restarted and its counters began again).
 */
export function rate(prev: Scrape, cur: Scrape, name: string, keep?: (labels: Labels) => boolean): number | null {
  const a = total(prev, name, keep);
  const b = total(cur, name, keep);
  const seconds = (cur.atMs - prev.atMs) / 1000;
  if (a === null || b === null || seconds <= 0 || b < a) return null;
  return (b - a) / seconds;
}

/** A histogram's cumulative buckets summed over the series that pass `keep` (all series share the bucket bounds). */
export function mergedBuckets(scrape: Scrape, name: string, keep: (labels: Labels) => boolean = () => true): Array<{ le: number; count: number }> | null {
  const series = scrape.histograms.get(name);
  if (series === undefined) return null;
  const merged = new Map<number, number>();
  for (const h of series.filter((s) => keep(s.labels))) {
    for (const b of h.buckets) merged.set(b.le, (merged.get(b.le) ?? 0) + b.count);
  }
  return [...merged.entries()].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

/** What a histogram counted between two scrapes; null across a restart (a bucket went down) or when absent. */
export function bucketDelta(prev: Scrape, cur: Scrape, name: string, keep?: (labels: Labels) => boolean): Array<{ le: number; count: number }> | null {
  const a = mergedBuckets(prev, name, keep);
  const b = mergedBuckets(cur, name, keep);
  if (a === null || b === null) return null;
  const before = new Map(a.map((x) => [x.le, x.count]));
  const out = b.map((x) => ({ le: x.le, count: x.count - (before.get(x.le) ?? 0) }));
  return out.some((x) => x.count < 0) ? null : out;
}

/**
 * The q-quantile of cumulative buckets, interpolated linearly inside the
 * bucket it falls in (as Prometheus's histogram_quantile does); null when
 * nothing was counted. A quantile in the +Inf bucket is the largest finite
 * bound (the histogram cannot say more).
 */
export function quantile(buckets: ReadonlyArray<{ le: number; count: number }>, q: number): number | null {
  const last = buckets.at(-1);
  if (last === undefined || last.count <= 0) return null;
  const rank = q * last.count;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lowerBound;
      const inBucket = b.count - lowerCount;
      return inBucket <= 0 ? b.le : lowerBound + ((b.le - lowerBound) * (rank - lowerCount)) / inBucket;
    }
    lowerBound = b.le;
    lowerCount = b.count;
  }
  return lowerBound;
}
