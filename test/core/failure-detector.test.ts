import { describe, expect, it } from 'vitest';
import { MAX_PHI, PhiAccrualDetector, phiExponential, phiNormal } from '../../src/core/failure-detector.js';
import { Rand } from '../helpers/random.js';

/** Feeds heartbeats at the given absolute times. */
function feed(d: PhiAccrualDetector, peer: string, times: number[]): void {
  for (const t of times) d.heartbeat(peer, t);
}

/** Regular arrivals every `every` ms from 0 to `until`. */
function regular(every: number, until: number): number[] {
  return Array.from({ length: Math.floor(until / every) + 1 }, (_, i) => i * every);
}

/** The first time (1 ms steps) at which phi exceeds the threshold. */
function convictedAt(d: PhiAccrualDetector, peer: string, from: number): number {
  for (let t = from; t < from + 1_000_000; t++) if (!d.isAvailable(peer, t)) return t;
  throw new Error('never convicted');
}

describe('phi formulas', () => {
  it('normal: 0.3 at the mean (half the mass left), grows steeply past it', () => {
    expect(phiNormal(1000, 1000, 100)).toBeCloseTo(-Math.log10(0.5), 3);
    expect(phiNormal(500, 1000, 100)).toBeLessThan(0.001);
    // 2 standard deviations: 1 - Φ(2) ≈ 0.02275 → phi ≈ 1.64
    expect(phiNormal(1200, 1000, 100)).toBeCloseTo(1.643, 1);
    // 3 sd: ≈ 0.00135 → 2.87
    expect(phiNormal(1300, 1000, 100)).toBeCloseTo(2.87, 1);
    expect(phiNormal(1e9, 1000, 100)).toBe(MAX_PHI);
    for (let t = 0; t < 3000; t += 10) expect(phiNormal(t + 10, 1000, 100)).toBeGreaterThanOrEqual(phiNormal(t, 1000, 100));
  });

  it('exponential: t/mean · log10(e)', () => {
    expect(phiExponential(1000, 1000)).toBeCloseTo(Math.log10(Math.E), 6);
    expect(phiExponential(0, 1000)).toBe(0);
    expect(phiExponential(-5, 1000)).toBe(0);
    // phi 8 after ≈ 18.4 mean intervals
    expect(phiExponential(18_421, 1000)).toBeCloseTo(8, 2);
  });
});

describe('PhiAccrualDetector', () => {
  it('a peer never heard from is available with phi 0', () => {
    const d = new PhiAccrualDetector();
    expect(d.phi('x', 123_456)).toBe(0);
    expect(d.isAvailable('x', 123_456)).toBe(true);
    expect(d.lastHeard('x')).toBeUndefined();
  });

  it('regular heartbeats keep phi low; silence convicts after mean + pause + a few stddev', () => {
    const d = new PhiAccrualDetector({ minStdDeviationMs: 100, acceptableHeartbeatPauseMs: 1000 });
    feed(d, 'p', regular(1000, 60_000));
    expect(d.samples('p')).toBe(60);
    // Just after a heartbeat, and at the expected time of the next one: fine.
    expect(d.phi('p', 60_010)).toBeLessThan(0.01);
    expect(d.phi('p', 61_000)).toBeLessThan(0.01);
    expect(d.isAvailable('p', 62_000)).toBe(true);
    // stddev 0 → floored at 100 ms; mean 1000 + pause 1000: phi 8 at y ≈ 5.6 → ≈ 2560 ms of silence.
    const t = convictedAt(d, 'p', 60_000);
    expect(t - 60_000).toBeGreaterThan(2_400);
    expect(t - 60_000).toBeLessThan(2_700);
    // Any evidence of life resets it.
    d.heartbeat('p', t + 5);
    expect(d.isAvailable('p', t + 5)).toBe(true);
  });

  it('jittery arrivals widen the tolerance (higher stddev convicts later)', () => {
    const rand = new Rand(42);
    const steady = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 0, minStdDeviationMs: 10 });
    const jittery = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 0, minStdDeviationMs: 10 });
    let a = 0;
    let b = 0;
    for (let i = 0; i < 100; i++) {
      steady.heartbeat('p', (a += 1000));
      jittery.heartbeat('p', (b += 1000 + rand.int(-400, 400)));
    }
    expect(convictedAt(jittery, 'p', b) - b).toBeGreaterThan(convictedAt(steady, 'p', a) - a + 500);
  });

  it('the window is bounded: old intervals are forgotten', () => {
    const d = new PhiAccrualDetector({ windowSize: 10, acceptableHeartbeatPauseMs: 0, minStdDeviationMs: 50 });
    // 50 slow intervals (5 s), then 10 fast ones (100 ms): only the fast ones count now.
    let t = 0;
    for (let i = 0; i < 50; i++) d.heartbeat('p', (t += 5000));
    for (let i = 0; i < 10; i++) d.heartbeat('p', (t += 100));
    expect(d.samples('p')).toBe(10);
    expect(d.isAvailable('p', t + 1000)).toBe(false);
  });

  it('minSampleInterval: a burst of arrivals refreshes "last heard" without shrinking the mean', () => {
    const burstAware = new PhiAccrualDetector({ minSampleIntervalMs: 500, acceptableHeartbeatPauseMs: 0, minStdDeviationMs: 100 });
    const naive = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 0, minStdDeviationMs: 100 });
    const times = [...regular(1000, 10_000), ...Array.from({ length: 200 }, (_, i) => 10_001 + i)];
    feed(burstAware, 'p', times);
    feed(naive, 'p', times);
    expect(burstAware.lastHeard('p')).toBe(10_200);
    // 1 s after the burst: the naive detector (mean ≈ 50 ms) convicts, the other does not.
    expect(naive.isAvailable('p', 11_200)).toBe(false);
    expect(burstAware.isAvailable('p', 11_200)).toBe(true);
  });

  it('before any interval, uses the first-heartbeat estimate', () => {
    const d = new PhiAccrualDetector({ firstHeartbeatEstimateMs: 1000, acceptableHeartbeatPauseMs: 0 });
    d.heartbeat('p', 5_000);
    expect(d.samples('p')).toBe(0);
    expect(d.isAvailable('p', 6_000)).toBe(true);
    expect(d.isAvailable('p', 30_000)).toBe(false);
  });

  it('exponential distribution is more tolerant than the normal one for the same history', () => {
    const normal = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 0, minStdDeviationMs: 100 });
    const expo = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 0, distribution: 'exponential' });
    feed(normal, 'p', regular(1000, 30_000));
    feed(expo, 'p', regular(1000, 30_000));
    expect(convictedAt(normal, 'p', 30_000) - 30_000).toBeLessThan(2_000);
    const e = convictedAt(expo, 'p', 30_000) - 30_000;
    expect(e).toBeGreaterThan(18_000);
    expect(e).toBeLessThan(19_000);
  });

  it('acceptable pause delays conviction by about the pause', () => {
    const base = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 0, minStdDeviationMs: 100 });
    const paused = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 3000, minStdDeviationMs: 100 });
    feed(base, 'p', regular(1000, 20_000));
    feed(paused, 'p', regular(1000, 20_000));
    const diff = convictedAt(paused, 'p', 20_000) - convictedAt(base, 'p', 20_000);
    expect(diff).toBeGreaterThanOrEqual(2_990);
    expect(diff).toBeLessThanOrEqual(3_010);
  });

  it('is per peer, ignores times going backwards, and forgets removed peers', () => {
    const d = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 0, minStdDeviationMs: 100 });
    feed(d, 'a', regular(1000, 10_000));
    feed(d, 'b', regular(1000, 20_000));
    d.heartbeat('a', 3_000);
    expect(d.lastHeard('a')).toBe(10_000);
    expect(d.isAvailable('a', 20_000)).toBe(false);
    expect(d.isAvailable('b', 20_000)).toBe(true);
    d.remove('a');
    expect(d.phi('a', 20_000)).toBe(0);
  });

  describe("the node's own pause (issue 9: a detector convicted every peer for its own node's stall)", () => {
    /** Ticks every 500 ms and heartbeats from 'p' every 1000 ms, 0..until. */
    function ticking(until: number, opts: Partial<ConstructorParameters<typeof PhiAccrualDetector>[0]> = {}): PhiAccrualDetector {
      const d = new PhiAccrualDetector({ minStdDeviationMs: 100, ...opts });
      for (let t = 0; t <= until; t += 500) {
        d.localTick(t);
        if (t % 1000 === 0) d.heartbeat('p', t);
      }
      return d;
    }

    it('a stall longer than maxLocalPauseMs convicts no one, and adds no huge sample', () => {
      const d = ticking(20_000);
      const untouched = ticking(20_000);
      // The loop stalls 8 s: no tick, no arrival, until 28 s. phi 8 is passed ~3.5 s into a silence.
      expect(d.isAvailable('p', 28_000)).toBe(true);
      expect(d.localPauses()).toEqual({ count: 1, lastMs: 8_000 });
      // The peer's message queued during the stall arrives now: an ordinary interval, not 8 s.
      d.heartbeat('p', 28_000);
      untouched.heartbeat('p', 21_000);
      expect(convictedAt(d, 'p', 28_000) - 28_000).toBe(convictedAt(untouched, 'p', 21_000) - 21_000);
    });

    it('without ticks (or with a short gap) silence convicts as before', () => {
      const d = new PhiAccrualDetector({ minStdDeviationMs: 100 });
      feed(d, 'p', regular(1000, 20_000));
      expect(d.isAvailable('p', 28_000)).toBe(false);
      const t = ticking(20_000, { maxLocalPauseMs: 10_000 });
      expect(t.isAvailable('p', 28_000)).toBe(false);
      expect(t.localPauses().count).toBe(0);
    });

    it('a peer that stays silent after the pause is still convicted, later by the pause', () => {
      const d = ticking(20_000);
      const quiet = ticking(20_000);
      expect(d.localTick(28_000)).toBe(8_000);
      for (let t = 28_500; t < 40_000; t += 500) {
        d.localTick(t);
        quiet.localTick(t - 8_000);
      }
      expect(convictedAt(d, 'p', 28_000)).toBe(convictedAt(quiet, 'p', 20_000) + 8_000);
    });

    it('localPauseSince tells a timeout that fired late from a peer that did not answer', () => {
      const d = ticking(20_000);
      expect(d.localPauseSince(19_000, 20_400)).toBe(false);
      expect(d.localPauseSince(19_000, 25_000)).toBe(true);
      expect(d.localPauseSince(25_001, 25_400)).toBe(false);
    });
  });

  it('rejects bad options', () => {
    expect(() => new PhiAccrualDetector({ threshold: 0 })).toThrow(RangeError);
    expect(() => new PhiAccrualDetector({ windowSize: 0 })).toThrow(RangeError);
    expect(() => new PhiAccrualDetector({ minStdDeviationMs: -1 })).toThrow(RangeError);
    expect(() => new PhiAccrualDetector({ distribution: 'weibull' as never })).toThrow(RangeError);
    expect(() => new PhiAccrualDetector({ maxLocalPauseMs: 0 })).toThrow(RangeError);
  });
});
