// Sets: a bucket whose properties say `type: 'set'` holds OR-sets
// (src/core/orset.ts) as its values. The value of a key is stored as an
// ordinary object, so replication, read repair, anti-entropy and hinted
// handoff move it like any other: concurrent updates become DVV siblings,
// and every read merges the siblings' sets, which is always safe.
//
// Reading: node.get (quorum), then the merge of every live sibling's set.
//
// Updating is a read-modify-write on a node that holds a replica:
//   1. under a per-key lock (so two updates on one node never reuse a dot),
//   2. read the local replica AND a quorum (node.get) and merge them,
//   3. apply the removes, then the adds, with this node's engine actor
//      (`nodeId:epoch`) as the set actor,
//   4. write back with node.put and the DVV context of everything read, so
//      the siblings read collapse into the new version.
// Why a replica, and why its local record: an actor's next dot is
// clock[actor] + 1 of the state it read, so that state must hold every dot
// the actor made for this key, or two adds would share a dot and merges
// would drop both. A quorum read alone does not promise that (r = 1, w = 1,
// or a sloppy write that went to fallbacks). A primary coordinates its own
// writes (node.put writes its local engine first), so its local record
// always holds all of its own dots. A node that is not a primary of the key
// forwards the update to one (peer request `sets.update`), as Riak does with
// datatype updates. The residual risk: a node that stops and becomes a
// primary again between the check and the write, or loses its local copy
// without a new epoch (a partition handed away and back).
//
// Removes: without a context they drop every dot of the element the
// coordinator's read saw. With the context of an earlier set read, only the
// dots that context covers go: an add the client had not seen wins.
import { distinctOwnerCount, partitionOf } from '../core/ring.js';
import * as orset from '../core/orset.js';
import { decodeRecord, keyId, recordContextBytes } from '../record/index.js';
import { bufferView } from '../util/bytes.js';
import { EngineError } from '../engine/types.js';
import { isTransportError } from '../transport/types.js';
import { NodeError, nodeErrorFrom } from './errors.js';
import type { ClientOperations, RequestOptions, ServiceContext } from './context.js';
import { MAX_SET_OPS, type PeerRequest } from './messages.js';

/** What the set store uses of the node: its client operations and a few service members. */
export type SetsContext = ClientOperations &
  Pick<ServiceContext, 'id' | 'engine' | 'clusterState' | 'bucketProps' | 'preferenceListOf' | 'isSuspected' | 'peerRequest' | 'registerService'>;

/** Elements per update (adds plus removes) and bytes per element. */
export const SET_LIMITS = Object.freeze({ maxOps: MAX_SET_OPS, maxElementBytes: 1024 });

export type SetErrorCode = 'NOT_A_SET' | 'BAD_REQUEST' | 'BAD_CONTEXT' | 'VALUE_TOO_LARGE';

/** A set operation the caller got wrong (the HTTP layer maps the code to a status). */
export class SetError extends Error {
  constructor(
    readonly code: SetErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'SetError';
  }
}

const SET_CODES = new Set<string>(['NOT_A_SET', 'BAD_REQUEST', 'BAD_CONTEXT', 'VALUE_TOO_LARGE']);

export interface SetOps {
  add?: readonly Uint8Array[];
  remove?: readonly Uint8Array[];
  /** The `context` of an earlier set read: removes take only the dots it covers. */
  context?: Uint8Array | null;
}

export interface SetResult {
  /** Ascending by bytes. */
  elements: Buffer[];
  /** The set's causal context (orset.encodeContext), to send back with removes. */
  context: Buffer;
  state: orset.OrSet;
}

/** What an update is about to write (for tests and instrumentation). */
export interface SetWriteEvent {
  bucket: Buffer;
  key: Buffer;
  actor: string;
  /** The merged state the operations were applied to. */
  observed: orset.OrSet;
  /** How many versions (live siblings of the local and the quorum read) were merged into `observed`. */
  versions: number;
  next: orset.OrSet;
}

export interface SetStoreOptions {
  /** Deadline used for a forwarded update when the request gives none (default 5000 ms, as the node's). */
  defaultTimeoutMs?: number;
  /** Called before every write an update issues. */
  onWrite?: (event: SetWriteEvent) => void;
}

/** The merged set of a record's live siblings (tombstones count as empty sets). */
export function stateOfRecord(record: Uint8Array | null): orset.OrSet {
  if (!record) return orset.empty();
  let state = orset.empty();
  for (const sibling of decodeRecord(record).siblings) {
    if (sibling.tombstone) continue;
    let s: orset.OrSet;
    try {
      s = orset.decode(sibling.value);
    } catch (err) {
      if (err instanceof orset.OrSetError) throw new SetError('NOT_A_SET', `the key holds a value that is not a set (${err.message}); was it written through /kv?`);
      throw err;
    }
    state = orset.merge(state, s);
  }
  return state;
}

export class SetStore {
  private readonly locks = new Map<string, Promise<void>>();
  private readonly defaultTimeoutMs: number;

  constructor(
    private readonly node: SetsContext,
    private readonly opts: SetStoreOptions = {},
  ) {
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 5_000;
    node.registerService({ 'sets.update': (_from, req) => this.onUpdateRequest(req) });
  }

  /** Refuses buckets that are not sets (NOT_A_SET, with the fix in `hint`). */
  checkBucket(bucket: Buffer): void {
    const name = bucket.toString('utf8');
    const props = this.node.bucketProps(name);
    if (props.type !== 'set') {
      throw new SetError('NOT_A_SET', `bucket '${name}' is not a set bucket`, { hint: 'set the bucket properties {"type":"set"} first' });
    }
    if (props.mode !== 'siblings') {
      throw new SetError('NOT_A_SET', `set bucket '${name}' is in mode '${props.mode}', which drops concurrent updates`, { hint: 'set the bucket properties {"mode":"siblings"}' });
    }
  }

  async setGet(bucket: Buffer, key: Buffer, req: RequestOptions = {}): Promise<SetResult> {
    this.checkBucket(bucket);
    const { record } = await this.node.get(bucket, key, req);
    return result(stateOfRecord(record));
  }

  async setUpdate(bucket: Buffer, key: Buffer, ops: SetOps, req: RequestOptions = {}): Promise<SetResult> {
    this.checkBucket(bucket);
    const checked = checkOps(ops);
    const primaries = this.primaries(bucket, key, req.n);
    if (primaries.includes(this.node.id)) return result(await this.coordinate(bucket, key, checked, req));
    return result(await this.forward(bucket, key, checked, req, primaries));
  }

  // ---------------------------------------------------------------------------

  private primaries(bucket: Buffer, key: Buffer, nRequested: number | undefined): string[] {
    const ring = this.node.clusterState.ring;
    const props = this.node.bucketProps(bucket.toString('utf8'));
    const n = Math.min(nRequested ?? props.n, distinctOwnerCount(ring.owners));
    let position: bigint;
    try {
      position = this.node.engine.hashKey(bucket, key);
    } catch (err) {
      if (err instanceof EngineError) throw nodeErrorFrom(err.code, err.message);
      throw err;
    }
    return this.node.preferenceListOf(partitionOf(ring, position), n).primaries;
  }

  /** Hands the update to the first primary that answers; an error answer is final. */
  private async forward(bucket: Buffer, key: Buffer, ops: CheckedOps, req: RequestOptions, primaries: string[]): Promise<orset.OrSet> {
    const ordered = [...primaries].sort((a, b) => Number(this.node.isSuspected(a)) - Number(this.node.isSuspected(b)));
    const timeoutMs = req.timeoutMs ?? this.defaultTimeoutMs;
    // A read and a write, each with its own deadline, plus the hops.
    const waitMs = 2 * timeoutMs + Math.ceil(timeoutMs / 2);
    const body = { b: bucket, k: key, add: ops.add, remove: ops.remove, context: ops.contextBytes, r: req.r, w: req.w, dw: req.dw, n: req.n, timeoutMs: req.timeoutMs };
    for (const node of ordered) {
      try {
        const reply = await this.node.peerRequest(node, 'sets.update', body, waitMs);
        return decodeState(reply.state);
      } catch (err) {
        if (isTransportError(err, 'REMOTE')) {
          if (err.remoteCode && SET_CODES.has(err.remoteCode)) throw new SetError(err.remoteCode as SetErrorCode, err.message);
          throw nodeErrorFrom(err.remoteCode, err.message);
        }
        // Unreachable, timed out or overloaded: try the next primary.
      }
    }
    throw new NodeError('UNAVAILABLE', `no replica of the key could coordinate the set update (tried ${ordered.join(', ')})`);
  }

  /** A 'sets.update' forwarded by a node that is not a primary of the key (body decoded by the node). */
  private async onUpdateRequest(body: PeerRequest<'sets.update'>): Promise<{ state: Buffer }> {
    // The forwarding node checked the bucket's type; this node's view of the
    // properties may lag by a gossip round, so it does not check again.
    const ops = checkOps({ add: body.add ?? [], remove: body.remove ?? [], context: body.context });
    const req: RequestOptions = { r: body.r, w: body.w, dw: body.dw, n: body.n, timeoutMs: body.timeoutMs };
    // Whoever was asked coordinates, even if its ring disagrees for a moment.
    const state = await this.coordinate(body.b, body.k, ops, req);
    return { state: orset.encode(state) };
  }

  /** The read-modify-write, on a replica of the key (see the top of the file). */
  private coordinate(bucket: Buffer, key: Buffer, ops: CheckedOps, req: RequestOptions): Promise<orset.OrSet> {
    const engine = this.node.engine;
    return this.locked(keyId(bucket, key), async () => {
      let local: Buffer | null;
      try {
        local = await engine.get(bucket, key);
      } catch (err) {
        if (err instanceof EngineError) throw nodeErrorFrom(err.code, err.message);
        throw err;
      }
      const read = await this.node.get(bucket, key, { r: req.r, n: req.n, timeoutMs: req.timeoutMs });
      const records = [local, read.record].filter((r): r is Buffer => r !== null);
      const merged = records.length === 0 ? null : engine.reconcile(records, 'siblings');
      const observed = stateOfRecord(merged);
      const versions = merged ? decodeRecord(merged).siblings.filter((x) => !x.tombstone).length : 0;
      let next = observed;
      for (const e of ops.remove) next = orset.remove(next, e, ops.context ?? undefined);
      for (const e of ops.add) next = orset.add(next, engine.actor, e);
      const value = orset.encode(next);
      // Nothing to change (removes of absent elements): no write.
      if (merged !== null && value.equals(orset.encode(observed))) return observed;
      if (merged === null && next.entries.size === 0) return next;
      if (value.length > engine.limits.maxValueBytes) {
        throw new SetError('VALUE_TOO_LARGE', `the set would take ${value.length} bytes, over the value limit of ${engine.limits.maxValueBytes}`, { limit: engine.limits.maxValueBytes });
      }
      this.opts.onWrite?.({ bucket, key, actor: engine.actor, observed, versions, next });
      const written = await this.node.put(bucket, key, merged ? recordContextBytes(merged) : null, value, { w: req.w, dw: req.dw, n: req.n, timeoutMs: req.timeoutMs });
      // The written record may also hold versions that arrived meanwhile.
      return orset.merge(next, stateOfRecord(written.record));
    });
  }

  /** Runs `fn` after every earlier call with the same id has finished. */
  private async locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = prev.then(() => mine);
    this.locks.set(id, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(id) === tail) this.locks.delete(id);
    }
  }
}

interface CheckedOps {
  add: Buffer[];
  remove: Buffer[];
  context: orset.Clock | null;
  contextBytes: Buffer | null;
}

function checkOps(ops: SetOps): CheckedOps {
  const add = (ops.add ?? []).map(toBuffer);
  const remove = (ops.remove ?? []).map(toBuffer);
  if (add.length + remove.length === 0) throw new SetError('BAD_REQUEST', 'nothing to do: give elements to add or remove');
  if (add.length + remove.length > SET_LIMITS.maxOps) throw new SetError('BAD_REQUEST', `at most ${SET_LIMITS.maxOps} elements per update (adds and removes)`, { limit: SET_LIMITS.maxOps });
  for (const e of [...add, ...remove]) {
    if (e.length > SET_LIMITS.maxElementBytes) throw new SetError('BAD_REQUEST', `an element is longer than ${SET_LIMITS.maxElementBytes} bytes`, { limit: SET_LIMITS.maxElementBytes });
  }
  const removing = new Set(remove.map((e) => e.toString('latin1')));
  if (add.some((e) => removing.has(e.toString('latin1')))) throw new SetError('BAD_REQUEST', 'an element is both added and removed');
  let context: orset.Clock | null = null;
  let contextBytes: Buffer | null = null;
  if (ops.context != null && ops.context.length > 0) {
    contextBytes = toBuffer(ops.context);
    try {
      context = orset.decodeContext(contextBytes);
    } catch (err) {
      if (err instanceof orset.OrSetError) throw new SetError('BAD_CONTEXT', `not a set context: ${err.message}`);
      throw err;
    }
  }
  return { add, remove, context, contextBytes };
}

function result(state: orset.OrSet): SetResult {
  return { elements: orset.elements(state), context: orset.encodeContext(state.clock), state };
}

function decodeState(bytes: Uint8Array): orset.OrSet {
  try {
    return orset.decode(bytes);
  } catch (err) {
    throw new NodeError('INTERNAL', `a replica answered with a bad set: ${(err as Error).message}`);
  }
}

function toBuffer(b: Uint8Array): Buffer {
  if (!(b instanceof Uint8Array)) throw new SetError('BAD_REQUEST', 'an element must be bytes');
  return bufferView(b);
}
