// The real clock's timers: a delay longer than setTimeout keeps (2^31 - 1 ms)
// waits instead of firing at once, as Node does with such a delay (a test or
// a node configured with "practically never", 1e9 ms, used to run that work
// every millisecond), and an infinite one never fires.
import { describe, expect, it } from 'vitest';
import { MAX_TIMEOUT_MS, systemClock } from '../../src/transport/types.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('systemClock.setTimer', () => {
  it('fires an ordinary delay', async () => {
    let fired = 0;
    systemClock.setTimer(5, () => fired++);
    await sleep(60);
    expect(fired).toBe(1);
  });

  it('does not fire a delay beyond setTimeout\'s maximum, nor an infinite one', async () => {
    let fired = 0;
    const long = systemClock.setTimer(1e9, () => fired++);
    const longer = systemClock.setTimer(MAX_TIMEOUT_MS * 3, () => fired++);
    const never = systemClock.setTimer(Infinity, () => fired++);
    await sleep(60);
    expect(fired).toBe(0);
    long.cancel();
    longer.cancel();
    never.cancel();
  });

  it('a cancelled timer does not fire', async () => {
    let fired = 0;
    systemClock.setTimer(5, () => fired++).cancel();
    await sleep(40);
    expect(fired).toBe(0);
  });
});
