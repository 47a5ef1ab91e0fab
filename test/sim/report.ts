// Shared by the simulation test files: which seeds to run, and how a failing
// seed is reported (with the command that replays it alone).
import type { SimResult } from './harness.js';

/** RINGKV_SIM_SEEDS (e.g. `1-5000` or `3,17,100-120`), or `defaults` when unset. */
export function seedsFromEnv(defaults: readonly number[]): number[] {
  const spec = process.env.RINGKV_SIM_SEEDS;
  if (!spec || spec.trim() === '') return [...defaults];
  const seeds: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new Error(`RINGKV_SIM_SEEDS: cannot parse '${part}' (use e.g. 1-5000 or 3,17,100-120)`);
    seeds.push(...range(Number(m[1]), Number(m[2] ?? m[1])));
  }
  return seeds;
}

export function range(lo: number, hi: number): number[] {
  return Array.from({ length: Math.max(0, hi - lo + 1) }, (_, i) => lo + i);
}

/** The violations, stats and trace tail of a failed seed; `file` is the test file that replays it. */
export function failureReport(r: SimResult, file: string): string {
  return [
    `seed ${r.seed} broke ${r.violations.length} invariant(s) — replay alone: RINGKV_SIM_SEEDS=${r.seed} npx vitest run ${file}`,
    ...r.violations.slice(0, 10).map((v) => `  ✗ ${v}`),
    `  stats ${JSON.stringify(r.stats)}`,
    '  trace tail:',
    ...r.traceTail.map((l) => `    ${l}`),
  ].join('\n');
}
