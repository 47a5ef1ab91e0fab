// Errors the node returns to its callers (the HTTP layer maps each code to a
// status): the caller's fault is 4xx, the cluster's is 503.

export type NodeErrorCode =
  | 'BAD_REQUEST'
  | 'INVALID_BUCKET_PROPS'
  | 'KEY_TOO_LARGE'
  | 'VALUE_TOO_LARGE'
  | 'BAD_CONTEXT'
  | 'TOO_MANY_SIBLINGS'
  | 'QUORUM_FAILED'
  | 'TIMEOUT'
  | 'UNAVAILABLE'
  | 'CLUSTER_MISMATCH'
  | 'INTERNAL';

export class NodeError extends Error {
  constructor(
    readonly code: NodeErrorCode,
    message: string,
    /** Extra fields for the JSON error body. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'NodeError';
  }
}

const CLIENT_CODES = new Set(['KEY_TOO_LARGE', 'VALUE_TOO_LARGE', 'BAD_CONTEXT', 'TOO_MANY_SIBLINGS', 'INVALID_BUCKET_PROPS']);

/** Maps an engine or remote error code to a node error, keeping the caller's-fault codes. */
export function nodeErrorFrom(code: string | undefined, message: string): NodeError {
  if (code && CLIENT_CODES.has(code)) return new NodeError(code as NodeErrorCode, message);
  if (code === 'INVALID_ARGUMENT' || code === 'BAD_REQUEST') return new NodeError('BAD_REQUEST', message);
  if (code === 'QUORUM_FAILED' || code === 'TIMEOUT' || code === 'UNAVAILABLE') return new NodeError(code, message);
  return new NodeError('INTERNAL', message);
}
