// quorum(): bucket props + request options → the validated, cluster-sized quorum.
import { describe, expect, it } from 'vitest';
import { MAX_N, QuorumError, quorum, type QuorumRequest } from '../../src/core/quorum.js';

const PROPS = { n: 3, r: 2, w: 2, dw: 1, mode: 'siblings' as const };

describe('quorum', () => {
  const ok: Array<[string, QuorumRequest, number, Record<string, number>]> = [
    ['the bucket defaults', {}, 5, { n: 3, r: 2, w: 2, dw: 1, pr: 0, pw: 0, timeoutMs: 5_000 }],
    ['request overrides', { n: 5, r: 1, w: 4, dw: 0, pr: 1, pw: 2, timeoutMs: 10 }, 5, { n: 5, r: 1, w: 4, dw: 0, pr: 1, pw: 2, timeoutMs: 10 }],
    ['a cluster smaller than n shrinks every number with it', { n: 5, r: 5, w: 4, dw: 3, pr: 5, pw: 4 }, 2, { n: 2, r: 2, w: 2, dw: 2, pr: 2, pw: 2 }],
    ['n at MAX_N', { n: MAX_N, r: MAX_N, w: MAX_N }, 20, { n: MAX_N, r: MAX_N, w: MAX_N }],
    ['the longest timeout', { timeoutMs: 600_000 }, 3, { timeoutMs: 600_000 }],
  ];
  it.each(ok)('%s', (_name, req, nodes, expected) => {
    expect(quorum(PROPS, req, nodes, 5_000)).toMatchObject({ ...expected, mode: 'siblings' });
  });

  const bad: Array<[string, QuorumRequest, RegExp]> = [
    ['n above MAX_N', { n: MAX_N + 1 }, /n must be an integer in 1\.\.16/],
    ['n zero', { n: 0 }, /n must be an integer in 1\.\.16/],
    ['r zero', { r: 0 }, /r must be an integer in 1\.\.16/],
    ['dw negative', { dw: -1 }, /dw must be an integer in 0\.\.16/],
    ['w fractional', { w: 1.5 }, /w must be an integer/],
    ['pw NaN', { pw: Number.NaN }, /pw must be an integer/],
    ['r above n', { n: 2, r: 3 }, /need r <= n.*got n=2 r=3/],
    ['dw above w', { w: 1, dw: 2 }, /need r <= n, w <= n, dw <= w/],
    ['pr above n', { n: 1, r: 1, w: 1, dw: 0, pr: 2 }, /pr <= n/],
    ['timeout zero', { timeoutMs: 0 }, /timeout must be in 1\.\.600000 ms/],
    ['timeout above the maximum', { timeoutMs: 600_001 }, /timeout must be in/],
    ['timeout infinite', { timeoutMs: Number.POSITIVE_INFINITY }, /timeout must be in/],
  ];
  it.each(bad)('refuses %s (QuorumError, BAD_REQUEST)', (_name, req, message) => {
    expect(() => quorum(PROPS, req, 5, 5_000)).toThrow(message);
    expect(() => quorum(PROPS, req, 5, 5_000)).toThrow(QuorumError);
  });

  it("read fan-out: the bucket's read_fanout (default all), overridden by the request's", () => {
    expect(quorum(PROPS, {}, 3, 5_000).readFanout).toBe('all');
    expect(quorum({ ...PROPS, read_fanout: 'quorum' }, {}, 3, 5_000).readFanout).toBe('quorum');
    expect(quorum({ ...PROPS, read_fanout: 'quorum' }, { readFanout: 'all' }, 3, 5_000).readFanout).toBe('all');
    expect(quorum(PROPS, { readFanout: 'quorum' }, 3, 5_000).readFanout).toBe('quorum');
    expect(() => quorum(PROPS, { readFanout: 'some' as never }, 3, 5_000)).toThrow(QuorumError);
  });

  it('validates what was asked before shrinking to the cluster (r=3 > n=2 is refused even on one node)', () => {
    expect(() => quorum(PROPS, { n: 2, r: 3 }, 1, 5_000)).toThrow(/need r <= n/);
  });
});
