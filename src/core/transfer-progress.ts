// One node's partition transfers summed up for an operator (GET /status
// `transferSummary`, `ringkv status`): what is left, what moved, the rate
// over a recent window and an estimated time to finish. Pure: the samples and
// the per-partition record counts come from the caller
// (src/node/transfer-progress.ts).
import { invariant } from './types.js';

/** Counters of a node's transfers since it started (TransferService.progress). */
export interface TransferCounters {
  /** Transfers (partition → node) still to give. */
  sending: number;
  /** Partitions still to receive. */
  receiving: number;
  sent: { objects: number; bytes: number; partitions: number };
  received: { objects: number; bytes: number; partitions: number };
}

/** A giver's pending transfer (TransferService.status): `sent` counts both passes. */
export interface PendingTransfer {
  partition: number;
  sent: number;
  /** 1: first pass, 2: catch-up pass (a second scan of the whole partition), 3: both given. */
  pass: number;
}

export interface TransferSummary {
  sending: number;
  receiving: number;
  /** Objects and bytes this node sent and received, since it started. */
  moved: { objects: number; bytes: number };
  /** Over the recent window (null: no window yet). */
  rate: { objectsPerSec: number; bytesPerSec: number } | null;
  /** Objects still to send, from the storage census's counts (null: a pending partition not counted yet). */
  remainingObjects: number | null;
  /** Seconds to finish at the recent rate: 0 when nothing is pending, null when it cannot be told (no progress in the window). */
  etaSeconds: number | null;
}

interface Sample {
  atMs: number;
  objects: number;
  bytes: number;
  sentObjects: number;
  partitions: number;
}

/** Samples of the counters over the last `windowMs` (oldest first), for rates. */
export class RateWindow {
  private samples: Sample[] = [];

  constructor(readonly windowMs: number) {
    invariant(windowMs > 0, 'a rate window has a length');
  }

  add(atMs: number, c: TransferCounters): void {
    const last = this.samples.at(-1);
    invariant(last === undefined || atMs >= last.atMs, 'rate samples arrive in time order');
    this.samples.push({
      atMs,
      objects: c.sent.objects + c.received.objects,
      bytes: c.sent.bytes + c.received.bytes,
      sentObjects: c.sent.objects,
      partitions: c.sent.partitions + c.received.partitions,
    });
    // Keep one sample at or before the window's start, so the window spans it all.
    while (this.samples.length > 2 && this.samples[1]!.atMs <= atMs - this.windowMs) this.samples.shift();
  }

  /** Growth per second between the oldest and the newest sample, or null with fewer than two samples apart in time. */
  rates(): { objects: number; bytes: number; sentObjects: number; partitions: number } | null {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.atMs <= first.atMs) return null;
    const s = (last.atMs - first.atMs) / 1000;
    return {
      objects: (last.objects - first.objects) / s,
      bytes: (last.bytes - first.bytes) / s,
      sentObjects: (last.sentObjects - first.sentObjects) / s,
      partitions: (last.partitions - first.partitions) / s,
    };
  }
}

/**
 * Objects the giver still has to send: each transfer scans its partition
 * twice (the catch-up pass sends it all again), so 2 × its records less what
 * was sent, and at least one full partition while the first pass runs.
 */
export function remainingToSend(pending: readonly PendingTransfer[], recordsIn: (partition: number) => number | null): number | null {
  let total = 0;
  for (const t of pending) {
    if (t.pass >= 3) continue;
    const records = recordsIn(t.partition);
    if (records === null) return null;
    total += Math.max(t.pass === 1 ? records : 0, 2 * records - t.sent);
  }
  return total;
}

export function summarizeTransfers(counters: TransferCounters, rates: ReturnType<RateWindow['rates']>, remainingObjects: number | null): TransferSummary {
  const pending = counters.sending + counters.receiving;
  let etaSeconds: number | null = null;
  if (pending === 0) etaSeconds = 0;
  else if (rates !== null) {
    // By objects where the giver knows how many are left, else by partitions done.
    if (counters.sending > 0 && remainingObjects !== null && rates.sentObjects > 0) etaSeconds = remainingObjects / rates.sentObjects;
    else if (rates.partitions > 0) etaSeconds = pending / rates.partitions;
  }
  return {
    sending: counters.sending,
    receiving: counters.receiving,
    moved: { objects: counters.sent.objects + counters.received.objects, bytes: counters.sent.bytes + counters.received.bytes },
    rate: rates === null ? null : { objectsPerSec: rates.objects, bytesPerSec: rates.bytes },
    remainingObjects: counters.sending > 0 ? remainingObjects : 0,
    etaSeconds: etaSeconds === null ? null : Math.ceil(etaSeconds),
  };
}
