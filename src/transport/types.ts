// The transport contract the node runtime is written against, plus the
// clock abstraction shared by the real runtime and the simulator.

/**
 * Handles one inbound peer request or notification. `from` is the sender's
 * node id (from its hello frame in the real transport). The returned value
 * (or the resolved value of a returned promise) is the response body;
 * anything thrown goes back to the requester as a TransportError 'REMOTE'
 * carrying the error's message (and its string `code`, as `remoteCode`).
 * For notifications the result is ignored.
 */
export type PeerHandler = (from: string, type: string, body: unknown) => Promise<unknown> | unknown;

/**
 * The id to use for a peer known only by its address (a seed, when joining):
 * whichever node answers there is accepted.
 */
export const ANY_PEER = '*';

/** Where a peer is: its node id and its address (`host:port`; in the simulator, the node id). */
export interface PeerRef {
  id: string;
  address: string;
}

/**
 * Peer messaging. Bodies are msgpack-able plain data: null/undefined,
 * booleans, numbers, bigints (64-bit), strings, arrays, plain objects,
 * Dates and binary. Binary (Buffer or any Uint8Array) always ARRIVES AS A
 * Node `Buffer` (which is a Uint8Array), possibly a view sharing memory with
 * the received frame. Maps arrive as plain objects and Sets as arrays, so
 * do not send them.
 */
export interface Transport {
  /** This node's id. */
  readonly self: string;
  /**
   * Request/response to a peer at an address; rejects with TransportError
   * code 'TIMEOUT' | 'UNREACHABLE' | 'REFUSED' | 'REMOTE' | 'OVERLOADED' | 'CLOSED'.
   * (A body that cannot be encoded rejects with the encoder's error: that
   * is a programming error, not a network condition.)
   */
  request(to: PeerRef, type: string, body: unknown, timeoutMs: number): Promise<unknown>;
  /** Fire and forget (gossip); never throws. */
  notify(to: PeerRef, type: string, body: unknown): void;
  /** Sets the one handler (a later call replaces it). Its thrown errors go back as 'REMOTE' with message. */
  onRequest(handler: PeerHandler): void;
  /** Fails pending requests with 'CLOSED', closes connections; later requests reject with 'CLOSED'. */
  close(): Promise<void>;
  /**
   * What an address of this transport is: the problem with `address`, or
   * null. Members from the network are checked with it. Absent: `host:port`
   * (hostPortProblem in src/core/membership.ts).
   */
  readonly addressProblem?: (address: string) => string | null;
}

/** REFUSED: the peer's endpoint closed the connection before its handshake as a policy violation (WebSocket 1008: wrong cluster, bad credentials); never sent. */
export type TransportErrorCode = 'TIMEOUT' | 'UNREACHABLE' | 'REFUSED' | 'REMOTE' | 'OVERLOADED' | 'CLOSED';

export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    readonly code: TransportErrorCode,
    message: string,
    /** The peer id the request was for, when known. */
    readonly peer?: string,
    /** For 'REMOTE': the `code` property of the error the remote handler threw, if it was a string. */
    readonly remoteCode?: string,
    /**
     * True when the request is known never to have left this node (backoff,
     * local overload, a connection that failed before its handshake): the
     * peer cannot have acted on it, so a caller may safely try elsewhere.
     */
    readonly unsent = false,
  ) {
    super(message);
  }
}

export function isTransportError(e: unknown, code?: TransportErrorCode): e is TransportError {
  return e instanceof TransportError && (code === undefined || e.code === code);
}

/** A cancellable one-shot timer. Cancelling twice or after firing is a no-op. */
export interface Timer {
  cancel(): void;
}

/**
 * Time and timers for the runtime. `now()` is in milliseconds; the real
 * clock's is wall-clock epoch time (Date.now()), the simulator's is virtual
 * time starting where the network was told to start (default 0).
 */
export interface Clock {
  now(): number;
  setTimer(ms: number, fn: () => void): Timer;
}

/**
 * Longest delay setTimeout keeps (2^31 - 1 ms, ~24.8 days): Node fires a
 * longer one after 1 ms (TimeoutOverflowWarning), so an interval configured
 * as "practically never" (1e9 ms) would run constantly.
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** The real clock: Date.now() and setTimeout. A delay past MAX_TIMEOUT_MS waits in steps; an infinite one never fires. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms: number, fn: () => void): Timer {
    if (ms === Infinity) return { cancel: () => undefined };
    let t: ReturnType<typeof setTimeout>;
    const arm = (delay: number) => {
      t = delay > MAX_TIMEOUT_MS ? setTimeout(() => arm(delay - MAX_TIMEOUT_MS), MAX_TIMEOUT_MS) : setTimeout(fn, delay);
    };
    arm(Number.isFinite(ms) && ms > 0 ? ms : 0);
    return { cancel: () => clearTimeout(t) };
  },
};

/** An error's message for a log or a reply (a thrown non-Error as its string). */
export function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
