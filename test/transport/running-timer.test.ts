// runningTimer (src/transport/running-timer.ts) on a scripted clock: it
// expires after timeoutMs of the process running; a stall costs at most half.
import { describe, expect, it } from 'vitest';
import { runningTimer } from '../../src/transport/running-timer.js';
import type { Clock } from '../../src/transport/types.js';

function scripted() {
  let now = 0;
  let pending: Array<{ at: number; fn: () => void; cancelled: boolean }> = [];
  const clock: Clock = {
    now: () => now,
    setTimer: (ms, fn) => {
      const t = { at: now + ms, fn, cancelled: false };
      pending.push(t);
      return { cancel: () => void (t.cancelled = true) };
    },
  };
  /** Moves time to `to`, running timers due on the way (a stall: jump, then run what is due). */
  const runTo = (to: number, stalled = false): void => {
    for (;;) {
      const due = pending.filter((t) => !t.cancelled && t.at <= to).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      if (!stalled) now = Math.max(now, due.at);
      else now = to;
      pending = pending.filter((t) => t !== due);
      due.fn();
    }
    now = to;
  };
  return { clock, runTo };
}

describe('runningTimer', () => {
  it('expires after timeoutMs when the loop runs steadily, not before', () => {
    const c = scripted();
    let expired = 0;
    runningTimer(c.clock, 1_000, () => expired++);
    c.runTo(999);
    expect(expired).toBe(0);
    c.runTo(1_000);
    expect(expired).toBe(1);
    c.runTo(10_000);
    expect(expired).toBe(1);
  });

  it('a stall longer than the timeout counts as half of it', () => {
    const c = scripted();
    let expired = 0;
    runningTimer(c.clock, 1_000, () => expired++);
    c.runTo(5_000, true); // the loop stalled 5 s: the first step fires late, counting two quarters
    expect(expired).toBe(0);
    c.runTo(5_499);
    expect(expired).toBe(0);
    c.runTo(5_500);
    expect(expired).toBe(1);
  });

  it('cancel stops it', () => {
    const c = scripted();
    let expired = 0;
    const t = runningTimer(c.clock, 1_000, () => expired++);
    c.runTo(600);
    t.cancel();
    c.runTo(5_000);
    expect(expired).toBe(0);
  });
});
