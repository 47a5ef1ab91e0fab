// Reconciling replica records on the read path: the same DVV-set merge the
// engines apply on write (docs/engine.md "merge"), done in memory on the
// coordinator so the answer and the read repairs agree with what replicas
// will store.
import { HARD_LIMITS, type ConflictMode } from '../engine/types.js';
import { decodeRecord, encodeRecord } from '../engine/pure/codec.js';
import { merge } from '../engine/pure/dvv.js';

/** Merges records of one key; throws EngineError CORRUPT_RECORD on a bad record. */
export function reconcile(records: readonly Uint8Array[], mode: ConflictMode): Buffer {
  if (records.length === 0) throw new Error('nothing to reconcile');
  if (records.length === 1) return Buffer.from(records[0]!);
  // The read path never refuses for sibling count: the limit applies to writes.
  let acc = decodeRecord(records[0]!);
  for (const r of records.slice(1)) acc = merge(acc, decodeRecord(r), mode, HARD_LIMITS.maxSiblings);
  return encodeRecord(acc);
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
