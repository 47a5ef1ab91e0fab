// Jepsen-style test with real processes (issue "Surviving failures", #9): under
// a seeded nemesis that pauses, crashes or (as root with `nft`) partitions the
// network, one fault at a time, no acknowledged add is lost in sibling mode
// with a union merge nor in set buckets; LWW buckets are measured (they lose
// acknowledged writes by design), and so is read-your-writes.
//
// Default: a short run (25 s of workload, 5 nodes, a random seed; ~40 s in all). Longer:
//   RINGKV_JEPSEN_SECONDS=120 npx vitest run test/jepsen
// Other knobs (environment): RINGKV_JEPSEN_NODES=3..7, RINGKV_JEPSEN_SEED (printed on
// every run; rerun a failure with it), RINGKV_JEPSEN_CLIENTS (per workload, 5),
// RINGKV_JEPSEN_KEYS (20), RINGKV_JEPSEN_SETTLE_SECONDS (30), RINGKV_JEPSEN_GAP_MS
// (quiet time between faults, 500-2000), RINGKV_JEPSEN_DEBUG=1 (log every failed
// add and fault), RINGKV_JEPSEN_PARTITIONS=0 (no partitions), RINGKV_JEPSEN_LABEL
// (a block of its own in bench/RESULTS.md), RINGKV_JEPSEN_WRITE=1 (the table into
// bench/RESULTS.md).
// The same run without vitest: npx tsx test/jepsen/run.ts [--write]
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { closeAllClusters } from './harness.js';
import { formatRywTable, formatSummary, formatTable, optionsFromEnv, runJepsen, writeResults } from './workload.js';

const opts = optionsFromEnv();
// Every node process ends with the test, even one cut short by a timeout (SIGCONT, SIGTERM, then SIGKILL).
afterAll(closeAllClusters, 30_000);

describe('jepsen: acknowledged adds survive pauses, crashes and partitions', () => {
  it(`siblings + union and sets lose nothing acknowledged (seed ${opts.seed}, ${opts.nodes} nodes, ${opts.seconds} s)`, async () => {
    const report = await runJepsen(opts);
    const table = `${formatTable(report)}\n${formatRywTable(report)}`;
    const summary = formatSummary(report);
    console.log(`${table}\n${summary}`);
    if (process.env.RINGKV_JEPSEN_WRITE === '1') {
      const label = opts.label ? ` RINGKV_JEPSEN_LABEL='${opts.label}'` : '';
      writeResults(report, `RINGKV_JEPSEN_SECONDS=${opts.seconds} RINGKV_JEPSEN_NODES=${opts.nodes} RINGKV_JEPSEN_SEED=${opts.seed}${label} RINGKV_JEPSEN_WRITE=1 npx vitest run test/jepsen/jepsen.test.ts`, process.env.RINGKV_JEPSEN_MACHINE_NOTE);
    }
    const context = `seed ${opts.seed} (rerun with RINGKV_JEPSEN_SEED=${opts.seed})\n${table}\n${summary}`;
    expect(report.aliveAtEnd, context).toEqual(report.aliveAtEnd.map(() => true));
    expect(report.crashes, `node processes exited on their own:\n${report.crashes.map((c) => `${c.node}: ${c.log.join('\n')}`).join('\n')}\n${context}`).toEqual([]);
    expect(report.nemesis.length, context).toBeGreaterThan(0);
    if (report.partitions.enabled) {
      const parts = report.nemesis.filter((e) => e.op === 'partition');
      // The first fault is a partition; every one healed; the table is gone.
      expect(parts.length, context).toBeGreaterThan(0);
      expect(parts.filter((e) => e.healed).length, context).toBe(parts.length);
      expect(parts.filter((e) => e.error), context).toEqual([]);
      expect(execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' })).not.toContain(`ringkv_jepsen_${process.pid}`);
    }
    for (const mode of ['siblings', 'set'] as const) {
      const t = report.byMode[mode];
      expect(t.acknowledged, `${mode}: no add was acknowledged\n${context}`).toBeGreaterThan(0);
      expect(t.lost, `${mode} lost acknowledged adds: ${t.lostSample.join(', ')}\n${context}`).toBe(0);
      // An add refused with an error answer (or whose read failed) must not appear.
      expect(t.failedPresent, `${mode}: definitely failed adds present\n${context}`).toBe(0);
    }
    // LWW: reported, not judged.
    expect(report.byMode.lww.attempted).toBeGreaterThan(0);
  }, (opts.seconds + 150) * 1_000);
});
