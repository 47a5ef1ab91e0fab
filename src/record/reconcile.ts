// Reconciling replica records of one key: the same DVV-set sync the engines
// apply on write (docs/engine.md "merge"), done in memory, so an answer and
// the repairs built from it agree with what replicas will store.
import { decodeRecord, encodeRecord } from './codec.js';
import { MAX_ENCODED_SIBLINGS, finish, sync, type ConflictMode } from './dvv.js';
import { invariant } from '../core/types.js';

/**
 * Merges records of one key (in order, each step finished in `mode`);
 * throws EngineError CORRUPT_RECORD on a bad record or causally inconsistent ones.
 */
export function reconcile(records: readonly Uint8Array[], mode: ConflictMode): Buffer {
  invariant(records.length > 0, 'reconcile is given at least one record');
  if (records.length === 1) return Buffer.from(records[0]!);
  // The read path never refuses for sibling count: the limit applies to writes.
  let acc = decodeRecord(records[0]!);
  for (const r of records.slice(1)) acc = finish(sync(acc, decodeRecord(r)), mode, MAX_ENCODED_SIBLINGS);
  return encodeRecord(acc);
}
