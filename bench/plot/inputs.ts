// The shapes of the benchmark result files the plots read, checked on load so
// that a malformed file fails with its name and the bad field, not with a
// blank or wrong picture. Extra fields are allowed (benchmarks add context).
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const count = z.number().int().nonnegative();
const micros = z.number().nonnegative();
const finite = z.number().finite();

const opSummary = z.object({
  count,
  errors: count,
  avgUs: micros,
  minUs: micros,
  maxUs: micros,
  p50Us: micros,
  p95Us: micros,
  p99Us: micros,
  p999Us: micros,
});

/** One YCSB phase (bench/results/ycsb-*.json). */
export const ycsbRunSchema = z.object({
  workload: z.string().min(1),
  target: z.string().min(1),
  phase: z.enum(['load', 'run']),
  mode: z.enum(['closed', 'open']),
  threads: z.number().int().positive(),
  targetRate: z.number().positive().nullable(),
  overall: z.object({ runtimeMs: micros, throughput: micros, operations: count, errors: count }),
  operations: z.record(z.string(), opSummary),
  /** The suite's name for the run, used as the picture's title when present. */
  label: z.string().min(1).optional(),
  timedOut: z.boolean().optional(),
  timeseries: z.array(
    z.object({
      tMs: micros,
      throughput: micros,
      ops: z.record(z.string(), z.object({ count, p50Us: micros, p99Us: micros, p999Us: micros })),
    }),
  ),
});
export type YcsbRun = z.infer<typeof ycsbRunSchema>;

/** Throughput and tail latency per cluster size (bench/results/scaling.json). */
export const scalingSchema = z.object({
  rows: z
    .array(z.object({ nodes: z.number().int().positive(), throughput: micros, p99Us: micros, p999Us: micros }))
    .min(1),
});
export type Scaling = z.infer<typeof scalingSchema>;

/** Load-balancing efficiency (mean load / max load) per partition count Q (bench/results/ring-balance.json). */
export const ringBalanceSchema = z.object({
  nodes: z.number().int().positive(),
  n: z.number().int().positive(),
  keys: count,
  rows: z
    .array(
      z.object({
        q: z.number().int().positive(),
        partitionEfficiency: z.number().min(0).max(1),
        keyEfficiency: z.number().min(0).max(1),
      }),
    )
    .min(1),
});
export type RingBalance = z.infer<typeof ringBalanceSchema>;

/** Memory and disk per key (bench/results/memory.json, written by bench/memory.ts). */
export const memorySchema = z.object({
  keys: count,
  valueBytes: count,
  cacheMiB: finite,
  targets: z
    .array(
      z.object({
        target: z.string().min(1),
        keysLoaded: count,
        rssPerKeyBytes: finite,
        diskPerKeyBytes: finite,
        samples: z.array(z.object({ tMs: micros, keys: count, rssBytes: count, diskBytes: count })).min(1),
      }),
    )
    .min(1),
});
export type MemoryResults = z.infer<typeof memorySchema>;

export class PlotInputError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'PlotInputError';
  }
}

/** Parses `value` (already-read JSON) with `schema`; `file` names it in the error. */
export function checkInput<T>(schema: z.ZodType<T>, value: unknown, file: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`);
  const more = parsed.error.issues.length > 5 ? ` (and ${parsed.error.issues.length - 5} more)` : '';
  throw new PlotInputError(file, `not a valid result file — ${issues.join('; ')}${more}`);
}

/** Reads and checks one result file. */
export function readInput<T>(schema: z.ZodType<T>, file: string): T {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new PlotInputError(file, `cannot read JSON: ${(err as Error).message}`);
  }
  return checkInput(schema, value, file);
}
