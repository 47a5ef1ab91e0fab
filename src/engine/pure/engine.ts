// PureEngine: the TypeScript twin of crates/engine (docs/engine.md).
//
// Atomicity: every read-modify-write of one key runs synchronously (no await
// between reading the stored record and storing the new one), so the single JS
// thread makes it atomic; only the durability wait comes after.
//
// Simulated storage (test/sim): PureEngine.open(options, { disk, clock })
// keeps its durable layer in a SimDisk (store.ts, "Storage model") and runs
// the periodic flush on the simulator's clock; crash() then loses every write
// not yet flushed. The native engine and a PureEngine opened without `sim`
// are unaffected.
import { randomBytes } from 'node:crypto';
import {
  DEFAULT_LIMITS,
  EngineError,
  HARD_LIMITS,
  MAX_SCAN_LIMIT,
  type ConflictMode,
  type CoordinateRequest,
  type DetachedCoordinateRequest,
  type Engine,
  type EngineLimits,
  type EngineOptions,
  type KeyRecord,
  type MergeRequest,
  type PartitionPage,
  type SegmentKey,
  DEFAULT_PARTITION_BITS,
  DEFAULT_TREE_BRANCH_BITS,
  DEFAULT_TREE_SEGMENT_BITS,
} from '../types.js';
import { canonicalAttributes, checkMetaShape, decodeContext, decodeRecord, encodeRecord, type DecodedRecord } from '../../record/codec.js';
import { coordinateDetached, finish, sync, update } from '../../record/dvv.js';
import { reconcile } from '../../record/reconcile.js';
import {
  Layout,
  diskKey,
  makeBkey,
  position,
  positionBytes,
  splitBkey,
  u64be,
  validateBucket,
  validateEpoch,
  validateKey,
  validateNodeId,
} from '../../record/keys.js';
import { bufferView } from '../../util/bytes.js';
import { SimDisk, Store, TREE_HINTS, TREE_META, TREE_OBJECTS, prefixEnd } from './store.js';
import { TicTacTrees, leafHash } from './tictac.js';

export const META_NODE_ID = 'engine.nodeId';
export const META_EPOCH = 'engine.epoch';
/** Present (flushed) only while the engine is closed cleanly; see nextEpoch. */
export const META_CLEAN = 'engine.cleanShutdown';

/**
 * The epoch after an unclean shutdown: the old one plus 1 (mod 2^64, as 16
 * hex digits). A crash can lose the tail of the log, and with it the key
 * counters of dots this actor already issued to other replicas; issuing them
 * again under the same actor would give two values one dot (replicas that
 * never converge, an acknowledged write lost). A new actor cannot collide:
 * the new epoch is flushed before any dot under it (Riak's vnode ids do the
 * same after an unclean shutdown).
 */
export function nextEpoch(epoch: string): string {
  return ((BigInt(`0x${epoch}`) + 1n) & 0xffffffffffffffffn).toString(16).padStart(16, '0');
}
export const META_PARTITION_BITS = 'engine.partitionBits';
export const META_BRANCH_BITS = 'engine.treeBranchBits';
export const META_SEGMENT_BITS = 'engine.treeSegmentBits';
const RESERVED_META_PREFIX = 'engine.';

/** Timers on virtual time (structurally the transport's Clock). */
export interface SimClock {
  setTimer(ms: number, fn: () => void): { cancel(): void };
}

/** Simulated storage for PureEngine.open (see the storage model in store.ts). */
export interface SimStorage {
  /** The durable layer; give the same disk to the engine reopened after crash(). */
  disk: SimDisk;
  /** Runs the periodic flush every flushEveryMs of virtual time; without it, only explicit and durable flushes. */
  clock?: SimClock;
  /**
   * A deliberately BROKEN durable path, only for the test that shows the
   * simulator catches it: durable coordinate/merge/mergeMany resolve without
   * flushing (the write waits for the periodic flush like any other).
   */
  ackDurableBeforeFlush?: boolean;
}

interface Config {
  path: string | undefined;
  nodeId: string;
  epoch: string | undefined;
  partitionBits: number;
  treeBranchBits: number;
  treeSegmentBits: number;
  flushEveryMs: number;
  limits: EngineLimits;
}

function invalid(msg: string): never {
  throw new EngineError('INVALID_ARGUMENT', msg);
}

function intOption(v: unknown, name: string, min: number, max: number, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    invalid(`${name} must be an integer in ${min}..${max}`);
  }
  return v;
}

function validateOptions(o: EngineOptions): Config {
  if (o === null || typeof o !== 'object') invalid('options must be an object');
  if (o.path !== undefined && (typeof o.path !== 'string' || o.path.length === 0)) invalid('path must be a non-empty string');
  const nodeId = validateNodeId(o.nodeId);
  const epoch = o.epoch === undefined ? undefined : validateEpoch(o.epoch);
  const partitionBits = intOption(o.partitionBits, 'partitionBits', 1, 16, DEFAULT_PARTITION_BITS);
  const treeBranchBits = intOption(o.treeBranchBits, 'treeBranchBits', 1, 12, DEFAULT_TREE_BRANCH_BITS);
  const treeSegmentBits = intOption(o.treeSegmentBits, 'treeSegmentBits', 1, 12, DEFAULT_TREE_SEGMENT_BITS);
  if (partitionBits + treeBranchBits + treeSegmentBits > 32) {
    invalid('partitionBits + treeBranchBits + treeSegmentBits must be <= 32');
  }
  intOption(o.cacheBytes, 'cacheBytes', 0, Number.MAX_SAFE_INTEGER, 0); // unused by the pure engine
  // 0 disables the background flush (as in the native engine).
  const flushEveryMs = intOption(o.flushEveryMs, 'flushEveryMs', 0, 2 ** 31 - 1, 500);
  const l = o.limits ?? {};
  if (l === null || typeof l !== 'object') invalid('limits must be an object');
  const limits: EngineLimits = {
    maxKeyBytes: intOption(l.maxKeyBytes, 'limits.maxKeyBytes', 1, HARD_LIMITS.maxKeyBytes, DEFAULT_LIMITS.maxKeyBytes),
    maxValueBytes: intOption(l.maxValueBytes, 'limits.maxValueBytes', 0, HARD_LIMITS.maxValueBytes, DEFAULT_LIMITS.maxValueBytes),
    maxSiblings: intOption(l.maxSiblings, 'limits.maxSiblings', 1, HARD_LIMITS.maxSiblings, DEFAULT_LIMITS.maxSiblings),
  };
  return { path: o.path, nodeId, epoch, partitionBits, treeBranchBits, treeSegmentBits, flushEveryMs, limits };
}

function validateMode(mode: unknown): ConflictMode {
  if (mode !== 'siblings' && mode !== 'lww') invalid("mode must be 'siblings' or 'lww'");
  return mode;
}

function bytesArg(v: unknown, what: string): Buffer {
  if (!(v instanceof Uint8Array)) invalid(`${what} must be a Uint8Array`);
  return bufferView(v);
}

function metaName(name: unknown): Buffer {
  if (typeof name !== 'string') invalid('meta name must be a string');
  const b = Buffer.from(name, 'utf8');
  if (b.length < 1 || b.length > 255) invalid('meta name must be 1..255 bytes');
  return b;
}

/** Hint store key = u8 targetLen ‖ target ‖ disk key. */
function hintPrefix(target: string): Buffer {
  const t = Buffer.from(target, 'utf8');
  const out = Buffer.allocUnsafe(1 + t.length);
  out[0] = t.length;
  t.copy(out, 1);
  return out;
}

export class PureEngine implements Engine {
  readonly actor: string;
  readonly nodeId: string;
  readonly epoch: string;
  readonly partitionBits: number;
  readonly treeBranchBits: number;
  readonly treeSegmentBits: number;
  readonly limits: EngineLimits;

  private readonly me: Buffer;
  private readonly layout: Layout;
  private readonly trees: TicTacTrees;
  private closed = false;
  private readonly timer: NodeJS.Timeout | undefined;
  private simTimer: { cancel(): void } | undefined;
  private readonly ackDurableBeforeFlush: boolean;

  private constructor(
    private readonly store: Store,
    cfg: Config,
    epoch: string,
    sim: SimStorage | undefined,
  ) {
    this.nodeId = cfg.nodeId;
    this.epoch = epoch;
    this.actor = `${cfg.nodeId}:${epoch}`;
    this.me = Buffer.from(this.actor, 'utf8');
    this.partitionBits = cfg.partitionBits;
    this.treeBranchBits = cfg.treeBranchBits;
    this.treeSegmentBits = cfg.treeSegmentBits;
    this.limits = Object.freeze({ ...cfg.limits });
    this.layout = new Layout(cfg.partitionBits, cfg.treeBranchBits, cfg.treeSegmentBits);
    this.trees = new TicTacTrees(this.layout);
    this.ackDurableBeforeFlush = sim?.ackDurableBeforeFlush === true;
    if (sim) {
      const clock = sim.clock;
      if (clock && cfg.flushEveryMs > 0) {
        const tick = (): void => {
          if (this.closed) return;
          if (store.hasPending()) store.flush().catch(() => undefined);
          this.simTimer = clock.setTimer(cfg.flushEveryMs, tick);
        };
        this.simTimer = clock.setTimer(cfg.flushEveryMs, tick);
      }
    } else if (store.persistent && cfg.flushEveryMs > 0) {
      this.timer = setInterval(() => {
        if (store.hasPending()) store.flush().catch(() => undefined); // the failure resurfaces on the next write
      }, cfg.flushEveryMs);
      this.timer.unref();
    }
  }

  /** `sim`: simulated storage instead of memory or a file (test/sim only). */
  static async open(options: EngineOptions, sim?: SimStorage): Promise<PureEngine> {
    const cfg = validateOptions(options);
    if (sim !== undefined && (!(sim.disk instanceof SimDisk) || cfg.path !== undefined)) invalid('sim needs a SimDisk and no path');
    const store = sim ? Store.openSim(sim.disk) : await Store.open(cfg.path);
    try {
      const epoch = PureEngine.initMeta(store, cfg);
      await store.flush();
      const engine = new PureEngine(store, cfg, epoch, sim);
      engine.rebuildTrees();
      return engine;
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Check or create the engine's own meta entries; returns the epoch.
   * nodeId and epoch are UTF-8 strings, the bit counts one byte each (as in the native engine).
   */
  private static initMeta(store: Store, cfg: Config): string {
    const get = (name: string) => store.get(TREE_META, Buffer.from(name));
    const put = (name: string, value: Buffer) => store.put(TREE_META, Buffer.from(name), value);
    const byte = (n: number) => Buffer.from([n]);
    const storedNode = get(META_NODE_ID);
    let epoch: string;
    if (storedNode === undefined) {
      epoch = cfg.epoch ?? randomBytes(8).toString('hex');
      put(META_NODE_ID, Buffer.from(cfg.nodeId, 'utf8'));
      put(META_EPOCH, Buffer.from(epoch, 'utf8'));
      put(META_PARTITION_BITS, byte(cfg.partitionBits));
    } else {
      if (!storedNode.equals(Buffer.from(cfg.nodeId, 'utf8'))) {
        throw new EngineError('CONFIG_MISMATCH', `data directory belongs to nodeId ${JSON.stringify(storedNode.toString())}`);
      }
      const storedBits = get(META_PARTITION_BITS);
      if (storedBits === undefined || !storedBits.equals(byte(cfg.partitionBits))) {
        throw new EngineError('CONFIG_MISMATCH', `data directory was created with partitionBits ${storedBits?.[0]}`);
      }
      const e = get(META_EPOCH)?.toString('utf8');
      if (e === undefined || !/^[0-9a-f]{16}$/.test(e)) {
        throw new EngineError('CORRUPT_RECORD', 'stored engine.epoch is missing or invalid');
      }
      // The stored epoch wins (options.epoch only applies at creation), unless the last run did not close cleanly.
      epoch = get(META_CLEAN) === undefined ? nextEpoch(e) : e;
      if (epoch !== e) put(META_EPOCH, Buffer.from(epoch, 'utf8'));
      store.delete(TREE_META, Buffer.from(META_CLEAN));
    }
    // Tree geometry may change between opens: trees are rebuilt anyway.
    for (const [name, bits] of [[META_BRANCH_BITS, cfg.treeBranchBits], [META_SEGMENT_BITS, cfg.treeSegmentBits]] as const) {
      if (!get(name)?.equals(byte(bits))) put(name, byte(bits)); // only log actual changes
    }
    return epoch;
  }

  private rebuildTrees(): void {
    for (const { key: dk, value } of this.store.entries(TREE_OBJECTS)) {
      const leaf = leafHash(dk.subarray(8), decodeRecord(value));
      this.trees.update(this.layout.partitionOf(dk), this.layout.segmentOf(dk), leaf);
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new EngineError('CLOSED', 'engine is closed');
  }

  private bkey(bucket: unknown, key: unknown): Buffer {
    return makeBkey(validateBucket(bucket), validateKey(key, this.limits.maxKeyBytes));
  }

  /** Hashing checks a name's shape only, not the configured key limit (as the native engine). */
  private nameOnly(bucket: unknown, key: unknown): Buffer {
    return makeBkey(validateBucket(bucket), validateKey(key, HARD_LIMITS.maxKeyBytes));
  }

  private stored(dk: Buffer): { bytes: Buffer; rec: DecodedRecord } | null {
    const bytes = this.store.get(TREE_OBJECTS, dk);
    return bytes === undefined ? null : { bytes, rec: decodeRecord(bytes) };
  }

  /** Store an object and XOR its leaf change into its partition's tree. */
  private writeObject(dk: Buffer, old: DecodedRecord | null, next: DecodedRecord, bytes: Buffer): void {
    const bkey = dk.subarray(8);
    const delta = (old ? leafHash(bkey, old) : 0n) ^ leafHash(bkey, next);
    this.store.put(TREE_OBJECTS, dk, bytes);
    this.trees.update(this.layout.partitionOf(dk), this.layout.segmentOf(dk), delta);
  }

  // ---- hashing --------------------------------------------------------------

  hashKey(bucket: Uint8Array, key: Uint8Array): bigint {
    this.checkOpen();
    return position(this.nameOnly(bucket, key));
  }

  hashKeys(items: ReadonlyArray<{ bucket: Uint8Array; key: Uint8Array }>): Buffer {
    this.checkOpen();
    if (!Array.isArray(items)) invalid('items must be an array');
    const out = Buffer.allocUnsafe(items.length * 8);
    items.forEach((it, i) => positionBytes(this.nameOnly(it?.bucket, it?.key)).copy(out, i * 8));
    return out;
  }

  // ---- objects --------------------------------------------------------------

  reconcile(records: ReadonlyArray<Uint8Array>, mode: ConflictMode): Buffer {
    if (!Array.isArray(records) || records.length === 0) invalid('reconcile needs at least one record');
    validateMode(mode);
    if (!records.every((r) => r instanceof Uint8Array)) invalid('records must be Uint8Arrays');
    return reconcile(records, mode);
  }

  coordinateDetached(req: DetachedCoordinateRequest): Buffer {
    // No storage, so no CLOSED (as reconcile). Argument types first (the native facade's order), then the record library's checks.
    if (req === null || typeof req !== 'object') invalid('request must be an object');
    if (!Number.isSafeInteger(req.now) || req.now < 0) invalid('now must be an integer in 0..2^53-1');
    const mode = validateMode(req.mode);
    const actor = bytesArg(req.actor, 'actor');
    const value = req.value === null ? null : bytesArg(req.value, 'value');
    const context = req.context == null ? null : bytesArg(req.context, 'context');
    if (req.contentType != null && typeof req.contentType !== 'string') invalid('contentType must be a string');
    checkMetaShape(req.meta);
    return coordinateDetached(context, actor, { value, now: req.now, contentType: req.contentType, meta: req.meta }, mode, this.limits);
  }

  async coordinate(req: CoordinateRequest): Promise<Buffer> {
    const out = this.coordinateNow(req);
    if (req.durable) await this.durableFlush();
    return out;
  }

  /** The flush a durable write waits for (skipped only by the deliberately broken SimStorage option). */
  private durableFlush(): Promise<void> {
    if (this.ackDurableBeforeFlush) return Promise.resolve();
    return this.store.flush();
  }

  private coordinateNow(req: Omit<CoordinateRequest, 'durable'>): Buffer {
    this.checkOpen();
    if (req === null || typeof req !== 'object') invalid('request must be an object');
    // Check order matches the native engine: now, bucket, key, value, attributes, context.
    if (!Number.isSafeInteger(req.now) || req.now < 0) invalid('now must be an integer in 0..2^53-1');
    const mode = validateMode(req.mode);
    const bkey = this.bkey(req.bucket, req.key);
    const value = req.value === null ? null : bytesArg(req.value, 'value');
    if (value !== null && value.length > this.limits.maxValueBytes) {
      throw new EngineError('VALUE_TOO_LARGE', `value longer than ${this.limits.maxValueBytes} bytes`);
    }
    const attrs = canonicalAttributes(req.contentType, req.meta);
    const ctx = decodeContext(req.context == null ? null : bytesArg(req.context, 'context'));
    // Read, compute and store with no await in between.
    const dk = diskKey(bkey);
    const old = this.stored(dk);
    const next = finish(update(old?.rec ?? null, ctx, this.me, { value, now: req.now, attrs }), mode, this.limits.maxSiblings);
    const bytes = encodeRecord(next);
    this.writeObject(dk, old?.rec ?? null, next, bytes);
    return Buffer.from(bytes);
  }

  async merge(req: MergeRequest): Promise<Buffer> {
    const out = this.mergeNow(req);
    if (req.durable) await this.durableFlush();
    return out;
  }

  async mergeMany(reqs: ReadonlyArray<MergeRequest>): Promise<Buffer[]> {
    this.checkOpen();
    if (!Array.isArray(reqs)) invalid('requests must be an array');
    const out = reqs.map((r) => this.mergeNow(r));
    if (reqs.some((r) => r.durable)) await this.durableFlush();
    return out;
  }

  private mergeNow(req: Omit<MergeRequest, 'durable'>): Buffer {
    this.checkOpen();
    if (req === null || typeof req !== 'object') invalid('request must be an object');
    const bkey = this.bkey(req.bucket, req.key);
    const mode = validateMode(req.mode);
    const incoming = decodeRecord(bytesArg(req.record, 'record'));
    const dk = diskKey(bkey);
    const old = this.stored(dk);
    // Replicas always converge: the configured limit refuses client writes
    // only (coordinate); a merge is bounded by the encoding.
    const next = finish(sync(old?.rec ?? null, incoming), mode, HARD_LIMITS.maxSiblings);
    const bytes = encodeRecord(next);
    if (old && bytes.equals(old.bytes)) return Buffer.from(old.bytes); // nothing changed: no write
    this.writeObject(dk, old?.rec ?? null, next, bytes);
    return Buffer.from(bytes);
  }

  async get(bucket: Uint8Array, key: Uint8Array): Promise<Buffer | null> {
    return this.getSync(bucket, key);
  }

  getSync(bucket: Uint8Array, key: Uint8Array): Buffer | null {
    this.checkOpen();
    const bytes = this.store.get(TREE_OBJECTS, diskKey(this.bkey(bucket, key)));
    return bytes === undefined ? null : Buffer.from(bytes);
  }

  coordinateSync(req: Omit<CoordinateRequest, 'durable'>): Buffer {
    return this.coordinateNow(req);
  }

  mergeSync(req: Omit<MergeRequest, 'durable'>): Buffer {
    return this.mergeNow(req);
  }

  async getMany(items: ReadonlyArray<{ bucket: Uint8Array; key: Uint8Array }>): Promise<Array<Buffer | null>> {
    this.checkOpen();
    if (!Array.isArray(items)) invalid('items must be an array');
    const dks = items.map((it) => diskKey(this.bkey(it?.bucket, it?.key))); // validate all first
    return dks.map((dk) => {
      const bytes = this.store.get(TREE_OBJECTS, dk);
      return bytes === undefined ? null : Buffer.from(bytes);
    });
  }

  // ---- TicTac trees ---------------------------------------------------------

  private partitionArg(p: unknown): number {
    if (!Number.isInteger(p) || (p as number) < 0 || (p as number) >= this.layout.partitions) {
      invalid(`partition must be an integer in 0..${this.layout.partitions - 1}`);
    }
    return p as number;
  }

  treeRoots(): Buffer {
    this.checkOpen();
    return this.trees.rootsBuffer();
  }

  treeBranches(partition: number): Buffer {
    this.checkOpen();
    return this.trees.branchesBuffer(this.partitionArg(partition));
  }

  treeSegments(partition: number, branch: number): Buffer {
    this.checkOpen();
    const p = this.partitionArg(partition);
    if (!Number.isInteger(branch) || branch < 0 || branch >= this.layout.branches) {
      invalid(`branch must be an integer in 0..${this.layout.branches - 1}`);
    }
    return this.trees.segmentsBuffer(p, branch);
  }

  async segmentKeys(partition: number, segments: ReadonlyArray<number>): Promise<SegmentKey[]> {
    this.checkOpen();
    const p = this.partitionArg(partition);
    if (!Array.isArray(segments)) invalid('segments must be an array');
    for (const s of segments) {
      if (!Number.isInteger(s) || s < 0 || s >= this.layout.segments) {
        invalid(`segment must be an integer in 0..${this.layout.segments - 1}`);
      }
    }
    // Ascending, distinct segments are ascending, disjoint disk-key ranges: output in disk-key order.
    const sorted = [...new Set(segments)].sort((a, b) => a - b);
    const out: SegmentKey[] = [];
    for (const s of sorted) {
      const { start, end } = this.layout.segmentRange(p, s);
      for (const { key: dk, value } of this.store.range(TREE_OBJECTS, start, end)) {
        const bkey = dk.subarray(8);
        const { bucket, key } = splitBkey(bkey);
        out.push({ bucket, key, hash: u64be(leafHash(bkey, decodeRecord(value))) });
      }
    }
    return out;
  }

  // ---- partition transfer and reaping ------------------------------------------

  async scanPartition(partition: number, after: Uint8Array | null, limit: number): Promise<PartitionPage> {
    this.checkOpen();
    const p = this.partitionArg(partition);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SCAN_LIMIT) invalid(`limit must be an integer in 1..${MAX_SCAN_LIMIT}`);
    const cursor = after == null ? null : bytesArg(after, 'after');
    if (cursor !== null && !this.layout.isCursorOf(p, cursor)) invalid(`cursor is not a disk key of partition ${p}`);
    const { start, end } = this.layout.partitionRange(p);
    // Strictly after the cursor: the least key greater than it is cursor ‖ 0x00.
    const from = cursor === null ? start : Buffer.concat([cursor, Buffer.from([0])]);
    // One entry past the page tells whether the partition goes on.
    const found = this.store.range(TREE_OBJECTS, from, end, limit + 1);
    const page = found.slice(0, limit);
    const items = page.map(({ key: dk, value }) => {
      const { bucket, key } = splitBkey(dk.subarray(8));
      return { bucket, key, record: Buffer.from(value) };
    });
    const next = found.length > limit ? Buffer.from(page[page.length - 1]!.key) : null;
    return { items, next };
  }

  /** Compare-and-delete of an all-tombstone object; flushed before it returns true. */
  async reap(bucket: Uint8Array, key: Uint8Array, record: Uint8Array): Promise<boolean> {
    this.checkOpen();
    const dk = diskKey(this.bkey(bucket, key));
    const expected = bytesArg(record, 'record');
    const rec = decodeRecord(expected);
    if (rec.siblings.some((s) => !s.tombstone)) invalid('only a record whose siblings are all tombstones can be reaped');
    // Compare and delete with no await in between.
    const current = this.store.get(TREE_OBJECTS, dk);
    if (current === undefined || !current.equals(expected)) return false;
    this.store.delete(TREE_OBJECTS, dk);
    this.trees.update(this.layout.partitionOf(dk), this.layout.segmentOf(dk), leafHash(dk.subarray(8), rec));
    await this.store.flush();
    return true;
  }

  /**
   * Deletes every object of one partition, flushes, and closes the engine without the clean mark (the next open starts a new
   * epoch; why: docs/engine.md dropPartition); resolves with how many.
   */
  async dropPartition(partition: number): Promise<number> {
    this.checkOpen();
    const p = this.partitionArg(partition);
    const { start, end } = this.layout.partitionRange(p);
    // No await until the flush: nothing can write in between.
    const found = this.store.range(TREE_OBJECTS, start, end, Number.MAX_SAFE_INTEGER);
    // Not decoded (a bad replica may hold corrupt records); the next open rebuilds the trees.
    for (const { key: dk } of found) this.store.delete(TREE_OBJECTS, dk);
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.simTimer?.cancel();
    await this.store.close();
    return found.length;
  }

  // ---- hints ----------------------------------------------------------------

  private hintKey(target: unknown, bucket: unknown, key: unknown): Buffer {
    const prefix = hintPrefix(validateNodeId(target, 'target'));
    return Buffer.concat([prefix, diskKey(this.bkey(bucket, key))]);
  }

  /** Not durable by itself (like the native engine): it reaches disk on the next flush. */
  async hintPut(target: string, bucket: Uint8Array, key: Uint8Array, record: Uint8Array): Promise<Buffer> {
    this.checkOpen();
    const hk = this.hintKey(target, bucket, key);
    const incoming = decodeRecord(bytesArg(record, 'record'));
    const oldBytes = this.store.get(TREE_HINTS, hk);
    const old = oldBytes === undefined ? null : decodeRecord(oldBytes);
    // lww never applies to hints: keep both versions until delivered.
    const next = finish(sync(old, incoming), 'siblings', HARD_LIMITS.maxSiblings);
    const bytes = encodeRecord(next);
    if (oldBytes === undefined || !bytes.equals(oldBytes)) this.store.put(TREE_HINTS, hk, bytes);
    return Buffer.from(bytes);
  }

  async hintList(target: string, limit: number): Promise<KeyRecord[]> {
    this.checkOpen();
    const prefix = hintPrefix(validateNodeId(target, 'target'));
    if (!Number.isInteger(limit) || limit < 0) invalid('limit must be a non-negative integer');
    return this.store.range(TREE_HINTS, prefix, prefixEnd(prefix), limit).map(({ key: hk, value }) => {
      const { bucket, key } = splitBkey(hk.subarray(prefix.length + 8));
      return { bucket, key, record: Buffer.from(value) };
    });
  }

  /** Compare-and-delete: a hint updated since `record` was listed is kept. */
  async hintDelete(target: string, bucket: Uint8Array, key: Uint8Array, record: Uint8Array): Promise<boolean> {
    this.checkOpen();
    const hk = this.hintKey(target, bucket, key);
    const expected = bytesArg(record, 'record');
    const current = this.store.get(TREE_HINTS, hk);
    if (current === undefined || !current.equals(expected)) return false;
    return this.store.delete(TREE_HINTS, hk);
  }

  /** Distinct targets, sorted. */
  async hintTargets(): Promise<string[]> {
    this.checkOpen();
    const out: string[] = [];
    let start: Buffer | null = Buffer.alloc(0);
    while (start !== null) {
      const first = this.store.range(TREE_HINTS, start, null, 1)[0];
      if (first === undefined) break;
      const prefix = first.key.subarray(0, 1 + first.key[0]!);
      out.push(prefix.subarray(1).toString('utf8'));
      start = prefixEnd(prefix); // skip the rest of this target's hints
    }
    return out.sort(); // targets are ASCII: code-unit order is byte order
  }

  // ---- meta -----------------------------------------------------------------

  async metaGet(name: string): Promise<Buffer | null> {
    this.checkOpen();
    const v = this.store.get(TREE_META, metaName(name));
    return v === undefined ? null : Buffer.from(v);
  }

  /** Durable when it returns. The `engine.` names are the engine's own and read-only. */
  async metaPut(name: string, value: Uint8Array): Promise<void> {
    this.checkOpen();
    const n = metaName(name);
    if (name.startsWith(RESERVED_META_PREFIX)) invalid(`meta names starting with "${RESERVED_META_PREFIX}" are reserved`);
    this.store.put(TREE_META, n, Buffer.from(bytesArg(value, 'value')));
    await this.store.flush();
  }

  // ---- lifecycle --------------------------------------------------------------

  async flush(): Promise<void> {
    this.checkOpen();
    await this.store.flush();
  }

  async close(): Promise<void> {
    this.checkOpen();
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.simTimer?.cancel();
    // Flushed with everything else by the store's close: the next open keeps this epoch.
    this.store.put(TREE_META, Buffer.from(META_CLEAN), Buffer.from([1]));
    await this.store.close();
  }

  /**
   * Simulated crash (SimStorage only): every write not yet flushed is lost and
   * the engine is closed; PureEngine.open on the same SimDisk restarts from
   * what was flushed.
   */
  crash(): void {
    this.checkOpen();
    this.store.crash(); // throws for a file-backed engine, which stays open
    this.closed = true;
    this.simTimer?.cancel();
  }
}
