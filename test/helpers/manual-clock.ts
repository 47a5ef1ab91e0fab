// A clock whose timers fire only when the test advances time (the driver
// tests' clock: test/node/ring-state.test.ts, gossip.test.ts, reap-driver.test.ts).
import type { Clock, Timer } from '../../src/transport/types.js';

export class ManualClock implements Clock {
  private t: number;
  private timers: Array<{ at: number; fire: () => void; live: boolean }> = [];

  constructor(startMs = 1_000_000) {
    this.t = startMs;
  }

  now = (): number => this.t;

  setTimer = (ms: number, fire: () => void): Timer => {
    const timer = { at: this.t + Math.max(0, ms), fire, live: true };
    this.timers.push(timer);
    return { cancel: () => void (timer.live = false) };
  };

  get liveTimers(): number {
    return this.timers.filter((t) => t.live).length;
  }

  /** Moves time on by `ms`, firing every timer due (and those they set that fall due), settling promises between. */
  async advance(ms: number): Promise<void> {
    this.t += ms;
    for (;;) {
      const due = this.timers.filter((t) => t.live && t.at <= this.t);
      if (due.length === 0) break;
      for (const t of due) {
        t.live = false;
        t.fire();
      }
      await settle();
    }
    await settle();
  }
}

/** Lets pending promise callbacks (and one macrotask turn) run. */
export const settle = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));
