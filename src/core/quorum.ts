// The quorum of one request (Dynamo §4.5, Riak's n/r/w/dw/pr/pw): the
// bucket's properties overridden by the request's options, validated, then
// shrunk to the cluster's size. Pure: the node maps a QuorumError to its
// BAD_REQUEST.
import { MAX_N, READ_FANOUTS, type BucketProps, type ReadFanout } from './membership.js';

/** Most replicas of a key (defined with the bucket properties it bounds), and the bound of every quorum number. */
export { MAX_N };
/** Longest deadline a request may ask for. */
export const MAX_TIMEOUT_MS = 600_000;

export interface QuorumRequest {
  n?: number;
  r?: number;
  w?: number;
  dw?: number;
  /** Of the R answers, at least this many from primaries (Riak's pr; default 0). */
  pr?: number;
  /** Of the W acks, at least this many from primaries, not hinted fallbacks (Riak's pw; default 0). */
  pw?: number;
  timeoutMs?: number;
  /** Who a read asks: the bucket's read_fanout overridden for this request (`?fanout=`). */
  readFanout?: ReadFanout;
}

export interface Quorum {
  n: number;
  r: number;
  w: number;
  dw: number;
  pr: number;
  pw: number;
  mode: BucketProps['mode'];
  timeoutMs: number;
  /** `all`: a read asks every replica; `quorum`: R first, more only when needed (src/core/apl.ts readPlan). */
  readFanout: ReadFanout;
}

/** The request's quorum cannot be met by any cluster: the caller's fault. */
export class QuorumError extends Error {
  readonly code = 'BAD_REQUEST';
  constructor(message: string) {
    super(message);
    this.name = 'QuorumError';
  }
}

/**
 * `props`: the bucket's; `req`: the request's overrides; `nodes`: distinct
 * owners in the ring; `defaultTimeoutMs`: the node's request timeout.
 */
export function quorum(props: Pick<BucketProps, 'n' | 'r' | 'w' | 'dw' | 'mode' | 'read_fanout'>, req: QuorumRequest, nodes: number, defaultTimeoutMs: number): Quorum {
  const requested = { n: req.n ?? props.n, r: req.r ?? props.r, w: req.w ?? props.w, dw: req.dw ?? props.dw, pr: req.pr ?? 0, pw: req.pw ?? 0 };
  for (const [name, v] of Object.entries(requested)) {
    const min = name === 'n' || name === 'r' || name === 'w' ? 1 : 0;
    if (!Number.isInteger(v) || v < min || v > MAX_N) throw new QuorumError(`${name} must be an integer in ${min}..${MAX_N}`);
  }
  if (requested.r > requested.n || requested.w > requested.n || requested.dw > requested.w || requested.pr > requested.n || requested.pw > requested.n) {
    throw new QuorumError(
      `need r <= n, w <= n, dw <= w, pr <= n and pw <= n (got n=${requested.n} r=${requested.r} w=${requested.w} dw=${requested.dw} pr=${requested.pr} pw=${requested.pw})`,
    );
  }
  // A cluster smaller than n keeps one replica per node: n, r, w and dw
  // shrink with it (a configuration limit, not a failure — a stopped node
  // is still a member and still counts).
  const n = Math.min(requested.n, nodes);
  const timeoutMs = req.timeoutMs ?? defaultTimeoutMs;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS) throw new QuorumError(`timeout must be in 1..${MAX_TIMEOUT_MS} ms`);
  const readFanout = req.readFanout ?? props.read_fanout ?? 'all';
  if (!READ_FANOUTS.includes(readFanout)) throw new QuorumError(`fanout must be ${READ_FANOUTS.join(' or ')}`);
  return {
    n,
    r: Math.min(requested.r, n),
    w: Math.min(requested.w, n),
    dw: Math.min(requested.dw, n),
    pr: Math.min(requested.pr, n),
    pw: Math.min(requested.pw, n),
    mode: props.mode,
    timeoutMs,
    readFanout,
  };
}
