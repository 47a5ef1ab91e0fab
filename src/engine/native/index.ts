// The native engine: a facade over the napi-rs binding in native/ (generated
// by `napi build`, never edited by hand). It packs batches, maps the
// binding's "CODE: message" errors to EngineError, and fills in defaults.
import { bufferView } from '../../util/bytes.js';
import { checkMetaShape } from '../../record/codec.js';
import { createRequire } from 'node:module';
import {
  DEFAULT_LIMITS,
  EngineError,
  type ConflictMode,
  type CoordinateRequest,
  type DetachedCoordinateRequest,
  type Engine,
  type EngineErrorCode,
  type EngineLimits,
  type EngineOptions,
  type KeyRecord,
  type MergeRequest,
  type PartitionPage,
  type SegmentKey,
} from '../types.js';

// Types come from the .d.cts that `napi build` generates next to the loader.
type Binding = typeof import('../../../native/binding.cjs');
type NativeHandle = import('../../../native/binding.cjs').NativeEngine;

const require = createRequire(import.meta.url);

/** napi's Buffer arrays want Buffers: view other Uint8Arrays without copying. */
const asBuffer = bufferView;
let binding: Binding | undefined;

/** Loads the addon once; throws a clear error when it is missing. */
export function loadBinding(): Binding {
  if (!binding) {
    try {
      binding = require('../../../native/binding.cjs') as Binding;
    } catch (err) {
      throw new EngineError('INTERNAL', `native engine addon failed to load (run \`npm run build:native\`): ${(err as Error).message}`);
    }
  }
  return binding;
}

const CODES = new Set<EngineErrorCode>([
  'INVALID_ARGUMENT', 'KEY_TOO_LARGE', 'VALUE_TOO_LARGE', 'TOO_MANY_SIBLINGS', 'BAD_CONTEXT',
  'METADATA_TOO_LARGE', 'BAD_METADATA', 'CORRUPT_RECORD', 'CONFIG_MISMATCH', 'CLOSED', 'IO', 'INTERNAL',
]);

/** Turns a binding error into an EngineError with its stable code. */
function engineError(err: unknown): EngineError {
  if (err instanceof EngineError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const match = /^([A-Z_]+): ([\s\S]*)$/.exec(message);
  if (match && CODES.has(match[1] as EngineErrorCode)) return new EngineError(match[1] as EngineErrorCode, match[2]!);
  // napi-rs rejects wrong argument types itself, before our code runs.
  return new EngineError('INVALID_ARGUMENT', message);
}

function sync<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw engineError(err);
  }
}

async function later<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw engineError(err);
  }
}

// napi converts a JS number to u32 by truncating fractions and wrapping
// out-of-range values (2.5 -> 2, -1 -> 2^32-1, 2^32 -> 0), and the addon only
// sees a boolean for the mode. The facade checks these arguments first so that
// odd inputs fail with INVALID_ARGUMENT as in the pure engine.
function invalid(message: string): never {
  throw new EngineError('INVALID_ARGUMENT', message);
}

/** An integer in 0..max, or INVALID_ARGUMENT. */
function intArg(v: unknown, name: string, max = 0xffffffff): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) invalid(`${name} must be an integer in 0..${max}`);
  return v;
}

const optionalInt = (v: unknown, name: string, max?: number): number | undefined =>
  v === undefined ? undefined : intArg(v, name, max);

const isMode = (mode: unknown): mode is ConflictMode => mode === 'siblings' || mode === 'lww';
const BAD_MODE = "mode must be 'siblings' or 'lww'";

/**
 * A coordinate's attributes as the addon takes them: the content type (or
 * undefined) and the metadata as names and values alternating (or undefined).
 * Only the types are checked here; the engine checks and sorts the contents.
 */
function attributeArgs(req: Pick<CoordinateRequest, 'contentType' | 'meta'>): [string | undefined, string[] | undefined] {
  const ct = req.contentType ?? undefined;
  if (ct !== undefined && typeof ct !== 'string') invalid('contentType must be a string');
  const pairs = checkMetaShape(req.meta);
  return [ct, pairs.length === 0 ? undefined : pairs.flat()];
}

/** Packs `{u16 bucketLen, bucket, u32 keyLen, key}` for one batched crossing. */
export function packKeys(items: ReadonlyArray<{ bucket: Uint8Array; key: Uint8Array }>): Buffer {
  let size = 0;
  for (const { bucket, key } of items) size += 6 + bucket.length + key.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const { bucket, key } of items) {
    if (bucket.length > 0xffff || key.length > 0xffffffff) throw new EngineError('INVALID_ARGUMENT', 'bucket or key too long to pack');
    out.writeUInt16BE(bucket.length, at);
    out.set(bucket, at + 2);
    at += 2 + bucket.length;
    out.writeUInt32BE(key.length, at);
    out.set(key, at + 4);
    at += 4 + key.length;
  }
  return out;
}

export class NativeEngine implements Engine {
  readonly actor: string;
  readonly partitionBits: number;
  readonly treeBranchBits: number;
  readonly treeSegmentBits: number;
  readonly limits: EngineLimits;
  // Hashing is a module function in the addon; the facade keeps CLOSED uniform.
  private closed = false;

  private constructor(private readonly handle: NativeHandle) {
    this.actor = handle.actor;
    const [partitionBits, branchBits, segmentBits, maxKeyBytes, maxValueBytes, maxSiblings] = handle.settings() as [
      number, number, number, number, number, number,
    ];
    this.partitionBits = partitionBits;
    this.treeBranchBits = branchBits;
    this.treeSegmentBits = segmentBits;
    this.limits = { maxKeyBytes, maxValueBytes, maxSiblings };
  }

  static async open(options: EngineOptions): Promise<NativeEngine> {
    const path = options.path;
    if (!path) throw new EngineError('INVALID_ARGUMENT', 'the native engine needs a data directory (path)');
    const b = loadBinding();
    const limits = { ...DEFAULT_LIMITS, ...options.limits };
    // Only integer-ness and the type's range here; the engine checks the real ranges.
    // The upper bounds of flushEveryMs and cacheBytes are the pure engine's.
    const handle = await later(() =>
      b.openEngine({
        path,
        nodeId: options.nodeId,
        epoch: options.epoch,
        partitionBits: optionalInt(options.partitionBits, 'partitionBits'),
        treeBranchBits: optionalInt(options.treeBranchBits, 'treeBranchBits'),
        treeSegmentBits: optionalInt(options.treeSegmentBits, 'treeSegmentBits'),
        cacheBytes: optionalInt(options.cacheBytes, 'cacheBytes', Number.MAX_SAFE_INTEGER),
        flushEveryMs: optionalInt(options.flushEveryMs, 'flushEveryMs', 2 ** 31 - 1),
        maxKeyBytes: intArg(limits.maxKeyBytes, 'limits.maxKeyBytes'),
        maxValueBytes: intArg(limits.maxValueBytes, 'limits.maxValueBytes'),
        maxSiblings: intArg(limits.maxSiblings, 'limits.maxSiblings'),
      }),
    );
    return new NativeEngine(handle);
  }

  hashKey(bucket: Uint8Array, key: Uint8Array): bigint {
    this.checkOpen();
    return sync(() => loadBinding().hashKey(bucket, key));
  }

  hashKeys(items: ReadonlyArray<{ bucket: Uint8Array; key: Uint8Array }>): Buffer {
    this.checkOpen();
    return sync(() => loadBinding().hashKeys(packKeys(items)));
  }

  reconcile(records: ReadonlyArray<Uint8Array>, mode: ConflictMode): Buffer {
    if (!Array.isArray(records) || records.length === 0) invalid('reconcile needs at least one record');
    if (!isMode(mode)) invalid(BAD_MODE);
    if (!records.every((r) => r instanceof Uint8Array)) invalid('records must be Uint8Arrays');
    // One record is returned as it is: no crossing needed for the copy.
    if (records.length === 1) return Buffer.from(records[0]!);
    return sync(() => loadBinding().reconcile(records.map(asBuffer), mode === 'lww'));
  }

  coordinateDetached(req: DetachedCoordinateRequest): Buffer {
    // No storage, so no CLOSED (as reconcile). napi would truncate or coerce
    // odd arguments: their types are checked here, as in the pure engine.
    if (req === null || typeof req !== 'object') invalid('request must be an object');
    if (!Number.isSafeInteger(req.now) || req.now < 0) invalid('now must be an integer in 0..2^53-1');
    if (!isMode(req.mode)) invalid(BAD_MODE);
    if (!(req.actor instanceof Uint8Array)) invalid('actor must be a Uint8Array');
    if (req.value !== null && !(req.value instanceof Uint8Array)) invalid('value must be a Uint8Array');
    if (req.context != null && !(req.context instanceof Uint8Array)) invalid('context must be a Uint8Array');
    const [contentType, meta] = attributeArgs(req);
    const { context, actor, value, now, mode } = req;
    return sync(() => loadBinding().coordinateDetached(context ?? undefined, actor, value ?? undefined, now, mode === 'lww', contentType, meta, this.limits));
  }

  private checkOpen(): void {
    if (this.closed) throw new EngineError('CLOSED', 'engine is closed');
  }

  coordinate(req: CoordinateRequest): Promise<Buffer> {
    return later(async () => {
      // The pure engine checks the mode right after closed and now (both codes agree on now).
      this.checkOpen();
      if (!isMode(req.mode)) invalid(BAD_MODE);
      const [contentType, meta] = attributeArgs(req);
      return this.handle.coordinate(req.bucket, req.key, req.context, req.value, req.now, req.mode === 'lww', req.durable, contentType, meta);
    });
  }

  merge(req: MergeRequest): Promise<Buffer> {
    return later(async () => {
      if (!isMode(req.mode)) await this.badMode(req);
      return this.handle.merge(req.bucket, req.key, req.record, req.mode === 'lww', req.durable);
    });
  }

  /** Merge checks bucket and key before the mode: get() fails for those (and CLOSED) first. */
  private async badMode(req: MergeRequest): Promise<never> {
    await this.handle.get(req.bucket, req.key);
    invalid(BAD_MODE);
  }

  mergeMany(reqs: ReadonlyArray<MergeRequest>): Promise<Buffer[]> {
    return later(async () => {
      // Items before a bad mode still apply, as for any other failing item.
      const bad = reqs.findIndex((r) => !isMode(r.mode));
      if (bad >= 0) {
        await this.mergeMany(reqs.slice(0, bad));
        await this.badMode(reqs[bad]!);
      }
      return this.handle.mergeMany(
        reqs.map((r) => asBuffer(r.bucket)),
        reqs.map((r) => asBuffer(r.key)),
        reqs.map((r) => asBuffer(r.record)),
        reqs.map((r) => r.mode === 'lww'),
        reqs.some((r) => r.durable),
      );
    });
  }

  get(bucket: Uint8Array, key: Uint8Array): Promise<Buffer | null> {
    return later(() => this.handle.get(bucket, key));
  }

  getSync(bucket: Uint8Array, key: Uint8Array): Buffer | null {
    return sync(() => this.handle.getSync(bucket, key));
  }

  coordinateSync(req: Omit<CoordinateRequest, 'durable'>): Buffer {
    this.checkOpen();
    if (!isMode(req.mode)) invalid(BAD_MODE);
    const [contentType, meta] = attributeArgs(req);
    return sync(() => this.handle.coordinateSync(req.bucket, req.key, req.context, req.value, req.now, req.mode === 'lww', contentType, meta));
  }

  mergeSync(req: Omit<MergeRequest, 'durable'>): Buffer {
    if (!isMode(req.mode)) {
      // As merge(): bucket and key are checked before the mode.
      this.getSync(req.bucket, req.key);
      invalid(BAD_MODE);
    }
    return sync(() => this.handle.mergeSync(req.bucket, req.key, req.record, req.mode === 'lww'));
  }

  getMany(items: ReadonlyArray<{ bucket: Uint8Array; key: Uint8Array }>): Promise<Array<Buffer | null>> {
    return later(() => this.handle.getMany(items.map((i) => asBuffer(i.bucket)), items.map((i) => asBuffer(i.key))));
  }

  treeRoots(): Buffer {
    return sync(() => this.handle.treeRoots());
  }

  treeBranches(partition: number): Buffer {
    this.checkOpen();
    return sync(() => this.handle.treeBranches(intArg(partition, 'partition')));
  }

  treeSegments(partition: number, branch: number): Buffer {
    this.checkOpen();
    return sync(() => this.handle.treeSegments(intArg(partition, 'partition'), intArg(branch, 'branch')));
  }

  segmentKeys(partition: number, segments: ReadonlyArray<number>): Promise<SegmentKey[]> {
    return later(async () => {
      this.checkOpen();
      if (!Array.isArray(segments)) invalid('segments must be an array');
      return this.handle.segmentKeys(intArg(partition, 'partition'), segments.map((s) => intArg(s, 'segment')));
    });
  }

  scanPartition(partition: number, after: Uint8Array | null, limit: number): Promise<PartitionPage> {
    return later(async () => {
      this.checkOpen();
      // Integer-ness and the u32 range here; the engine checks the real ranges (and the cursor).
      const p = intArg(partition, 'partition');
      const n = intArg(limit, 'limit');
      if (after != null && !(after instanceof Uint8Array)) invalid('after must be a Uint8Array or null');
      const page = await this.handle.scanPartition(p, after ?? null, n);
      return { items: page.items, next: page.next ?? null };
    });
  }

  reap(bucket: Uint8Array, key: Uint8Array, record: Uint8Array): Promise<boolean> {
    return later(() => this.handle.reap(bucket, key, record));
  }

  dropPartition(partition: number): Promise<number> {
    return later(async () => {
      this.checkOpen();
      return this.handle.dropPartition(intArg(partition, 'partition'));
    });
  }

  hintPut(target: string, bucket: Uint8Array, key: Uint8Array, record: Uint8Array): Promise<Buffer> {
    return later(() => this.handle.hintPut(target, bucket, key, record));
  }

  hintList(target: string, limit: number): Promise<KeyRecord[]> {
    return later(async () => {
      this.checkOpen();
      // Any non-negative integer is a valid limit; the addon's u32 is far beyond any hint count.
      if (!Number.isInteger(limit) || limit < 0) invalid('limit must be a non-negative integer');
      return this.handle.hintList(target, Math.min(limit, 0xffffffff));
    });
  }

  hintDelete(target: string, bucket: Uint8Array, key: Uint8Array, record: Uint8Array): Promise<boolean> {
    return later(() => this.handle.hintDelete(target, bucket, key, record));
  }

  hintTargets(): Promise<string[]> {
    return later(() => this.handle.hintTargets());
  }

  metaGet(name: string): Promise<Buffer | null> {
    return later(() => this.handle.metaGet(name));
  }

  metaPut(name: string, value: Uint8Array): Promise<void> {
    return later(() => this.handle.metaPut(name, value));
  }

  flush(): Promise<void> {
    return later(() => this.handle.flush());
  }

  close(): Promise<void> {
    this.closed = true;
    return later(() => this.handle.close());
  }
}
