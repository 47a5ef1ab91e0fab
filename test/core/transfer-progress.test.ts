// Transfer summaries (src/core/transfer-progress.ts): rates over a window,
// objects left from the census's counts, and the estimated time to finish.
import { describe, expect, it } from 'vitest';
import { RateWindow, remainingToSend, summarizeTransfers, type TransferCounters } from '../../src/core/transfer-progress.js';

const counters = (o: Partial<TransferCounters> & { sentObjects?: number; sentBytes?: number; sentPartitions?: number; receivedPartitions?: number } = {}): TransferCounters => ({
  sending: o.sending ?? 0,
  receiving: o.receiving ?? 0,
  sent: { objects: o.sentObjects ?? 0, bytes: o.sentBytes ?? 0, partitions: o.sentPartitions ?? 0 },
  received: { objects: 0, bytes: 0, partitions: o.receivedPartitions ?? 0 },
});

describe('RateWindow', () => {
  it('rates over the window only: older samples fall out', () => {
    const w = new RateWindow(10_000);
    expect(w.rates()).toBeNull();
    w.add(0, counters({ sentObjects: 0 }));
    w.add(1_000, counters({ sentObjects: 1_000, sentBytes: 1_000_000 }));
    expect(w.rates()).toMatchObject({ objects: 1_000, sentObjects: 1_000, bytes: 1_000_000 });
    // Then nothing moves for 20 s: the old burst leaves the window and the rate drops to 0.
    for (let t = 2_000; t <= 21_000; t += 1_000) w.add(t, counters({ sentObjects: 1_000, sentBytes: 1_000_000 }));
    expect(w.rates()).toMatchObject({ objects: 0, bytes: 0 });
  });

  it('refuses samples out of time order', () => {
    const w = new RateWindow(1_000);
    w.add(5, counters());
    expect(() => w.add(4, counters())).toThrow(/time order/);
  });
});

describe('remainingToSend', () => {
  it('two passes per transfer: the whole partition twice, less what was sent', () => {
    const records = (p: number) => [100, 50, 10][p] ?? null;
    // p0 half through its first pass: 50 + 100; p1 in its catch-up pass with 20 of 50 sent: 30; p2 given.
    expect(remainingToSend([{ partition: 0, sent: 50, pass: 1 }, { partition: 1, sent: 70, pass: 2 }, { partition: 2, sent: 20, pass: 3 }], records)).toBe(180);
    // A partition that grew past what pass 1 sent still has at least a full partition to go.
    expect(remainingToSend([{ partition: 0, sent: 150, pass: 1 }], records)).toBe(100);
    expect(remainingToSend([{ partition: 3, sent: 0, pass: 1 }], records)).toBeNull();
  });
});

describe('summarizeTransfers', () => {
  it('nothing pending: ETA 0', () => {
    expect(summarizeTransfers(counters(), null, 0)).toMatchObject({ sending: 0, receiving: 0, etaSeconds: 0 });
  });

  it('a giver with known counts: remaining objects over the send rate', () => {
    const s = summarizeTransfers(counters({ sending: 4, sentObjects: 500, sentBytes: 5_000 }), { objects: 100, bytes: 1_000, sentObjects: 100, partitions: 0 }, 1_050);
    expect(s).toMatchObject({ sending: 4, moved: { objects: 500, bytes: 5_000 }, rate: { objectsPerSec: 100, bytesPerSec: 1_000 }, remainingObjects: 1_050, etaSeconds: 11 });
  });

  it('a receiver (or counts not known): pending partitions over the partitions done per second', () => {
    const s = summarizeTransfers(counters({ receiving: 30, receivedPartitions: 10 }), { objects: 0, bytes: 0, sentObjects: 0, partitions: 2 }, 0);
    expect(s.etaSeconds).toBe(15);
  });

  it('no progress in the window: no ETA', () => {
    expect(summarizeTransfers(counters({ sending: 3 }), { objects: 0, bytes: 0, sentObjects: 0, partitions: 0 }, 10).etaSeconds).toBeNull();
    expect(summarizeTransfers(counters({ sending: 3 }), null, 10).etaSeconds).toBeNull();
  });
});
