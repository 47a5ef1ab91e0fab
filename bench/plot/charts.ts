// One picture per kind of benchmark result, as a Vega-Lite spec (data inline)
// and as SVG text. The spec builders are pure; rendering is in render.ts.
import type { TopLevelSpec } from 'vega-lite';
import type { MemoryResults, RingBalance, Scaling, YcsbRun } from './inputs.js';
import { renderSvg } from './render.js';

const WIDTH = 640;
const HEIGHT = 260;
const PERCENTILES = ['p50', 'p99', 'p99.9'] as const;
/** Solid, dashed, dotted: p50, p99, p99.9. */
const DASHES = [[1, 0], [7, 3], [2, 2]];
/** The Dynamo paper's Figure 8: strategy 3 (Q equal-sized partitions) reaches ≈ 0.99. */
export const PAPER_EFFICIENCY = 0.99;

const int = (x: number) => Math.round(x).toLocaleString('en');
const ms = (us: number) => us / 1_000;

// ---- YCSB: latency percentiles and throughput over time --------------------

export function ycsbRunSpec(run: YcsbRun): TopLevelSpec {
  if (run.timeseries.length === 0) throw new Error(`YCSB ${run.workload} on ${run.target} (${run.phase}): no time series points to plot`);
  const { series, dropped } = withoutPartialTail(run.timeseries);
  // Intervals in which an operation did not occur have no latency: left out (a log scale has no 0).
  const latency = series.flatMap((p) =>
    Object.entries(p.ops)
      .filter(([, o]) => o.count > 0)
      .flatMap(([op, o]) =>
        ([[PERCENTILES[0], o.p50Us], [PERCENTILES[1], o.p99Us], [PERCENTILES[2], o.p999Us]] as const).map(([percentile, us]) => ({
          t: p.tMs / 1_000,
          op,
          percentile,
          ms: ms(Math.max(us, 1)),
        })),
      ),
  );
  const throughput = series.map((p) => ({ t: p.tMs / 1_000, throughput: p.throughput }));
  // Reference lines: the run's mean (label on the right) and, in open loop, the target rate (label on the left).
  const reference = (label: string, value: number, color: string, align: 'left' | 'right') => [
    { data: { values: [{ value }] }, mark: { type: 'rule' as const, strokeDash: [4, 4], color }, encoding: { y: { field: 'value', type: 'quantitative' as const } } },
    {
      data: { values: [{ value, label }] },
      mark: { type: 'text' as const, align, dy: -7, color, fontSize: 11 },
      encoding: { x: { value: align === 'left' ? 4 : WIDTH - 4 }, y: { field: 'value', type: 'quantitative' as const }, text: { field: 'label' } },
    },
  ];
  const references = [
    ...reference(`overall ${int(run.overall.throughput)} ops/s`, run.overall.throughput, '#d62728', 'right'),
    ...(run.targetRate === null ? [] : reference(`target ${int(run.targetRate)} ops/s`, run.targetRate, '#2ca02c', 'left')),
  ];
  const seconds = Math.max(...series.map((p) => p.tMs)) / 1_000;
  // A short run has too few intervals for a line to show: mark each point too (own layer, so the legend keeps the dashes).
  const points = series.length <= 30;
  // "workloada" (YCSB's file name) → "A".
  const workload = /^(workload)?[a-z]$/i.test(run.workload) ? run.workload.slice(-1).toUpperCase() : run.workload;
  const x = { field: 't', type: 'quantitative' as const, title: 'time since start (s)', scale: { domain: [0, seconds], nice: false }, axis: { format: '~g' } };
  const loop = run.mode === 'open'
    ? `open loop at a target of ${int(run.targetRate ?? 0)} ops/s (latency from each operation's intended start)`
    : 'closed loop';
  return {
    title: {
      text: `YCSB workload ${workload} — ${run.label ?? run.target}, ${run.phase} phase`,
      subtitle: [
        `${run.label ? `system ${run.target}, ` : ''}${loop}, ${run.threads} threads${run.timedOut ? ' (stopped by its time cap)' : ''}`,
        `${int(run.overall.operations)} operations in ${(run.overall.runtimeMs / 1_000).toFixed(1)} s = ${int(run.overall.throughput)} ops/s, ${int(run.overall.errors)} errors` +
          (dropped === null ? '' : `; the last, partial interval (${dropped} ms) is not drawn`),
      ],
    },
    vconcat: [
      {
        title: 'Latency percentiles per interval',
        width: WIDTH,
        height: HEIGHT,
        data: { values: latency },
        encoding: {
          x,
          y: { field: 'ms', type: 'quantitative', title: 'latency (ms, log scale)', scale: { type: 'log' }, axis: { format: '~g' } },
        },
        layer: [
          {
            mark: { type: 'line', strokeWidth: 1.6 },
            encoding: {
              color: { field: 'op', type: 'nominal', title: 'operation' },
              strokeDash: { field: 'percentile', type: 'ordinal', title: 'percentile', scale: { domain: [...PERCENTILES], range: DASHES } },
            },
          },
          // A fill scale of its own (same palette, same sorted domain), so the legends stay those of the lines.
          ...(points
            ? [{
                transform: [{ calculate: 'datum.op', as: 'pointOp' }],
                mark: { type: 'point' as const, filled: true, size: 16 },
                encoding: { fill: { field: 'pointOp', type: 'nominal' as const, legend: null } },
              }]
            : []),
        ],
      },
      {
        title: 'Throughput per interval',
        width: WIDTH,
        height: HEIGHT * 0.6,
        layer: [
          {
            data: { values: throughput },
            mark: { type: 'line', strokeWidth: 1.6, color: '#333', point: points ? { color: '#333', size: 16 } : false },
            encoding: { x, y: { field: 'throughput', type: 'quantitative', title: 'throughput (ops/s)' } },
          },
          ...references,
        ],
      },
    ],
  };
}

type Interval = YcsbRun['timeseries'][number];

/**
 * The runner closes a last interval when the run stops, often only a few ms
 * long: its ops/s and percentiles come from a handful of requests and would
 * read as a spike. Dropped when shorter than half the interval before it.
 */
export function withoutPartialTail(series: Interval[]): { series: Interval[]; dropped: number | null } {
  if (series.length < 2) return { series, dropped: null };
  const last = series.at(-1)!.tMs - series.at(-2)!.tMs;
  const before = series.at(-2)!.tMs - (series.at(-3)?.tMs ?? 0);
  return last < before / 2 ? { series: series.slice(0, -1), dropped: last } : { series, dropped: null };
}

export async function ycsbRunPlot(run: YcsbRun): Promise<string> {
  return renderSvg(ycsbRunSpec(run));
}

// ---- Throughput and tail latency vs cluster size ---------------------------

export function scalingSpec(scaling: Scaling): TopLevelSpec {
  const rows = [...scaling.rows].sort((a, b) => a.nodes - b.nodes);
  const sizes = [...new Set(rows.map((r) => r.nodes))];
  const x = {
    field: 'nodes',
    type: 'quantitative',
    title: 'cluster size (nodes)',
    scale: { zero: false, padding: 24, nice: false },
    axis: { values: sizes, format: 'd', grid: false },
  } as const;
  const latency = rows.flatMap((r) => [
    { nodes: r.nodes, percentile: 'p99', ms: ms(r.p99Us) },
    { nodes: r.nodes, percentile: 'p99.9', ms: ms(r.p999Us) },
  ]);
  return {
    title: { text: 'Throughput and tail latency vs cluster size', subtitle: 'one point per cluster size' },
    hconcat: [
      {
        title: 'Throughput',
        width: WIDTH / 2,
        height: HEIGHT,
        data: { values: rows },
        mark: { type: 'line', point: true, color: '#4c78a8' },
        encoding: { x, y: { field: 'throughput', type: 'quantitative', title: 'throughput (ops/s)' } },
      },
      {
        title: 'Tail latency',
        width: WIDTH / 2,
        height: HEIGHT,
        data: { values: latency },
        mark: { type: 'line', point: true },
        encoding: {
          x,
          y: { field: 'ms', type: 'quantitative', title: 'latency (ms)' },
          color: { field: 'percentile', type: 'nominal', title: 'percentile', scale: { domain: ['p99', 'p99.9'], range: ['#f58518', '#d62728'] } },
        },
      },
    ],
  };
}

export async function scalingPlot(scaling: Scaling): Promise<string> {
  return renderSvg(scalingSpec(scaling));
}

// ---- Ring balance: efficiency vs Q -----------------------------------------

export function ringBalanceSpec(balance: RingBalance): TopLevelSpec {
  const rows = [...balance.rows].sort((a, b) => a.q - b.q);
  const points = rows.flatMap((r) => [
    { q: r.q, load: 'partition replicas per node', efficiency: r.partitionEfficiency },
    { q: r.q, load: 'keys per node', efficiency: r.keyEfficiency },
  ]);
  const lowest = Math.min(...points.map((p) => p.efficiency));
  const floor = Math.min(0.9, Math.floor((lowest - 0.02) * 20) / 20);
  const y = { type: 'quantitative' as const, scale: { domain: [Math.max(0, floor), 1] } };
  return {
    title: {
      text: `Ring balance at ${balance.nodes} nodes: load-balancing efficiency vs Q`,
      subtitle: `efficiency = mean load / max load over the nodes; N = ${balance.n}, ${int(balance.keys)} random keys`,
    },
    width: WIDTH,
    height: HEIGHT,
    layer: [
      {
        data: { values: points },
        mark: { type: 'line', point: true },
        encoding: {
          x: {
            field: 'q',
            type: 'quantitative',
            title: 'partitions Q (log₂ scale)',
            scale: { type: 'log', base: 2 },
            axis: { values: rows.map((r) => r.q), format: 'd' },
          },
          y: { ...y, field: 'efficiency', title: 'efficiency (mean / max load)' },
          color: { field: 'load', type: 'nominal', title: 'load counted' },
        },
      },
      {
        data: { values: [{ efficiency: PAPER_EFFICIENCY, label: `${PAPER_EFFICIENCY}: Dynamo paper, Figure 8, strategy 3` }] },
        layer: [
          { mark: { type: 'rule', strokeDash: [4, 4], color: '#555' }, encoding: { y: { ...y, field: 'efficiency' } } },
          {
            mark: { type: 'text', align: 'left', dx: 4, dy: 10, color: '#555', fontSize: 11 },
            encoding: { x: { value: 0 }, y: { ...y, field: 'efficiency' }, text: { field: 'label' } },
          },
        ],
      },
    ],
  };
}

export async function ringBalancePlot(balance: RingBalance): Promise<string> {
  return renderSvg(ringBalanceSpec(balance));
}

// ---- Memory and disk as keys are written -----------------------------------

export function memorySpec(memory: MemoryResults): TopLevelSpec {
  const samples = memory.targets.flatMap((t) =>
    t.samples.map((s) => ({ target: t.target, keys: s.keys, rssMiB: s.rssBytes / 2 ** 20, diskMiB: s.diskBytes / 2 ** 20 })),
  );
  const x = { field: 'keys', type: 'quantitative', title: 'keys written', axis: { format: ',d' } } as const;
  const color = { field: 'target', type: 'nominal', title: 'store' } as const;
  return {
    title: {
      text: `Memory and disk while writing ${int(memory.keys)} keys`,
      subtitle: [
        `${memory.valueBytes}-byte values; sled cache ${memory.cacheMiB} MiB`,
        'RSS is not proportional to the keys: it climbs while the cache fills, then grows far slower than the data on disk',
      ],
    },
    data: { values: samples },
    hconcat: [
      {
        title: 'Resident memory (VmRSS)',
        width: WIDTH / 2,
        height: HEIGHT,
        mark: { type: 'line', point: true },
        encoding: { x, y: { field: 'rssMiB', type: 'quantitative', title: 'RSS (MiB)' }, color },
      },
      {
        title: 'Data directory on disk (du)',
        width: WIDTH / 2,
        height: HEIGHT,
        mark: { type: 'line', point: true },
        encoding: { x, y: { field: 'diskMiB', type: 'quantitative', title: 'disk (MiB)' }, color },
      },
    ],
  };
}

export async function memoryPlot(memory: MemoryResults): Promise<string> {
  return renderSvg(memorySpec(memory));
}
