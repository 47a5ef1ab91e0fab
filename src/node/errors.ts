// Errors the node returns to its callers (the HTTP layer maps each code to a
// status): the caller's fault is 4xx, the cluster's is 503.
import { EngineError } from '../engine/types.js';
import { isTransportError } from '../transport/types.js';

export type NodeErrorCode =
  | 'BAD_REQUEST'
  | 'INVALID_BUCKET_PROPS'
  | 'KEY_TOO_LARGE'
  | 'VALUE_TOO_LARGE'
  | 'BAD_CONTEXT'
  | 'METADATA_TOO_LARGE'
  | 'BAD_METADATA'
  | 'TOO_MANY_SIBLINGS'
  | 'QUORUM_FAILED'
  | 'TIMEOUT'
  | 'UNAVAILABLE'
  | 'CLUSTER_MISMATCH'
  | 'UNKNOWN_MEMBER'
  | 'FORCE_REQUIRED'
  | 'NODE_DRAINING'
  | 'INTERNAL';

export class NodeError extends Error {
  constructor(
    readonly code: NodeErrorCode,
    message: string,
    /** Extra fields for the JSON error body. */
    readonly details: Record<string, unknown> = {},
    /** The engine's or the remote node's code this error was mapped from (nodeErrorFrom), if any. */
    readonly sourceCode?: string,
  ) {
    super(message);
    this.name = 'NodeError';
  }
}

const CLIENT_CODES = new Set(['KEY_TOO_LARGE', 'VALUE_TOO_LARGE', 'BAD_CONTEXT', 'METADATA_TOO_LARGE', 'BAD_METADATA', 'TOO_MANY_SIBLINGS', 'INVALID_BUCKET_PROPS']);

/** Maps an engine or remote error code to a node error, keeping the caller's-fault codes. */
export function nodeErrorFrom(code: string | undefined, message: string): NodeError {
  if (code && CLIENT_CODES.has(code)) return new NodeError(code as NodeErrorCode, message, {}, code);
  if (code === 'INVALID_ARGUMENT' || code === 'BAD_REQUEST') return new NodeError('BAD_REQUEST', message, {}, code);
  if (code === 'QUORUM_FAILED' || code === 'TIMEOUT' || code === 'UNAVAILABLE') return new NodeError(code, message, {}, code);
  return new NodeError('INTERNAL', message, {}, code);
}

/**
 * The error a peer gets for a request this node refused or failed (the
 * answer's remote code is its `code`): typed errors as they are; an
 * engine's refusal of the request's contents — an argument it rejects
 * (INVALID_ARGUMENT: an empty key, a 0x00 in a bucket) or a record that does
 * not decode (CORRUPT_RECORD) — is the peer's fault, BAD_REQUEST. (The
 * engine does not say whether a corrupt record was the one sent or the one
 * stored; a stored one still answers INTERNAL on the client paths.)
 */
export function peerErrorFrom(err: unknown): unknown {
  const code = err instanceof NodeError ? (err.sourceCode ?? err.code) : (err as { code?: unknown } | null)?.code;
  if (code === 'CORRUPT_RECORD' || code === 'INVALID_ARGUMENT') return new NodeError('BAD_REQUEST', (err as Error).message, {}, code);
  return err;
}

/** The code of any error a request can fail with (metrics, the read state machine's failures). */
export function errorCode(err: unknown): string {
  if (err instanceof NodeError || err instanceof EngineError) return err.code;
  if (isTransportError(err)) return err.code;
  return 'INTERNAL';
}

/** The engine or the transport was closed under an operation (the node is stopping): not worth a warning. */
export function isClosedError(err: unknown): boolean {
  return (err instanceof EngineError && err.code === 'CLOSED') || isTransportError(err, 'CLOSED');
}
