// The benchmark pictures (bench/plot.ts): each chart renders from a small
// result file into well-formed SVG with its axis titles and one data mark per
// series or point; a malformed result file fails with its name and the bad field.
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import {
  PlotInputError,
  checkInput,
  memoryPlot,
  plotResults,
  readInput,
  ringBalancePlot,
  scalingPlot,
  ycsbRunPlot,
} from '../../bench/plot.js';
import { memorySchema, ringBalanceSchema, scalingSchema, ycsbRunSchema } from '../../bench/plot/inputs.js';
import { tempDir } from '../helpers/tmp.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const fixture = (name: string) => join(fixtures, name);
const json = (name: string): unknown => JSON.parse(readFileSync(fixture(name), 'utf8'));

/** How many SVG elements Vega marked with this ARIA role description ("line mark", "point", "rule mark"). */
function marks(svg: string, role: string): number {
  return svg.split(`aria-roledescription="${role}"`).length - 1;
}

/** Titles of the axes, from Vega's ARIA labels ("X-axis titled 'time (s)' for ..."). */
function axisTitles(svg: string): string[] {
  return [...svg.matchAll(/aria-label="[XY]-axis titled '([^']*)'/g)].map((m) => m[1]!);
}

function expectWellFormedSvg(svg: string): void {
  expect(XMLValidator.validate(svg)).toBe(true);
  expect(svg.startsWith('<svg')).toBe(true);
  expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
}

describe('YCSB run: latency percentiles and throughput over time', () => {
  it('draws p50/p99/p99.9 per operation on a log scale and the throughput, with the mean as a reference line', async () => {
    const svg = await ycsbRunPlot(readInput(ycsbRunSchema, fixture('ycsb-a-closed.json')));
    expectWellFormedSvg(svg);
    expect(axisTitles(svg)).toEqual(['time since start (s)', 'latency (ms, log scale)', 'time since start (s)', 'throughput (ops/s)']);
    expect(svg).toMatch(/Y-axis titled 'latency \(ms, log scale\)' for a log scale/);
    // READ and UPDATE × three percentiles, plus the throughput line.
    expect(marks(svg, 'line mark')).toBe(2 * 3 + 1);
    expect(marks(svg, 'rule mark')).toBe(1);
    expect(svg).toContain('YCSB workload A — ringkv 3 nodes (3,2,2), run phase');
    // 20 intervals: each interval's value is marked with a point too (2 ops × 3 percentiles, 1 missing UPDATE interval; throughput).
    expect(marks(svg, 'point')).toBe(2 * 3 * 20 - 3 + 20);
    expect(svg).toMatch(/legend titled 'operation'.* READ, UPDATE/);
    expect(svg).toMatch(/legend titled 'percentile'.* p50, p99, p99\.9/);
  });

  it('in open loop also draws the target rate', async () => {
    const svg = await ycsbRunPlot(readInput(ycsbRunSchema, fixture('ycsb-b-open.json')));
    expectWellFormedSvg(svg);
    expect(marks(svg, 'line mark')).toBe(1 * 3 + 1);
    expect(marks(svg, 'rule mark')).toBe(2);
    expect(svg).toContain('target 5,000 ops/s');
    expect(svg).toContain('YCSB workload B — ringkv-1node-open, run phase');
  });

  it('leaves out a last interval much shorter than the others (a few requests would read as a spike)', async () => {
    const run = readInput(ycsbRunSchema, fixture('ycsb-b-open.json'));
    const last = run.timeseries.at(-1)!;
    run.timeseries.push({ ...last, tMs: last.tMs + 15, throughput: 66_000 });
    const svg = await ycsbRunPlot(run);
    expect(svg).toContain('the last, partial interval (15 ms) is not drawn');
    expect(svg).not.toContain('66000');
    expect(marks(svg, 'point')).toBe(3 * 10 + 10);
  });

  it('refuses a run without time series points', async () => {
    const run = checkInput(ycsbRunSchema, { ...(json('ycsb-b-open.json') as object), timeseries: [] }, 'empty.json');
    await expect(ycsbRunPlot(run)).rejects.toThrow(/no time series points/);
  });
});

describe('scaling, ring balance and memory', () => {
  it('throughput and p99/p99.9 vs cluster size: one point per size and series', async () => {
    const svg = await scalingPlot(readInput(scalingSchema, fixture('scaling.json')));
    expectWellFormedSvg(svg);
    expect(axisTitles(svg)).toEqual(['cluster size (nodes)', 'throughput (ops/s)', 'cluster size (nodes)', 'latency (ms)']);
    expect(marks(svg, 'line mark')).toBe(3);
    expect(marks(svg, 'point')).toBe(3 + 2 * 3);
  });

  it('efficiency vs Q on a log2 axis, with the paper’s 0.99 as a reference line', async () => {
    const svg = await ringBalancePlot(readInput(ringBalanceSchema, fixture('ring-balance.json')));
    expectWellFormedSvg(svg);
    expect(axisTitles(svg)).toEqual(['partitions Q (log₂ scale)', 'efficiency (mean / max load)']);
    expect(svg).toMatch(/X-axis titled 'partitions Q \(log₂ scale\)' for a log scale/);
    expect(marks(svg, 'line mark')).toBe(2);
    expect(marks(svg, 'point')).toBe(2 * 4);
    expect(marks(svg, 'rule mark')).toBe(1);
    expect(svg).toContain('0.99: Dynamo paper, Figure 8, strategy 3');
  });

  it('RSS and disk vs keys written, one line per store', async () => {
    const svg = await memoryPlot(readInput(memorySchema, fixture('memory.json')));
    expectWellFormedSvg(svg);
    expect(axisTitles(svg)).toEqual(['keys written', 'RSS (MiB)', 'keys written', 'disk (MiB)']);
    expect(marks(svg, 'line mark')).toBe(2 * 2);
    expect(marks(svg, 'point')).toBe(2 * 6 * 2);
  });
});

describe('malformed inputs', () => {
  it('names the file and the bad field', () => {
    const run = json('ycsb-a-closed.json') as { timeseries: Array<{ tMs: unknown }>; mode: unknown };
    run.timeseries[3]!.tMs = 'soon';
    run.mode = 'sideways';
    const thrown = (() => {
      try {
        checkInput(ycsbRunSchema, run, 'ycsb-x.json');
      } catch (err) {
        return err;
      }
      return null;
    })();
    expect(thrown).toBeInstanceOf(PlotInputError);
    expect((thrown as Error).message).toMatch(/^ycsb-x\.json: not a valid result file/);
    expect((thrown as Error).message).toContain('mode:');
    expect((thrown as Error).message).toContain('timeseries.3.tMs:');
  });

  it('rejects an efficiency above 1 and a file that is not JSON', () => {
    const balance = json('ring-balance.json') as { rows: Array<{ keyEfficiency: number }> };
    balance.rows[0]!.keyEfficiency = 1.5;
    expect(() => checkInput(ringBalanceSchema, balance, 'rb.json')).toThrow(/rb\.json: .*rows\.0\.keyEfficiency/);
    const dir = tempDir('ringkv-plot-test-');
    try {
      writeFileSync(join(dir.path, 'scaling.json'), '{"rows": [');
      expect(() => readInput(scalingSchema, join(dir.path, 'scaling.json'))).toThrow(/scaling\.json: cannot read JSON/);
    } finally {
      dir.remove();
    }
  });
});

describe('plotResults (the bench:plot CLI)', () => {
  it('draws every result present, skips the missing ones with a message, and fails naming a malformed file', async () => {
    const results = tempDir('ringkv-plot-results-');
    const plots = tempDir('ringkv-plot-out-');
    try {
      copyFileSync(fixture('ycsb-a-closed.json'), join(results.path, 'ycsb-a-closed.json'));
      copyFileSync(fixture('ring-balance.json'), join(results.path, 'ring-balance.json'));
      writeFileSync(join(results.path, 'scaling.json'), JSON.stringify({ rows: [{ nodes: 0, throughput: 1, p99Us: 1, p999Us: 1 }] }));
      const lines: string[] = [];
      await expect(plotResults(results.path, plots.path, (l) => lines.push(l))).rejects.toThrow(/scaling\.json: not a valid result file — rows\.0\.nodes/);
      expect(existsSync(join(plots.path, 'ycsb-a-closed.svg'))).toBe(true);
      expect(existsSync(join(plots.path, 'ring-balance.svg'))).toBe(true);
      expect(existsSync(join(plots.path, 'scaling.svg'))).toBe(false);
      expect(lines.some((l) => /^skipped: .*memory\.json not found/.test(l))).toBe(true);

      writeFileSync(join(results.path, 'scaling.json'), readFileSync(fixture('scaling.json')));
      const report = await plotResults(results.path, plots.path, () => {});
      expect(report.written.map((w) => w.slice(plots.path.length + 1)).sort()).toEqual(['ring-balance.svg', 'scaling.svg', 'ycsb-a-closed.svg']);
      expectWellFormedSvg(readFileSync(join(plots.path, 'scaling.svg'), 'utf8'));
      expect(report.pictures).toContainEqual({ file: 'ycsb-a-closed.svg', caption: 'YCSB a-closed: latency percentiles and throughput over time' });
    } finally {
      results.remove();
      plots.remove();
    }
  });
});
