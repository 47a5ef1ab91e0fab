// The Engine interface: one contract, two implementations (native addon and
// pure TypeScript). Formats and semantics are specified in docs/engine.md.

import type { ConflictMode } from '../record/dvv.js';

export type { ConflictMode };

export interface EngineLimits {
  /** Longest key in bytes (default 1024, at most 65535). */
  maxKeyBytes: number;
  /** Longest value in bytes (default 1 MiB, at most 16 MiB). */
  maxValueBytes: number;
  /** Most siblings one object may hold (default 100). */
  maxSiblings: number;
}

export interface EngineOptions {
  /** Data directory (native). For the pure engine: optional log file directory; omitted = memory only. */
  path?: string;
  /** This node's id, `[A-Za-z0-9._-]{1,64}`. */
  nodeId: string;
  /** 16 lowercase hex digits. Only used when the data directory is created; random when omitted. */
  epoch?: string;
  /** log2 of the partition count Q (default 12). Fixed once the data directory exists. */
  partitionBits?: number;
  /** log2 of TicTac branches per partition (default 5). */
  treeBranchBits?: number;
  /** log2 of TicTac segments per branch (default 5). */
  treeSegmentBits?: number;
  /** Storage cache size in bytes (native: sled's cache; default 64 MiB). */
  cacheBytes?: number;
  /** Background flush interval in ms (default 500). */
  flushEveryMs?: number;
  limits?: Partial<EngineLimits>;
}

export interface CoordinateRequest {
  bucket: Uint8Array;
  key: Uint8Array;
  /** The client's causal context (encoded), or null/empty for a blind write. */
  context: Uint8Array | null;
  /** The new value, or null for a delete (tombstone). */
  value: Uint8Array | null;
  /** The new sibling's content type (printable ASCII, 1..=255 bytes); absent = application/octet-stream. Ignored for a delete. */
  contentType?: string;
  /**
   * The new sibling's user metadata as [name, value] pairs in any order (the
   * engine sorts them): names a lower-case HTTP token of 1..=64 bytes, values
   * printable ASCII, at most 32 entries and 8192 bytes in all (docs/engine.md).
   * Over a limit: METADATA_TOO_LARGE; malformed: BAD_METADATA. Ignored for a delete.
   */
  meta?: ReadonlyArray<readonly [string, string]>;
  /** Wall-clock time in ms for the new sibling's timestamp (the caller owns the clock). */
  now: number;
  mode: ConflictMode;
  /** Acknowledge only after a flush to disk. */
  durable: boolean;
}

/**
 * A new version made in memory under a given actor (coordinateDetached): the
 * fallback coordinator's write under a one-off actor (docs/cluster.md "The
 * fallback's dot"). No bucket or key: nothing is read or stored.
 */
export interface DetachedCoordinateRequest {
  /** The client's causal context (encoded), or null/empty for a blind write. */
  context: Uint8Array | null;
  /** The actor the new dot is issued under: 1..=255 bytes. */
  actor: Uint8Array;
  /** The new value, or null for a delete (tombstone). */
  value: Uint8Array | null;
  /** As in CoordinateRequest (checked and sorted by the engine; ignored for a delete). */
  contentType?: string;
  meta?: ReadonlyArray<readonly [string, string]>;
  /** Wall-clock time in ms for the new sibling's timestamp. */
  now: number;
  mode: ConflictMode;
}

export interface MergeRequest {
  bucket: Uint8Array;
  key: Uint8Array;
  /** An encoded object record from another replica. */
  record: Uint8Array;
  mode: ConflictMode;
  durable: boolean;
}

export interface KeyRecord {
  bucket: Buffer;
  key: Buffer;
  record: Buffer;
}

/** One page of `scanPartition`. */
export interface PartitionPage {
  /** Objects in disk-key order. */
  items: KeyRecord[];
  /** Cursor for the next page (the last item's disk key), or null once the partition is exhausted. */
  next: Buffer | null;
}

/** Most items one `scanPartition` page may ask for. */
export const MAX_SCAN_LIMIT = 10_000;

export interface SegmentKey {
  bucket: Buffer;
  key: Buffer;
  /** The object's leaf hash, 8 bytes big-endian. */
  hash: Buffer;
}

export interface Engine {
  /** `nodeId:epoch` — the actor this engine writes dots as. */
  readonly actor: string;
  readonly partitionBits: number;
  readonly treeBranchBits: number;
  readonly treeSegmentBits: number;
  readonly limits: EngineLimits;

  /** Ring position of one object (u64). */
  hashKey(bucket: Uint8Array, key: Uint8Array): bigint;
  /** Ring positions of many objects: 8 bytes big-endian each, in order. */
  hashKeys(items: ReadonlyArray<{ bucket: Uint8Array; key: Uint8Array }>): Buffer;

  coordinate(req: CoordinateRequest): Promise<Buffer>;
  merge(req: MergeRequest): Promise<Buffer>;
  /** Merge many records in one call; results in order (a failed item rejects the whole batch after earlier items applied). */
  mergeMany(reqs: ReadonlyArray<MergeRequest>): Promise<Buffer[]>;
  get(bucket: Uint8Array, key: Uint8Array): Promise<Buffer | null>;
  /**
   * The synchronous forms run on the calling thread and never wait for disk
   * (no `durable`): the request path uses them because an in-memory read or
   * apply costs about a microsecond, less than a hop to a worker thread.
   * Same semantics and errors (thrown) as the asynchronous forms.
   */
  getSync(bucket: Uint8Array, key: Uint8Array): Buffer | null;
  coordinateSync(req: Omit<CoordinateRequest, 'durable'>): Buffer;
  mergeSync(req: Omit<MergeRequest, 'durable'>): Buffer;
  getMany(items: ReadonlyArray<{ bucket: Uint8Array; key: Uint8Array }>): Promise<Array<Buffer | null>>;
  /**
   * Records of one key merged in memory the way merging them into one
   * replica stores them (a fold of sync, each step finished in `mode`,
   * bounded by the encoding only), so a coordinator's answer runs the
   * replicas' code. One record comes back as a copy, unread. No storage:
   * works on a closed engine too. INVALID_ARGUMENT for no records,
   * CORRUPT_RECORD for a bad record or records of which no sibling survives.
   */
  reconcile(records: ReadonlyArray<Uint8Array>, mode: ConflictMode): Buffer;

  /**
   * The record `coordinate` would store for a key with no stored record,
   * with `req.actor` instead of this engine's actor making the dot, built in
   * memory and returned, not stored: a fallback coordinator's version under a
   * one-off actor, made by the code replicas merge with. The engine's limits
   * apply (maxValueBytes, maxSiblings). Checks, first failure wins: argument
   * types (INVALID_ARGUMENT), now, the actor's length (1..=255 bytes), the
   * value (VALUE_TOO_LARGE), the attributes, the context (BAD_CONTEXT, also
   * when it is full: 1024 actors with the new one). Works on a closed engine.
   */
  coordinateDetached(req: DetachedCoordinateRequest): Buffer;

  /** Q roots, 8 bytes each. */
  treeRoots(): Buffer;
  treeBranches(partition: number): Buffer;
  treeSegments(partition: number, branch: number): Buffer;
  segmentKeys(partition: number, segments: ReadonlyArray<number>): Promise<SegmentKey[]>;

  /**
   * Objects of one partition in disk-key order, strictly after the cursor `after`
   * (a disk key of this partition, e.g. a persisted `next`; null = from the start),
   * at most `limit` (1..10000). The unit of partition transfer.
   */
  scanPartition(partition: number, after: Uint8Array | null, limit: number): Promise<PartitionPage>;
  /**
   * Tombstone reaping: deletes the object only if it is still byte-identical to `record`,
   * whose siblings must all be tombstones (else INVALID_ARGUMENT). Durable when it returns true.
   */
  reap(bucket: Uint8Array, key: Uint8Array, record: Uint8Array): Promise<boolean>;

  /**
   * Deletes every object of one partition (tombstones too; hints and
   * metadata stay), flushes, and closes the engine without the clean mark,
   * so the next open is a new actor (docs/engine.md "dropPartition");
   * resolves with how many. For a known-bad replica on a stopped node, which
   * anti-entropy or `ringkv repair` then refills; and for tests.
   */
  dropPartition(partition: number): Promise<number>;

  hintPut(target: string, bucket: Uint8Array, key: Uint8Array, record: Uint8Array): Promise<Buffer>;
  hintList(target: string, limit: number): Promise<KeyRecord[]>;
  hintDelete(target: string, bucket: Uint8Array, key: Uint8Array, record: Uint8Array): Promise<boolean>;
  hintTargets(): Promise<string[]>;

  metaGet(name: string): Promise<Buffer | null>;
  metaPut(name: string, value: Uint8Array): Promise<void>;

  /** Flush all writes to disk. */
  flush(): Promise<void>;
  /** Flush and release the storage; later calls fail with CLOSED. */
  close(): Promise<void>;
}

export { EngineError, type EngineErrorCode } from '../record/errors.js';

/**
 * Q = 2^12 = 4096: the smallest power of two whose claim reaches Dynamo's
 * ~0.99 load-balancing efficiency at 30 nodes (docs/cluster.md). The trees
 * shrink to match: 2^(5+5) segments × 8 B = 8 KiB per partition, 32 MiB for a
 * node holding all 4096, and the same 2^22 segments over the whole ring as
 * the former 64 partitions × 2^16.
 */
export const DEFAULT_PARTITION_BITS = 12;
export const DEFAULT_TREE_BRANCH_BITS = 5;
export const DEFAULT_TREE_SEGMENT_BITS = 5;

export const DEFAULT_LIMITS: EngineLimits = {
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
  maxSiblings: 100,
};

export const HARD_LIMITS: EngineLimits = {
  maxKeyBytes: 65535,
  maxValueBytes: 16 * 1024 * 1024,
  maxSiblings: 65535,
};
