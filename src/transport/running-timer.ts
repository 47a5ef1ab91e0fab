// A timeout that counts the time this process ran, not a stall of it.
//
// A plain timer that expires during a stall of the event loop (a GC pause, a
// long synchronous call, SIGSTOP) fires first thing after it, in the timers
// phase, before the I/O that arrived meanwhile is read: a handshake that the
// peer answered in time is then failed for this process's own stall (issue 9).
// So the time is counted in quarter steps, each counting at most two quarters
// however late it fires: a stall costs at most half the timeout.
import type { Clock, Timer } from './types.js';

/** Calls `onExpire` once `timeoutMs` of this process running has passed, unless cancelled first. */
export function runningTimer(clock: Clock, timeoutMs: number, onExpire: () => void): Timer {
  const stepMs = timeoutMs / 4;
  let countedMs = 0;
  let timer: Timer | null = null;
  let cancelled = false;
  const step = (from: number): void => {
    timer = clock.setTimer(stepMs, () => {
      if (cancelled) return;
      const now = clock.now();
      // At least a step (a timer may fire a rounding early), at most two (a stall).
      countedMs += Math.min(Math.max(now - from, stepMs), 2 * stepMs);
      if (countedMs >= timeoutMs) onExpire();
      else step(now);
    });
  };
  step(clock.now());
  return {
    cancel() {
      cancelled = true;
      timer?.cancel();
    },
  };
}
