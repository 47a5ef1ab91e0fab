// Pictures of the benchmark results: every result file present in
// bench/results/ becomes an SVG in bench/plots/ (next to bench/RESULTS.md).
//   ycsb-*.json       → ycsb-*.svg       latency percentiles (log scale) and throughput over time
//   scaling.json      → scaling.svg      throughput and p99/p99.9 vs cluster size
//   ring-balance.json → ring-balance.svg efficiency vs Q, with the paper's 0.99
//   memory.json       → memory.svg       RSS and disk while the keys are written
// A missing input is skipped with a message; a malformed one fails the run
// with its name and the bad field (after the others are drawn).
//
//   npm run bench:plot
//   npm run bench:plot -- --write      # also a section in bench/RESULTS.md linking the pictures
//   npm run bench:plot -- --results bench/results --out bench/plots
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { z } from 'zod';
import { memoryPlot, ringBalancePlot, scalingPlot, ycsbRunPlot } from './plot/charts.js';
import { memorySchema, readInput, ringBalanceSchema, scalingSchema, ycsbRunSchema } from './plot/inputs.js';
import { recordSection, today } from './results-file.js';

export { memoryPlot, ringBalancePlot, scalingPlot, ycsbRunPlot } from './plot/charts.js';
export { memorySpec, ringBalanceSpec, scalingSpec, ycsbRunSpec } from './plot/charts.js';
export { PlotInputError, checkInput, readInput } from './plot/inputs.js';

export const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
export const PLOTS_DIR = fileURLToPath(new URL('./plots/', import.meta.url));

export interface PlotReport {
  /** SVG files written. */
  written: string[];
  /** For each file written: its name in the plots directory and what it shows. */
  pictures: Array<{ file: string; caption: string }>;
  /** One line per expected input that is not there. */
  skipped: string[];
}

interface Job<T> {
  input: string;
  output: string;
  caption: string;
  schema: z.ZodType<T>;
  draw: (value: T) => Promise<string>;
}

function job<T>(input: string, output: string, caption: string, schema: z.ZodType<T>, draw: (value: T) => Promise<string>): Job<unknown> {
  return { input, output, caption, schema, draw } as Job<unknown>;
}

/** Renders every known result file in `resultsDir` into `plotsDir`; throws (after drawing the rest) if any file is malformed. */
export async function plotResults(resultsDir = RESULTS_DIR, plotsDir = PLOTS_DIR, log: (line: string) => void = console.log): Promise<PlotReport> {
  const present = existsSync(resultsDir) ? readdirSync(resultsDir) : [];
  const ycsb = present.filter((f) => /^ycsb-.+\.json$/.test(f)).sort();
  const jobs = [
    ...ycsb.map((f) => job(f, f.replace(/\.json$/, '.svg'), `YCSB ${f.slice(5, -5)}: latency percentiles and throughput over time`, ycsbRunSchema, ycsbRunPlot)),
    job('scaling.json', 'scaling.svg', 'Throughput and p99/p99.9 latency vs cluster size', scalingSchema, scalingPlot),
    job('ring-balance.json', 'ring-balance.svg', 'Ring balance: load-balancing efficiency vs Q', ringBalanceSchema, ringBalancePlot),
    job('memory.json', 'memory.svg', 'Memory and disk while the keys are written', memorySchema, memoryPlot),
  ];
  const report: PlotReport = { written: [], pictures: [], skipped: [] };
  if (ycsb.length === 0) report.skipped.push(`no ycsb-*.json in ${resultsDir}: no latency-over-time plots`);
  const failures: string[] = [];
  for (const j of jobs) {
    const input = join(resultsDir, j.input);
    if (!present.includes(j.input)) {
      report.skipped.push(`${input} not found: ${j.output} skipped`);
      continue;
    }
    try {
      const svg = await j.draw(readInput(j.schema, input));
      mkdirSync(plotsDir, { recursive: true });
      const output = join(plotsDir, j.output);
      writeFileSync(output, svg);
      report.written.push(output);
      report.pictures.push({ file: j.output, caption: j.caption });
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  report.skipped.forEach((s) => log(`skipped: ${s}`));
  const shown = (path: string) => (relative(process.cwd(), path).startsWith('..') ? path : relative(process.cwd(), path));
  report.written.forEach((w) => log(`wrote ${shown(w)}`));
  if (failures.length > 0) throw new Error(`${failures.length} result file(s) could not be plotted:\n  ${failures.join('\n  ')}`);
  return report;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { results: { type: 'string' }, out: { type: 'string' }, write: { type: 'boolean' } } });
  if (values.write && values.out) throw new Error('--write links bench/plots/ from bench/RESULTS.md: leave out --out');
  try {
    const report = await plotResults(values.results ?? RESULTS_DIR, values.out ?? PLOTS_DIR);
    if (values.write) {
      recordSection('plots', `## Pictures\n\nCommand: \`npm run bench:plot -- --write\` — drawn from bench/results/*.json (vega-lite, SVG). Date: ${today()}.\n\n${report.pictures.map((p) => `### ${p.caption}\n\n![${p.caption}](plots/${p.file})`).join('\n\n')}`);
      console.log('recorded the pictures in bench/RESULTS.md');
    }
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  }
}
