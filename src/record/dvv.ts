// Dotted version vector sets: the coordinator update, the replica sync and
// the conflict-mode finish of docs/engine.md "Operations", named as in the
// Rust crate (crates/engine/src/dvv.rs: join, update, sync, apply_mode,
// finish). Pure functions on decoded records; no I/O.
import { EngineError } from './errors.js';
import { MAX_CONTEXT_ENTRIES, MAX_SAFE, compareDots, contextGet, type Context, type DecodedRecord, type Sibling, type SiblingAttributes } from './codec.js';
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
