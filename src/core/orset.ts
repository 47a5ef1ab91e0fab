// A state-based, add-wins observed-remove set without tombstones (ORSWOT, as
// Riak's riak_dt_orswot): a causal context (a version vector actor → counter)
// plus, for each element, the set of dots (actor, counter) of the adds that
// put it there.
//
//   add(e) by actor A    a new dot (A, clock[A] + 1); e's dots become just
//                        that dot (the adder observed every older dot of e,
//                        and the clock keeps covering them).
//   remove(e)            drops e's dots; the clock still covers them, so a
//                        merge with a replica that still has them drops
//                        them too: a removed element does not come back.
//   merge(a, b)          a dot of an element survives when every side that
//                        has seen it (its clock covers it) still has it; a
//                        concurrent add carries a dot the remover never saw,
//                        so the add wins. Clock: pointwise max.
//
// A dot must name one add: each actor must know every dot it made before
// making the next (the caller serializes an actor's updates and reads its
// own latest state first; src/node/sets.ts does).
//
// Removing an element the state does not hold is a no-op (not an error, as
// riak_dt_orswot's precondition is): updates are read-modify-writes of a
// merged state, and a retried or concurrent remove must stay harmless.
//
// Elements are byte strings; actors are printable ASCII (engine actors are
// `nodeId:epoch`). Pure: no I/O, values are never mutated.
//
// Encoding (big-endian, canonical — equal states encode to equal bytes):
//   u8 0x53 'S', u8 version 1,
//   clock:    u16 nActors, per actor ascending: u8 len (1..255), actor, u64 counter (1..2^53-1)
//   entries:  u32 nElements, per element ascending by bytes:
//             u16 len, element bytes, u16 nDots (>= 1),
//             per dot ascending by (actor index, counter): u16 actor index, u64 counter (1..clock[actor])
// The context alone (handed to clients) is: u8 0x43 'C', u8 version 1, clock.
import { bufferView } from '../util/bytes.js';
import { ByteReader } from '../util/byte-reader.js';

export const MAX_SAFE = Number.MAX_SAFE_INTEGER;
/** Longest element the encoding holds (u16 length). */
export const MAX_ELEMENT_BYTES = 0xffff;
/** Most actors a client context may name (as the DVV context). */
export const MAX_CONTEXT_ACTORS = 1024;

const STATE_MAGIC = 0x53;
const CONTEXT_MAGIC = 0x43;
const VERSION = 1;
const ACTOR_RE = /^[\x21-\x7e]{1,255}$/;

export interface Dot {
  readonly actor: string;
  readonly counter: number;
}

/** actor → highest counter seen. */
export type Clock = ReadonlyMap<string, number>;

export interface OrSet {
  readonly clock: Clock;
  /** Element (its bytes as a latin1 string, so string order is byte order) → its dots, sorted. */
  readonly entries: ReadonlyMap<string, readonly Dot[]>;
}

export type OrSetErrorCode = 'BAD_SET' | 'BAD_CONTEXT' | 'INVALID_ARGUMENT';

export class OrSetError extends Error {
  constructor(
    readonly code: OrSetErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'OrSetError';
  }
}

const EMPTY: OrSet = Object.freeze({ clock: new Map<string, number>(), entries: new Map<string, readonly Dot[]>() });

export function empty(): OrSet {
  return EMPTY;
}

const keyOf = (element: Uint8Array): string => bufferView(element).toString('latin1');
const bytesOf = (key: string): Buffer => Buffer.from(key, 'latin1');
const dotKey = (d: Dot): string => `${d.actor} ${d.counter}`;
const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const compareDots = (a: Dot, b: Dot): number => compareStrings(a.actor, b.actor) || a.counter - b.counter;
const seen = (clock: Clock, d: Dot): boolean => (clock.get(d.actor) ?? 0) >= d.counter;

function checkElement(element: Uint8Array): void {
  if (!(element instanceof Uint8Array)) throw new OrSetError('INVALID_ARGUMENT', 'an element must be bytes');
  if (element.byteLength > MAX_ELEMENT_BYTES) throw new OrSetError('INVALID_ARGUMENT', `element longer than ${MAX_ELEMENT_BYTES} bytes`);
}

/** Adds `element` with a new dot of `actor`. */
export function add(state: OrSet, actor: string, element: Uint8Array): OrSet {
  if (typeof actor !== 'string' || !ACTOR_RE.test(actor)) throw new OrSetError('INVALID_ARGUMENT', 'an actor is 1..255 printable ASCII characters');
  checkElement(element);
  const counter = (state.clock.get(actor) ?? 0) + 1;
  if (counter > MAX_SAFE) throw new OrSetError('INVALID_ARGUMENT', `counter of ${actor} would exceed 2^53-1`);
  const clock = new Map(state.clock).set(actor, counter);
  const entries = new Map(state.entries).set(keyOf(element), [{ actor, counter }]);
  return { clock, entries };
}

/**
 * Removes `element` (a no-op when absent). With `observed` (the clock of a
 * state a client read), only the element's dots that clock covers go: adds
 * the client never saw survive (add wins).
 */
export function remove(state: OrSet, element: Uint8Array, observed?: Clock): OrSet {
  checkElement(element);
  const key = keyOf(element);
  const dots = state.entries.get(key);
  if (!dots) return state;
  const left = observed ? dots.filter((d) => !seen(observed, d)) : [];
  if (left.length === dots.length) return state;
  const entries = new Map(state.entries);
  if (left.length === 0) entries.delete(key);
  else entries.set(key, left);
  return { clock: state.clock, entries };
}

/** Least upper bound: commutative, associative, idempotent. */
export function merge(a: OrSet, b: OrSet): OrSet {
  if (a === b) return a;
  const clock = new Map(a.clock);
  for (const [actor, counter] of b.clock) if ((clock.get(actor) ?? 0) < counter) clock.set(actor, counter);
  const entries = new Map<string, readonly Dot[]>();
  const keys = new Set([...a.entries.keys(), ...b.entries.keys()]);
  for (const key of keys) {
    const da = a.entries.get(key) ?? [];
    const db = b.entries.get(key) ?? [];
    const inA = new Set(da.map(dotKey));
    const inB = new Set(db.map(dotKey));
    // A dot stays when each side has it or has never seen it.
    const kept = new Map<string, Dot>();
    for (const d of da) if (inB.has(dotKey(d)) || !seen(b.clock, d)) kept.set(dotKey(d), d);
    for (const d of db) if (inA.has(dotKey(d)) || !seen(a.clock, d)) kept.set(dotKey(d), d);
    if (kept.size > 0) entries.set(key, [...kept.values()].sort(compareDots));
  }
  return { clock, entries };
}

/** The elements, ascending by bytes. */
export function elements(state: OrSet): Buffer[] {
  return [...state.entries.keys()].sort(compareStrings).map(bytesOf);
}

export function has(state: OrSet, element: Uint8Array): boolean {
  return state.entries.has(keyOf(element));
}

export function size(state: OrSet): number {
  return state.entries.size;
}

/** The dots of one element (empty when absent). */
export function dotsOf(state: OrSet, element: Uint8Array): readonly Dot[] {
  return state.entries.get(keyOf(element)) ?? [];
}

export function equals(a: OrSet, b: OrSet): boolean {
  return encode(a).equals(encode(b));
}

// ---- encoding ----------------------------------------------------------------

function sortedActors(clock: Clock): string[] {
  return [...clock.keys()].sort(compareStrings);
}

function clockSize(actors: string[]): number {
  let n = 2;
  for (const a of actors) n += 1 + a.length + 8;
  return n;
}

function writeClock(out: Buffer, off: number, clock: Clock, actors: string[]): number {
  out.writeUInt16BE(actors.length, off);
  off += 2;
  for (const a of actors) {
    out[off] = a.length;
    off += 1 + out.write(a, off + 1, 'latin1');
    out.writeBigUInt64BE(BigInt(clock.get(a)!), off);
    off += 8;
  }
  return off;
}

export function encode(state: OrSet): Buffer {
  const actors = sortedActors(state.clock);
  if (actors.length > 0xffff) throw new OrSetError('INVALID_ARGUMENT', 'more than 65535 actors');
  const index = new Map(actors.map((a, i) => [a, i]));
  const keys = [...state.entries.keys()].sort(compareStrings);
  let size = 2 + clockSize(actors) + 4;
  for (const k of keys) size += 2 + k.length + 2 + 10 * state.entries.get(k)!.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = STATE_MAGIC;
  out[1] = VERSION;
  let off = writeClock(out, 2, state.clock, actors);
  out.writeUInt32BE(keys.length, off);
  off += 4;
  for (const k of keys) {
    const dots = [...state.entries.get(k)!].sort((x, y) => index.get(x.actor)! - index.get(y.actor)! || x.counter - y.counter);
    out.writeUInt16BE(k.length, off);
    off += 2 + out.write(k, off + 2, 'latin1');
    out.writeUInt16BE(dots.length, off);
    off += 2;
    for (const d of dots) {
      out.writeUInt16BE(index.get(d.actor)!, off);
      out.writeBigUInt64BE(BigInt(d.counter), off + 2);
      off += 10;
    }
  }
  return out;
}

/** A state's causal context (its clock), for a client to send back with a remove. */
export function encodeContext(clock: Clock): Buffer {
  const actors = sortedActors(clock);
  const out = Buffer.allocUnsafe(2 + clockSize(actors));
  out[0] = CONTEXT_MAGIC;
  out[1] = VERSION;
  writeClock(out, 2, clock, actors);
  return out;
}

class Reader extends ByteReader {
  constructor(
    buf: Buffer,
    readonly code: OrSetErrorCode,
  ) {
    super(buf);
  }
  fail(msg: string): never {
    throw new OrSetError(this.code, msg);
  }
  counter(): number {
    const v = this.u64();
    if (v === 0n || v > BigInt(MAX_SAFE)) this.fail('counter outside 1..2^53-1');
    return Number(v);
  }
  header(magic: number): void {
    if (this.u8() !== magic) this.fail('not a set encoding');
    if (this.u8() !== VERSION) this.fail('unknown set encoding version');
  }
  clock(max: number): { clock: Map<string, number>; actors: string[] } {
    const n = this.u16();
    if (n > max) this.fail(`more than ${max} actors`);
    const clock = new Map<string, number>();
    const actors: string[] = [];
    for (let i = 0; i < n; i++) {
      const len = this.u8();
      const actor = this.bytes(len).toString('latin1');
      if (!ACTOR_RE.test(actor)) this.fail('actor is not 1..255 printable ASCII characters');
      const prev = actors[actors.length - 1];
      if (prev !== undefined && compareStrings(prev, actor) >= 0) this.fail('actors not strictly ascending');
      clock.set(actor, this.counter());
      actors.push(actor);
    }
    return { clock, actors };
  }
}


const asBuffer = bufferView;

/** Decodes and validates a state; OrSetError BAD_SET on anything malformed or not canonical. */
export function decode(buf: Uint8Array): OrSet {
  if (!(buf instanceof Uint8Array)) throw new OrSetError('BAD_SET', 'not bytes');
  const r: Reader = new Reader(asBuffer(buf), 'BAD_SET');
  r.header(STATE_MAGIC);
  const { clock, actors } = r.clock(0xffff);
  const n = r.u32();
  const entries = new Map<string, readonly Dot[]>();
  let prevKey: string | undefined;
  for (let i = 0; i < n; i++) {
    const key = r.bytes(r.u16()).toString('latin1');
    if (prevKey !== undefined && compareStrings(prevKey, key) >= 0) r.fail('elements not strictly ascending');
    prevKey = key;
    const m = r.u16();
    if (m === 0) r.fail('element without dots');
    const dots: Dot[] = [];
    let prev: { index: number; counter: number } | undefined;
    for (let j = 0; j < m; j++) {
      const index = r.u16();
      const actor = actors[index];
      if (actor === undefined) r.fail('dot names an unknown actor');
      const counter = r.counter();
      if (prev && (prev.index > index || (prev.index === index && prev.counter >= counter))) r.fail('dots not strictly ascending');
      if (clock.get(actor)! < counter) r.fail('dot not covered by the clock');
      prev = { index, counter };
      dots.push({ actor, counter });
    }
    entries.set(key, dots);
  }
  r.end();
  return { clock, entries };
}

/** Decodes a client context; OrSetError BAD_CONTEXT on anything malformed. */
export function decodeContext(buf: Uint8Array): Clock {
  if (!(buf instanceof Uint8Array)) throw new OrSetError('BAD_CONTEXT', 'not bytes');
  const r: Reader = new Reader(asBuffer(buf), 'BAD_CONTEXT');
  r.header(CONTEXT_MAGIC);
  const { clock } = r.clock(MAX_CONTEXT_ACTORS);
  r.end();
  return clock;
}
