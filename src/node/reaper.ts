// Tombstone reaping, the node side (DYNAMO.md "Deletes are writes of a
// tombstone"; docs/engine.md "reap"; the whole protocol is described in
// docs/cluster.md "Deletes and tombstones"). This module holds the per-node
// memory of reaped keys, the REAP FLOORS, and the record arithmetic around
// them; the node (node.ts) drives the protocol.
//
// Why a node must remember what it reaped. engine.reap forgets the key's
// causal context. Two things then go wrong:
//
// 1. Counter reuse (docs/engine.md's HAZARD). A later write coordinated on
//    the key restarts this engine's actor counter at 1: a dot it issued
//    before. A stale copy holding the old dot (a late hint, a message in
//    flight, a replica that missed the reap) then shadows the new write (its
//    context covers it) or is shadowed by it (same dot, other value).
// 2. Resurrection. A stale copy of a deleted value that arrives after the
//    reap (a hint created by a retry after the reap check, a hint held by a
//    node that was unreachable, a replica whose kv.reap was lost, a data-lost
//    replica refilled from a stale hint) meets no tombstone any more and
//    comes back to life, and anti-entropy would then spread it.
//
// The floor of a reaped key is the reaped (all-tombstone) record T itself,
// kept for `ttlMs`. Every dot covered by T's context is deleted history: T's
// siblings are all tombstones, so every value whose dot T.context covers was
// superseded by a client write whose context covered it. Hence, while the
// floor is kept:
//
// - a write this node coordinates on the key gets T.context merged into its
//   context (docs/engine.md coordinate: counter = max(stored[me], ctx[me]) +
//   1, so the new dot is above every dot this node issued for the key, with
//   no engine change). A context covering T's dots discards nothing live: the
//   only stored siblings it can cover are deleted history. On a stale replica
//   the new record's context then also drops the old values — correctly;
// - a record merged into this node's objects (kv.merge, read repair, hint
//   delivery, anti-entropy, transfers) first loses every sibling T.context
//   covers; if none is left, nothing is stored;
// - a read coordinated anywhere drops the siblings covered by the floor of
//   any primary that answered "reaped" (so a fallback's stale hint is not
//   served), and tells a primary still holding only deleted history to reap
//   it too ("reap repair").
//
// Bounded: floors expire after `ttlMs` (default 24 h, long past any message
// in flight, hint retry or anti-entropy round: a stale copy must be repaired
// or delivered within it), and there are at most `maxEntries`; while the
// store is full no new reaps start (tombstones are kept instead, never
// dropped early). Durable: floors live in engine metadata, sharded
// (`reap.floors.00`..`ff`, JSON) so one reap rewrites 1/256 of them (the
// engine has no metadata delete or listing: a per-key entry could never be
// dropped; with one, this would be O(1) per reap); a floor
// is written (flushed) before the engine reaps, so a crash never leaves a
// reaped key without its floor. A node that loses its data loses its floors
// too, and with them nothing it needs: its new epoch is a new actor.
import type { Engine } from '../engine/types.js';
import { type Context, covers, decodeRecord, encodeRecord, join, keyId } from '../record/index.js';
import { bufferView } from '../util/bytes.js';

export interface ReapFloor {
  bucket: Buffer;
  key: Buffer;
  /** The reaped record (all tombstones). */
  record: Buffer;
  context: Context;
  /** When this node reaped it (its clock). */
  at: number;
  /** Its metadata shard (shardOf). */
  shard: number;
}

const SHARDS = 256;
const META_PREFIX = 'reap.floors.';

/**
 * The metadata shard of a key's floor: FNV-1a over `bucketHex/keyHex`.
 * Part of the on-disk layout (floors written before stay where they are).
 */
function shardOf(bucket: Uint8Array, key: Uint8Array): number {
  const id = `${bufferView(bucket).toString('hex')}/${bufferView(key).toString('hex')}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h >>> 0) % SHARDS;
}

type SavedEntry = [bucketHex: string, keyHex: string, recordB64: string, at: number];

export class ReapFloors {
  private readonly entries = new Map<string, ReapFloor>();
  /** Writes of each shard, one at a time (each writes the shard's current state). */
  private readonly writes = new Map<number, Promise<void>>();

  constructor(
    private readonly engine: Engine,
    private readonly opts: { ttlMs: number; maxEntries: number },
  ) {}

  /** Loads the floors from the engine's metadata, dropping expired ones. */
  async load(now: number): Promise<void> {
    this.entries.clear();
    for (let s = 0; s < SHARDS; s++) {
      const raw = await this.engine.metaGet(META_PREFIX + s.toString(16).padStart(2, '0'));
      if (!raw) continue;
      const saved = JSON.parse(raw.toString('utf8')) as { v: number; e: SavedEntry[] };
      for (const [b, k, r, at] of saved.e) {
        if (now - at >= this.opts.ttlMs) continue;
        const record = Buffer.from(r, 'base64');
        const bucket = Buffer.from(b, 'hex');
        const key = Buffer.from(k, 'hex');
        this.entries.set(keyId(bucket, key), { bucket, key, record, context: decodeRecord(record).context, at, shard: shardOf(bucket, key) });
      }
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /** No room for another floor: reaping pauses until some expire. */
  full(): boolean {
    return this.entries.size >= this.opts.maxEntries;
  }

  get(bucket: Uint8Array, key: Uint8Array): ReapFloor | undefined {
    // Every write asks: skip building the id while there are no floors at all.
    return this.entries.size === 0 ? undefined : this.entries.get(keyId(bucket, key));
  }

  /**
   * Remembers a reaped record (merged with an older floor of the key:
   * contexts only grow); durable when it resolves. Returns the floor it
   * replaced, for `restore`.
   */
  async add(bucket: Uint8Array, key: Uint8Array, record: Buffer, now: number): Promise<ReapFloor | undefined> {
    const id = keyId(bucket, key);
    const prev = this.entries.get(id);
    const rec = decodeRecord(record);
    const context = prev ? join(prev.context, rec.context) : rec.context;
    const kept = sameContext(context, rec.context) ? Buffer.from(record) : encodeRecord({ context, siblings: rec.siblings });
    const shard = prev?.shard ?? shardOf(bucket, key);
    this.entries.set(id, { bucket: Buffer.from(bucket), key: Buffer.from(key), record: kept, context, at: now, shard });
    await this.persist(shard);
    return prev;
  }

  /** Puts back the floor `add` replaced (none: forgets the key): the reap it was for did not happen. */
  async restore(bucket: Uint8Array, key: Uint8Array, prev: ReapFloor | undefined): Promise<void> {
    const id = keyId(bucket, key);
    if (prev) this.entries.set(id, prev);
    else this.entries.delete(id);
    await this.persist(shardOf(bucket, key));
  }

  /** Drops expired floors; returns how many. */
  async sweep(now: number): Promise<number> {
    const dirty = new Set<number>();
    let dropped = 0;
    for (const [id, f] of this.entries) {
      if (now - f.at < this.opts.ttlMs) continue;
      this.entries.delete(id);
      dirty.add(f.shard);
      dropped++;
    }
    for (const s of dirty) await this.persist(s);
    return dropped;
  }

  private persist(shard: number): Promise<void> {
    const prev = this.writes.get(shard) ?? Promise.resolve();
    const next = prev.then(async () => {
      const e: SavedEntry[] = [];
      for (const f of this.entries.values()) {
        if (f.shard === shard) e.push([f.bucket.toString('hex'), f.key.toString('hex'), f.record.toString('base64'), f.at]);
      }
      await this.engine.metaPut(META_PREFIX + shard.toString(16).padStart(2, '0'), Buffer.from(JSON.stringify({ v: 1, e })));
    });
    const settled = next.catch(() => undefined);
    this.writes.set(shard, settled);
    void settled.then(() => {
      if (this.writes.get(shard) === settled) this.writes.delete(shard);
    });
    return next;
  }
}


/**
 * `record` without the siblings `ctx` covers, its context raised to include
 * `ctx`; null when no sibling is left. Unchanged bytes when nothing is
 * covered and the context already includes `ctx`.
 */
export function withoutCovered(record: Uint8Array, ctx: Context): Buffer | null {
  const rec = decodeRecord(record);
  const siblings = rec.siblings.filter((s) => !covers(ctx, s));
  if (siblings.length === 0) return null;
  const context = join(rec.context, ctx);
  if (siblings.length === rec.siblings.length && sameContext(context, rec.context)) return Buffer.from(record);
  return encodeRecord({ context, siblings });
}

function sameContext(a: Context, b: Context): boolean {
  return a.length === b.length && a.every((e, i) => e.counter === b[i]!.counter && e.actor.equals(b[i]!.actor));
}

export { allCovered, isAllTombstones } from '../core/reap.js';
