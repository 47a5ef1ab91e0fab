// Vocabulary shared by the pure protocol modules: node ids, their order, and
// the invariant check every module uses to fail loudly instead of drifting.

/** A node id as chosen by the operator: `[A-Za-z0-9._-]{1,64}`. */
export type NodeId = string;

const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;

export function isNodeId(value: unknown): value is NodeId {
  return typeof value === 'string' && NODE_ID.test(value);
}

/**
 * The one order on node ids used everywhere (claimant choice, tie-breaks).
 * Plain code-unit order, not locale order: every node must agree on it.
 */
export function compareIds(a: NodeId, b: NodeId): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A broken invariant: a bug or corrupt input, never an expected outcome. */
export class InvariantError extends Error {
  readonly code = 'INVARIANT';
  constructor(message: string) {
    super(message);
    this.name = 'InvariantError';
  }
}

export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new InvariantError(typeof message === 'string' ? message : message());
}
