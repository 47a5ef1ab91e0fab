// A write forwarded to a node that its own ring does not make a primary of
// the key (the forwarder routed by an older or newer ring). It used to be
// coordinated there on a list of that node plus the first n − 1 primaries
// (coordinatingList), so the key's other primaries never got it — for n = 1
// none did, and r = 1 reads missed an acknowledged write (seed 3 of the
// mixed-n transfer simulation with n = 1 buckets: 37 STALE READs of op28,
// coordinated by n1 while n8 was the key's only primary). Now such a node
// hands the write on to its ring's primaries, once (forwardedWriteStep,
// src/core/apl.ts). The seed that found it is the regression test.
import { describe, expect, it } from 'vitest';
import { TRANSFER_WITH_N1_SIM_CONFIG, runSim } from './harness.js';
import { failureReport } from './report.js';

describe('a forwarded write whose coordinator\'s ring routes elsewhere', () => {
  it('reaches the key\'s primary: seed 3 with n = 1 buckets reads every acknowledged write', async () => {
    const result = await runSim(3, TRANSFER_WITH_N1_SIM_CONFIG);
    if (result.violations.length > 0) expect.fail(failureReport(result, 'test/sim/forwarded-write.sim.test.ts'));
    // The schedule that found it: a ring change with transfers, and reads during it.
    expect(result.stats.transferred).toBeGreaterThan(0);
    expect(result.stats.probeReads).toBeGreaterThan(50);
  }, 300_000);
});
