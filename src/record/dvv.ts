// Dotted version vector sets: the coordinator update, the replica sync and
// the conflict-mode finish of docs/engine.md "Operations", named as in the
// Rust crate (crates/engine/src/dvv.rs: join, update, sync, apply_mode,
// finish). Pure functions on decoded records; no I/O.
import { EngineError } from './errors.js';
import {
  MAX_CONTEXT_ENTRIES,
  MAX_SAFE,
  canonicalAttributes,
  compareDots,
  contextGet,
  decodeContext,
  encodeRecord,
  type Context,
  type DecodedRecord,
  type Sibling,
  type SiblingAttributes,
  type WriteAttributes,
} from './codec.js';
import { invariant } from '../core/types.js';

/** How concurrent versions of an object are resolved: keep them all as siblings, or the last writer's. */
export type ConflictMode = 'siblings' | 'lww';

/** The sibling count the encoding can hold (u16): the bound of every merge. */
export const MAX_ENCODED_SIBLINGS = 0xffff;

export const EMPTY_RECORD: DecodedRecord = { context: [], siblings: [] };

/** Does `ctx` cover the dot (actor, counter)? */
export function covers(ctx: Context, dot: { actor: Buffer; counter: number }): boolean {
  return contextGet(ctx, dot.actor) >= dot.counter;
}

/** Pointwise max of two sorted contexts (a sorted merge). */
export function join(a: Context, b: Context): Context {
  const out: Context = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    const c = x === undefined ? 1 : y === undefined ? -1 : Buffer.compare(x.actor, y.actor);
    if (c < 0) {
      out.push(x!);
      i++;
    } else if (c > 0) {
      out.push(y!);
      j++;
    } else {
      out.push(x!.counter >= y!.counter ? x! : y!);
      i++;
      j++;
    }
  }
  return out;
}

/** Context with ctx[actor] = counter (keeps the sort order). */
function contextSet(ctx: Context, actor: Buffer, counter: number): Context {
  return join(
    ctx.filter((e) => !e.actor.equals(actor)),
    [{ actor, counter }],
  );
}

/** lww: the single sibling with the greatest (timestamp, actor bytes, counter); siblings mode: the record as it is. */
export function applyMode(rec: DecodedRecord, mode: ConflictMode): DecodedRecord {
  if (mode === 'siblings' || rec.siblings.length <= 1) return rec;
  let best: Sibling | undefined;
  for (const s of rec.siblings) {
    if (best === undefined || s.timestamp > best.timestamp || (s.timestamp === best.timestamp && compareDots(s, best) > 0)) {
      best = s;
    }
  }
  return { context: rec.context, siblings: [best!] };
}

/**
 * Apply the mode, then enforce the sibling limit, yielding a record that is
 * safe to encode and store: TOO_MANY_SIBLINGS past `maxSiblings`,
 * CORRUPT_RECORD when no sibling is left.
 */
export function finish(rec: DecodedRecord, mode: ConflictMode, maxSiblings: number): DecodedRecord {
  // A limit above the encoding's u16 count would let through a record encodeRecord refuses.
  invariant(maxSiblings <= MAX_ENCODED_SIBLINGS, `finish's sibling limit ${maxSiblings} is within the encoding's ${MAX_ENCODED_SIBLINGS}`);
  const out = applyMode(rec, mode);
  if (out.siblings.length > maxSiblings) {
    throw new EngineError('TOO_MANY_SIBLINGS', `write would leave ${out.siblings.length} siblings (max ${maxSiblings})`);
  }
  // Only causally inconsistent inputs (each side covering the other's live
  // dots) get here; a record with no siblings is never stored.
  if (out.siblings.length === 0) throw new EngineError('CORRUPT_RECORD', 'merge left no siblings (inconsistent records)');
  return out;
}

export interface NewVersion {
  /** null = tombstone (delete) */
  value: Buffer | null;
  /** ms since the Unix epoch */
  now: number;
  /** Canonical attributes (canonicalAttributes); absent = the default. A tombstone never carries them. */
  attrs?: SiblingAttributes;
}

/**
 * A client write at this replica: drop what the client's context has seen,
 * add a new sibling under a fresh dot of `me`. The caller finishes it.
 */
export function update(stored: DecodedRecord | null, ctx: Context, me: Buffer, version: NewVersion): DecodedRecord {
  const base = stored ?? EMPTY_RECORD;
  const kept = base.siblings.filter((s) => !covers(ctx, s));
  const storedMine = contextGet(base.context, me);
  const ctxMine = contextGet(ctx, me);
  const counter = Math.max(storedMine, ctxMine) + 1;
  if (counter > MAX_SAFE) {
    throw new EngineError('INVALID_ARGUMENT', 'actor counter exhausted (2^53-1)');
  }
  const fresh: Sibling = {
    actor: me,
    counter,
    timestamp: version.now,
    tombstone: version.value === null,
    value: version.value ?? Buffer.alloc(0),
  };
  if (version.value !== null && version.attrs !== undefined) fresh.attrs = version.attrs;
  const siblings = [...kept, fresh].sort(compareDots);
  const context = contextSet(join(base.context, ctx), me, counter);
  // Every record a client write stores must have a context the client may
  // send back, so the limit counts the entry this write adds for `me`.
  if (context.length > MAX_CONTEXT_ENTRIES) {
    throw new EngineError('BAD_CONTEXT', `the key's context is full: this write would make it cover ${context.length} actors (max ${MAX_CONTEXT_ENTRIES})`);
  }
  return { context, siblings };
}

/**
 * DVV set sync of a local record (null = none) with an incoming one.
 * A sibling survives if the other side has the same dot or has not seen it;
 * for a dot on both sides the local copy wins. The caller finishes it.
 */
export function sync(local: DecodedRecord | null, incoming: DecodedRecord): DecodedRecord {
  const base = local ?? EMPTY_RECORD;
  const a = base.siblings;
  const b = incoming.siblings;
  const siblings: Sibling[] = [];
  let i = 0;
  let j = 0;
  // Both lists are sorted by dot: a merge-join keeps the output sorted.
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    const c = x === undefined ? 1 : y === undefined ? -1 : compareDots(x, y);
    if (c === 0) {
      siblings.push(x!);
      i++;
      j++;
    } else if (c < 0) {
      if (!covers(incoming.context, x!)) siblings.push(x!);
      i++;
    } else {
      if (!covers(base.context, y!)) siblings.push(y!);
      j++;
    }
  }
  return { context: join(base.context, incoming.context), siblings };
}

/** The size limits a detached coordination checks (the engine's own; crates/engine/src/config.rs Limits). */
export interface DetachedLimits {
  maxKeyBytes: number;
  maxValueBytes: number;
  maxSiblings: number;
}

/** The hard maxima of the limits (Rust `Limits::validate`). */
const HARD_MAX_KEY_BYTES = 0xffff;
const HARD_MAX_VALUE_BYTES = 16 << 20;

/**
 * Coordinates a new version of a key in memory, as an engine's coordinate
 * does over an empty stored record, with `actor` making the dot (Rust
 * `dvv::coordinate_detached`): the version a fallback coordinator builds
 * under a one-off actor. No storage. `context` is the client's encoded
 * context (null or empty: none); `attrs` as the client gave them (checked and
 * sorted here; a tombstone drops them).
 *
 * Checks, first failure wins (the Rust order): limits valid and `actor`
 * 1..=255 bytes and `now` in 0..2^53-1 (INVALID_ARGUMENT), the value within
 * `maxValueBytes` (VALUE_TOO_LARGE), the attributes (BAD_METADATA,
 * METADATA_TOO_LARGE), the context (BAD_CONTEXT); then update (BAD_CONTEXT
 * when the context is full, INVALID_ARGUMENT when the actor's counter is
 * exhausted) and finish in `mode`.
 */
export function coordinateDetached(
  context: Uint8Array | null,
  actor: Buffer,
  version: { value: Buffer | null; now: number } & WriteAttributes,
  mode: ConflictMode,
  limits: DetachedLimits,
): Buffer {
  const within = (v: number, lo: number, hi: number) => Number.isInteger(v) && v >= lo && v <= hi;
  if (!within(limits.maxKeyBytes, 1, HARD_MAX_KEY_BYTES)) throw new EngineError('INVALID_ARGUMENT', 'maxKeyBytes must be 1..=65535');
  if (!within(limits.maxValueBytes, 0, HARD_MAX_VALUE_BYTES)) throw new EngineError('INVALID_ARGUMENT', 'maxValueBytes must be <= 16 MiB');
  if (!within(limits.maxSiblings, 1, MAX_ENCODED_SIBLINGS)) throw new EngineError('INVALID_ARGUMENT', 'maxSiblings must be 1..=65535');
  if (actor.length < 1 || actor.length > 0xff) throw new EngineError('INVALID_ARGUMENT', 'actor must be 1..=255 bytes');
  if (!within(version.now, 0, MAX_SAFE)) throw new EngineError('INVALID_ARGUMENT', 'timestamp must be an integer in 0..2^53-1');
  const { value } = version;
  if (value !== null && value.length > limits.maxValueBytes) {
    throw new EngineError('VALUE_TOO_LARGE', `value is longer than ${limits.maxValueBytes} bytes`);
  }
  const attrs = canonicalAttributes(version.contentType, version.meta);
  const ctx = decodeContext(context);
  const out = finish(update(null, ctx, actor, { value, now: version.now, attrs }), mode, limits.maxSiblings);
  // Nothing stored was there to keep: the one sibling is the new dot.
  invariant(out.siblings.length === 1 && out.siblings[0]!.actor.equals(actor), 'a detached coordination yields exactly its new sibling');
  return encodeRecord(out);
}
