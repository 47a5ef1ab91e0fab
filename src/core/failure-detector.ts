// Local failure detection: a phi accrual detector (Hayashibara, Défago,
// Yared, Katayama 2004), as in Cassandra and Akka. Pure: arrival times come
// in, a suspicion level phi comes out; no clocks, no timers.
//
// Per peer the detector keeps a bounded window of inter-arrival times of
// "evidence of life" (the node feeds it every successful reply from the peer,
// every inbound request from it, gossip and heartbeats). At time `now`,
//
//   phi(now) = -log10(P(the next arrival comes later than now - last))
//
// under a distribution fitted to the window, so phi = 1 means a 10% chance
// that the peer is fine and just late, phi = 8 (the default threshold) one
// in 10^8.
//
// Distribution: **normal**, by default, with the logistic approximation of
// its CDF that Akka uses (error < 0.0001); the mean is shifted by the
// acceptable heartbeat pause (a GC pause or a burst of lost packets that is
// still "fine") and the standard deviation is floored at minStdDeviationMs,
// because a very regular sender would otherwise be suspected a few ms after
// a late arrival. **exponential** (Cassandra ≥ 1.2: phi = (t / mean) ·
// log10(e)) is available with `distribution: 'exponential'`; it is more
// tolerant of irregular arrivals and slower to convict. The pause applies to
// it too (t is reduced by the pause).
//
// Irregular evidence: client traffic can bring hundreds of arrivals a second,
// then nothing for a while. So that a burst does not shrink the mean to a
// millisecond (and phi explode in the first quiet second), an arrival less
// than `minSampleIntervalMs` after the last *sampled* one only moves the
// "last heard" time; it does not add an interval. The node sets
// minSampleIntervalMs to half its heartbeat interval and heartbeats every
// peer it has not heard from within one interval, so samples sit between
// half and one-and-a-bit intervals.
//
// The node's own pauses: a detector only sees arrivals when its event loop
// runs. A stall of the loop itself (a long synchronous call, a GC pause, the
// process stopped) looks, once it resumes, like every peer went silent at
// once, and would convict them all — and the first arrivals after it would
// add huge samples. So the node calls `localTick(now)` from a steady timer;
// once ticking, a gap between two calls longer than `maxLocalPauseMs`
// (seen by any call: a tick, an arrival, a phi) is the node's own pause, and
// every peer's "last heard" and "last sampled" times move forward by the gap:
// the pause counts as neither silence nor an interval. Cassandra's
// FailureDetector refuses to mark nodes down after a local pause for the same
// reason (MAX_LOCAL_PAUSE_IN_MS). Cost: a peer that died during the pause is
// convicted that much later.

export type PhiDistribution = 'normal' | 'exponential';

export interface PhiOptions {
  /** Suspect when phi exceeds this (Cassandra's phi_convict_threshold, Akka's threshold). Default 8. */
  threshold: number;
  /** Inter-arrival samples kept per peer. Default 100. */
  windowSize: number;
  /** Floor of the standard deviation (normal distribution). Default 200 ms. */
  minStdDeviationMs: number;
  /** A silence this much longer than usual is still not suspicious. Default 2000 ms. */
  acceptableHeartbeatPauseMs: number;
  /** Assumed mean interval before the first sample (its stddev: a quarter of it). Default 1000 ms. */
  firstHeartbeatEstimateMs: number;
  /** Arrivals closer than this to the last sampled one add no sample (see above). Default 0. */
  minSampleIntervalMs: number;
  distribution: PhiDistribution;
  /** Once ticking (see localTick), a gap between calls longer than this is the node's own pause. Default 2000 ms. */
  maxLocalPauseMs: number;
}

export const DEFAULT_PHI_OPTIONS: PhiOptions = Object.freeze({
  threshold: 8,
  windowSize: 100,
  minStdDeviationMs: 200,
  acceptableHeartbeatPauseMs: 2_000,
  firstHeartbeatEstimateMs: 1_000,
  minSampleIntervalMs: 0,
  distribution: 'normal',
  maxLocalPauseMs: 2_000,
});

const LOG10_E = Math.log10(Math.E);
/** Reported instead of Infinity (the normal tail underflows to 0 quickly). */
export const MAX_PHI = 1_000;

/**
 * phi for a normal distribution of intervals: -log10(1 - CDF(elapsed)),
 * with the logistic approximation of the normal CDF (Akka's
 * PhiAccrualFailureDetector).
 */
export function phiNormal(elapsedMs: number, meanMs: number, stdDeviationMs: number): number {
  const y = (elapsedMs - meanMs) / stdDeviationMs;
  const e = Math.exp(-y * (1.5976 + 0.070566 * y * y));
  const phi = elapsedMs > meanMs ? -Math.log10(e / (1 + e)) : -Math.log10(1 - 1 / (1 + e));
  return Number.isFinite(phi) ? Math.min(Math.max(phi, 0), MAX_PHI) : MAX_PHI;
}

/** phi for exponentially distributed intervals: -log10(e^(-t/mean)) = t/mean · log10(e) (Cassandra). */
export function phiExponential(elapsedMs: number, meanMs: number): number {
  if (elapsedMs <= 0) return 0;
  return Math.min((elapsedMs / meanMs) * LOG10_E, MAX_PHI);
}

/** A bounded window of intervals with running sums (O(1) per sample and per phi). */
class ArrivalWindow {
  private readonly samples: number[] = [];
  private start = 0;
  private sum = 0;
  private sumSq = 0;
  lastSample: number;
  lastArrival: number;

  constructor(
    private readonly capacity: number,
    at: number,
  ) {
    this.lastSample = at;
    this.lastArrival = at;
  }

  get size(): number {
    return this.samples.length;
  }

  add(interval: number): void {
    if (this.samples.length < this.capacity) this.samples.push(interval);
    else {
      const old = this.samples[this.start]!;
      this.sum -= old;
      this.sumSq -= old * old;
      this.samples[this.start] = interval;
      this.start = (this.start + 1) % this.capacity;
    }
    this.sum += interval;
    this.sumSq += interval * interval;
  }

  mean(): number {
    return this.sum / this.samples.length;
  }

  stdDeviation(): number {
    const m = this.mean();
    return Math.sqrt(Math.max(this.sumSq / this.samples.length - m * m, 0));
  }
}

export class PhiAccrualDetector {
  readonly options: PhiOptions;
  private readonly peers = new Map<string, ArrivalWindow>();
  /** The last time the node's event loop was seen running (undefined: not ticking, no pause detection). */
  private lastLocalAt: number | undefined;
  private pauses = { count: 0, lastMs: 0, lastEndedAt: -Infinity };

  constructor(options: Partial<PhiOptions> = {}) {
    const o = { ...DEFAULT_PHI_OPTIONS, ...options };
    const positive = (name: keyof PhiOptions, v: number, min = 0): void => {
      if (!Number.isFinite(v) || v < min) throw new RangeError(`${name} must be a number >= ${min}, got ${v}`);
    };
    positive('threshold', o.threshold, Number.MIN_VALUE);
    if (!Number.isInteger(o.windowSize) || o.windowSize < 1) throw new RangeError(`windowSize must be a positive integer, got ${o.windowSize}`);
    positive('minStdDeviationMs', o.minStdDeviationMs, Number.MIN_VALUE);
    positive('acceptableHeartbeatPauseMs', o.acceptableHeartbeatPauseMs);
    positive('firstHeartbeatEstimateMs', o.firstHeartbeatEstimateMs, Number.MIN_VALUE);
    positive('minSampleIntervalMs', o.minSampleIntervalMs);
    positive('maxLocalPauseMs', o.maxLocalPauseMs, Number.MIN_VALUE);
    if (o.distribution !== 'normal' && o.distribution !== 'exponential') throw new RangeError(`unknown distribution ${String(o.distribution)}`);
    this.options = Object.freeze(o);
  }

  /**
   * The node's event loop is running at `now`: call it from a timer firing
   * well within maxLocalPauseMs (the node: every quarter of it). Returns the
   * length of the local pause that ended now, or 0.
   */
  localTick(now: number): number {
    if (this.lastLocalAt === undefined) {
      this.lastLocalAt = now;
      return 0;
    }
    return this.observeLocal(now);
  }

  /** Whether a local pause (see localTick) ended at or after `since`, judged at `now`. */
  localPauseSince(since: number, now: number): boolean {
    this.observeLocal(now);
    return this.pauses.lastEndedAt >= since;
  }

  /** Local pauses seen so far, and the length of the last one (ms). */
  localPauses(): { count: number; lastMs: number } {
    return { count: this.pauses.count, lastMs: this.pauses.lastMs };
  }

  private observeLocal(now: number): number {
    const last = this.lastLocalAt;
    if (last === undefined || now <= last) return 0;
    this.lastLocalAt = now;
    const gap = now - last;
    if (gap <= this.options.maxLocalPauseMs) return 0;
    for (const w of this.peers.values()) {
      // Forward by the gap, never past now: the pause is not silence, nor an interval.
      w.lastArrival = Math.min(w.lastArrival + gap, now);
      w.lastSample = Math.min(w.lastSample + gap, now);
    }
    this.pauses = { count: this.pauses.count + 1, lastMs: gap, lastEndedAt: now };
    return gap;
  }

  /** Evidence that `peer` was alive at `now` (ms). Times must not go backwards per peer; an earlier time is ignored. */
  heartbeat(peer: string, now: number): void {
    this.observeLocal(now);
    const w = this.peers.get(peer);
    if (!w) {
      this.peers.set(peer, new ArrivalWindow(this.options.windowSize, now));
      return;
    }
    if (now < w.lastArrival) return;
    w.lastArrival = now;
    const interval = now - w.lastSample;
    if (interval >= this.options.minSampleIntervalMs && interval > 0) {
      w.add(interval);
      w.lastSample = now;
    }
  }

  /** The suspicion level of `peer` at `now`; 0 for a peer never heard from (nothing to judge by). */
  phi(peer: string, now: number): number {
    this.observeLocal(now);
    const w = this.peers.get(peer);
    if (!w) return 0;
    const elapsed = Math.max(0, now - w.lastArrival);
    const o = this.options;
    let mean: number;
    let std: number;
    if (w.size === 0) {
      mean = o.firstHeartbeatEstimateMs;
      std = o.firstHeartbeatEstimateMs / 4;
    } else {
      mean = w.mean();
      std = w.stdDeviation();
    }
    if (o.distribution === 'exponential') return phiExponential(elapsed - o.acceptableHeartbeatPauseMs, mean);
    return phiNormal(elapsed, mean + o.acceptableHeartbeatPauseMs, Math.max(std, o.minStdDeviationMs));
  }

  /** phi <= threshold (a peer never heard from is available: nothing says otherwise). */
  isAvailable(peer: string, now: number): boolean {
    return this.phi(peer, now) <= this.options.threshold;
  }

  /** When `peer` was last heard from, or undefined. */
  lastHeard(peer: string): number | undefined {
    return this.peers.get(peer)?.lastArrival;
  }

  /** Samples held for `peer` (for status and tests). */
  samples(peer: string): number {
    return this.peers.get(peer)?.size ?? 0;
  }

  /** Forgets a peer (it left the cluster). */
  remove(peer: string): void {
    this.peers.delete(peer);
  }
}
