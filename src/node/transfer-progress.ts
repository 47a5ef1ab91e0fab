// Samples a node's transfer counters once a second (for the rate over the
// last 30 s) and answers GET /status's `transferSummary` (the figures:
// src/core/transfer-progress.ts).
import { RateWindow, remainingToSend, summarizeTransfers, type PendingTransfer, type TransferCounters, type TransferSummary } from '../core/transfer-progress.js';
import type { Clock, Timer } from '../transport/types.js';

export interface TransferProgressSources {
  transfers: { progress(): TransferCounters; status(): readonly PendingTransfer[] };
  /** Records of a partition at the storage census's last count (null: not counted yet). */
  recordsIn(partition: number): number | null;
}

export class TransferProgressTracker {
  private readonly window: RateWindow;
  private timer: Timer | null = null;
  private stopped = false;

  constructor(
    private readonly sources: TransferProgressSources,
    private readonly clock: Clock,
    private readonly sampleEveryMs = 1_000,
    windowMs = 30_000,
  ) {
    this.window = new RateWindow(windowMs);
  }

  start(): void {
    this.sample();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  summary(): TransferSummary {
    const counters = this.sources.transfers.progress();
    // Only while something is pending: the list can be thousands long at Q = 4096.
    const remaining = counters.sending > 0 ? remainingToSend(this.sources.transfers.status(), (p) => this.sources.recordsIn(p)) : 0;
    return summarizeTransfers(counters, this.window.rates(), remaining);
  }

  private sample(): void {
    if (this.stopped) return;
    this.window.add(this.clock.now(), this.sources.transfers.progress());
    this.timer = this.clock.setTimer(this.sampleEveryMs, () => this.sample());
  }
}
