// Is foreground work suffering? Background services (anti-entropy, partition
// transfers) skip a round while the node's recent client-request p99 is above
// a bound (Dynamo §6.5, admission control). The window is "since the last
// question", read from the node's latency histogram.
import type { ServiceContext } from './context.js';

export interface ForegroundBounds {
  /** Yield when the recent p99 is above this many ms. */
  yieldAboveMs: number;
  /** Judge only once the window has this many requests. */
  yieldMinSamples: number;
}

export class ForegroundLoad {
  private last: Map<string, number> | null = null;

  constructor(
    private readonly node: Pick<ServiceContext, 'metrics'>,
    private readonly bounds: ForegroundBounds,
  ) {}

  /** True when background work should wait: the p99 since the previous call is above the bound. */
  async busy(): Promise<boolean> {
    const metric = await this.node.metrics.latency.get();
    const now = new Map<string, number>();
    for (const v of metric.values) {
      if (!v.metricName?.endsWith('_bucket')) continue;
      const le = String((v.labels as Record<string, unknown>).le);
      now.set(le, (now.get(le) ?? 0) + v.value);
    }
    const before = this.last;
    this.last = now;
    if (!before) return false;
    const window = [...now.entries()]
      .map(([le, count]) => ({ le: le === '+Inf' ? Infinity : Number(le), count: count - (before.get(le) ?? 0) }))
      .sort((a, b) => a.le - b.le);
    const total = window.at(-1)?.count ?? 0;
    if (total < this.bounds.yieldMinSamples) return false;
    const p99 = window.find((b) => b.count >= 0.99 * total)?.le ?? Infinity;
    return p99 * 1000 > this.bounds.yieldAboveMs;
  }
}
