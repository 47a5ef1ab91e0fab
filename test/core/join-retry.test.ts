// The log level of failed joins (src/core/join-retry.ts): quiet for quietMs,
// then one warning, then at most one per warnEveryMs; a success starts over.
import { describe, expect, it } from 'vitest';
import { JOIN_RETRY_START, onJoinFailure, onJoinSuccess } from '../../src/core/join-retry.js';

const policy = { quietMs: 30_000, warnEveryMs: 60_000 };

/** The levels of failures at these times (ms), from a fresh start. */
function levels(times: number[], state = JOIN_RETRY_START) {
  return times.map((t) => {
    const r = onJoinFailure(state, t, policy);
    state = r.state;
    return r.level;
  });
}

describe('join retry log level', () => {
  it('debug for the first 30 s of failures (a seed still starting), then a warning', () => {
    const times = Array.from({ length: 31 }, (_, i) => 1_000 + i * 1_000); // one attempt per gossip second
    const got = levels(times);
    expect(got.slice(0, 30).every((l) => l === 'debug')).toBe(true);
    expect(got[30]).toBe('warn');
  });

  it('after the first warning, at most one per minute however often it fails', () => {
    const times = Array.from({ length: 200 }, (_, i) => i * 1_000); // 0 .. 199 s
    const warnings = levels(times).flatMap((l, i) => (l === 'warn' ? [times[i]! / 1000] : []));
    expect(warnings).toEqual([30, 90, 150]);
  });

  it('tells how long joins have failed, and a success makes the next failures quiet again', () => {
    let s = onJoinFailure(JOIN_RETRY_START, 5_000, policy).state;
    const late = onJoinFailure(s, 40_000, policy);
    expect(late).toMatchObject({ level: 'warn', failingForMs: 35_000 });
    s = onJoinSuccess();
    expect(onJoinFailure(s, 41_000, policy)).toMatchObject({ level: 'debug', failingForMs: 0 });
  });
});
