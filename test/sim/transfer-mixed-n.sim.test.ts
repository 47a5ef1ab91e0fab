// Partition transfers with mixed bucket n (see harness.ts, SimConfig.bucketNs
// and transferReads): every seed has a join and/or a leave under the usual
// faults, with keys in buckets of n = 2, 3 (the default) and 5. Transfers
// are planned per bucket n (docs/cluster.md "Partition transfer"), so:
// r = pr = n reads during the change miss no acknowledged write (a node new
// in a small n's list waits for that n's giver), no acknowledged write is
// lost, and once settled no node holds a key it was never a primary of for
// its bucket's n (STRAY COPY: a transfer sent for the wrong n).
// Not n = 1 yet: with n = 1 buckets, seed 32 reports STALE READs (open:
// docs/cluster.md); seeds 16 and 24 did too and are fixed (below). Seed 3's
// finding with n = 1 — a forwarded write coordinated off its primaries — is
// fixed and has its own test (forwarded-write.sim.test.ts).
// Default seeds 1-50; RINGKV_SIM_SEEDS works as for cluster.sim.test.ts.
import { describe, expect, it } from 'vitest';
import { TRANSFER_MIXED_N_SIM_CONFIG, TRANSFER_WITH_N1_SIM_CONFIG, runSim } from './harness.js';
import { failureReport, range, seedsFromEnv } from './report.js';

const seeds = seedsFromEnv(range(1, 50));
const CHUNK = 25;
// Simulated time is bounded inside each run; the wall-clock limit only guards against a hang.
const CHUNK_TIMEOUT_MS = 600_000;

describe('partition transfers with mixed bucket n', () => {
  for (let i = 0; i < seeds.length; i += CHUNK) {
    const chunk = seeds.slice(i, i + CHUNK);
    it(`seeds ${chunk[0]}..${chunk[chunk.length - 1]}: n = 2, 3, 5 buckets: no stale read, no lost write, no stray copy`, async () => {
      const failures: string[] = [];
      const totals = { probeReads: 0, transferReads: 0, transferred: 0 };
      for (const seed of chunk) {
        const result = await runSim(seed, TRANSFER_MIXED_N_SIM_CONFIG);
        if (result.violations.length > 0) failures.push(failureReport(result, 'test/sim/transfer-mixed-n.sim.test.ts'));
        totals.probeReads += result.stats.probeReads;
        totals.transferReads += result.stats.transferReads;
        totals.transferred += result.stats.transferred;
      }
      if (failures.length > 0) expect.fail(failures.join('\n\n'));
      if (chunk.length === CHUNK) {
        expect(totals.probeReads, JSON.stringify(totals)).toBeGreaterThan(100);
        expect(totals.transferred, JSON.stringify(totals)).toBeGreaterThan(0);
        expect(totals.transferReads, JSON.stringify(totals)).toBeGreaterThan(0);
      }
    }, CHUNK_TIMEOUT_MS);
  }

  // With n = 1 buckets: the claimant marks a leaving node 'left' as soon as the
  // ring gives it nothing, and a node that adopted that ring only then (it was
  // down or cut off) found no giver for an n = 1 partition (its only old
  // replica was no member) and answered r = 1 reads from its empty copy while
  // the leaver was still streaming to it. It now waits for the node it
  // replaces. Both seeds fail before the fix (src/core/transfer-plan.ts).
  it('n = 1 buckets, a receiver that learns of a leave after the leaver was marked left: seeds 16 and 24', async () => {
    const failures: string[] = [];
    for (const seed of [16, 24]) {
      const result = await runSim(seed, TRANSFER_WITH_N1_SIM_CONFIG);
      if (result.violations.length > 0) failures.push(failureReport(result, 'test/sim/transfer-mixed-n.sim.test.ts'));
      expect(result.stats.leftDuringLoad, `seed ${seed}`).not.toBeNull();
    }
    if (failures.length > 0) expect.fail(failures.join('\n\n'));
  }, CHUNK_TIMEOUT_MS);
});
