// What background services (handoff, anti-entropy, transfers, sets, the
// foreground-load check) may use of the node they run beside: a narrow
// interface, so a service depends on these members and not on RingkvNode
// (etcd raft's Storage, a core that sees only what it needs). Each service
// takes a Pick of it naming exactly what it uses.
import type { BucketProps, ClusterState } from '../core/membership.js';
import type { QuorumRequest } from '../core/quorum.js';
import type { DecodedRecord } from '../record/index.js';
import type { Engine } from '../engine/types.js';
import type { Clock } from '../transport/types.js';
import type { PeerMessageType, PeerReply, PeerRequestBody, ServiceHandlers, ServiceMessageType } from './messages.js';
import type { NodeMetrics } from './metrics.js';
import type { PutResult } from './put-driver.js';

/** A client request's quorum options (src/core/quorum.ts). */
export type RequestOptions = QuorumRequest;

/** A client read's outcome (RingkvNode.get). */
export interface GetResult {
  /** The reconciled record (null: no replica has the key). */
  record: Buffer | null;
  /** `record` decoded (once, here, so callers need not decode it again). */
  decoded: DecodedRecord | null;
  /** Replicas that answered before the reply. */
  answered: number;
}

export interface ServiceContext {
  readonly id: string;
  readonly metrics: NodeMetrics;
  /** The engine as services see it: merges go through the reap floors and key gates. */
  readonly engine: Engine;
  readonly clock: Clock;
  readonly clusterState: ClusterState;
  readonly hasJoined: boolean;
  bucketProps(bucket: string): BucketProps;
  /** The preference list of a partition for `n` replicas (primaries, then fallbacks). */
  preferenceListOf(partition: number, n: number): { primaries: string[]; fallbacks: string[] };
  isSuspected(node: string): boolean;
  /**
   * A request to a member, with the node's suspicion bookkeeping: the body as
   * its type defines it (src/node/messages.ts), the reply checked (a
   * malformed one rejects).
   */
  peerRequest<T extends PeerMessageType>(node: string, type: T, body: PeerRequestBody<T>, timeoutMs: number): Promise<PeerReply<T>>;
  /** Serves the given message types with these handlers (each gets its body decoded; a type is served by one service). */
  registerService<T extends ServiceMessageType>(handlers: ServiceHandlers<T>): void;
  /** Calls `listener` synchronously every time the node adopts a different ring. */
  onRingChange(listener: () => void): void;
  /** Installs the check of which partitions the node is still receiving (transfer.ts), for keys of a bucket with `n` replicas (no n: any bucket). */
  setReceiving(check: (partition: number, n?: number) => readonly string[] | null): void;
}

/** The node's client operations, for a service that reads and writes through quorums (sets.ts). */
export interface ClientOperations {
  get(bucket: Buffer, key: Buffer, req?: RequestOptions): Promise<GetResult>;
  put(bucket: Buffer, key: Buffer, context: Buffer | null, value: Buffer | null, req?: RequestOptions): Promise<PutResult>;
}
