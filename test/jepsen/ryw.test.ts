// The read-your-writes tally of the Jepsen run: a sample counts for the fault
// in effect anywhere between its write and its read (a partition before a
// pause or kill), failed reads are counted apart from misses.
import { describe, expect, it } from 'vitest';
import type { FaultWindow } from './harness.js';
import { rywPhase, tallyRyw, type RywSample } from './workload.js';

const windows: FaultWindow[] = [
  { op: 'kill', start: 100, end: 200 },
  { op: 'partition', start: 180, end: 300 },
  { op: 'pause', start: 500, end: null },
];
const at = (start: number, end: number, result: RywSample['result'] = 'hit'): RywSample => ({ start, end, result });

describe('read-your-writes phases', () => {
  it('classifies by overlap with the fault windows, partitions first', () => {
    expect(rywPhase(at(10, 99), windows)).toBe('quiet');
    expect(rywPhase(at(90, 110), windows)).toBe('other fault');
    expect(rywPhase(at(150, 185), windows)).toBe('partition');
    // The write started before the partition healed: it counts for the partition.
    expect(rywPhase(at(300, 320), windows)).toBe('partition');
    expect(rywPhase(at(301, 499), windows)).toBe('quiet');
    // A fault still in effect (no end yet).
    expect(rywPhase(at(900, 950), windows)).toBe('other fault');
  });

  it('tallies misses over reads that answered, failed reads apart', () => {
    const t = tallyRyw([at(10, 20), at(10, 20, 'miss'), at(200, 210, 'miss'), at(200, 210, 'error'), at(400, 410)], windows);
    expect(t.all).toEqual({ reads: 4, misses: 2, errors: 1 });
    expect(t.partition).toEqual({ reads: 1, misses: 1, errors: 1 });
    expect(t.quiet).toEqual({ reads: 3, misses: 1, errors: 0 });
    expect(t['other fault']).toEqual({ reads: 0, misses: 0, errors: 0 });
  });
});
