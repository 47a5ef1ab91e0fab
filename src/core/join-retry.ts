// How loudly a failed join attempt is logged. Nodes started together (`npm
// start`, a StatefulSet) race each other: a seed that is not listening yet is
// normal for the first seconds, and one warning per gossip round would bury
// the log. So a failure is a debug line until the node has failed to join for
// `quietMs`, then one warning, then at most one warning per `warnEveryMs`
// (the rest debug), until a join succeeds.

export interface JoinRetryPolicy {
  /** Failures stay at debug level this long after the first one (default 30 s). */
  quietMs: number;
  /** After that, at most one warning this often (default 60 s). */
  warnEveryMs: number;
}

export const DEFAULT_JOIN_RETRY_POLICY: JoinRetryPolicy = { quietMs: 30_000, warnEveryMs: 60_000 };

export interface JoinRetryState {
  /** When the failures in a row began (ms), or null after a success. */
  failingSinceMs: number | null;
  /** When the last warning was logged (ms), or null. */
  lastWarnMs: number | null;
}

export const JOIN_RETRY_START: JoinRetryState = { failingSinceMs: null, lastWarnMs: null };

/** A failed attempt at `nowMs`: the level to log it at, how long joins have failed, and the next state. */
export function onJoinFailure(
  state: JoinRetryState,
  nowMs: number,
  policy: JoinRetryPolicy = DEFAULT_JOIN_RETRY_POLICY,
): { level: 'debug' | 'warn'; failingForMs: number; state: JoinRetryState } {
  const since = state.failingSinceMs ?? nowMs;
  const failingForMs = nowMs - since;
  const warn = failingForMs >= policy.quietMs && (state.lastWarnMs === null || nowMs - state.lastWarnMs >= policy.warnEveryMs);
  return { level: warn ? 'warn' : 'debug', failingForMs, state: { failingSinceMs: since, lastWarnMs: warn ? nowMs : state.lastWarnMs } };
}

/** A join succeeded: the next failures start quiet again. */
export function onJoinSuccess(): JoinRetryState {
  return JOIN_RETRY_START;
}
