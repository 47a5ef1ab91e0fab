// The cluster state as gossip carries it: the ring's owner table, Q node ids
// long, goes as the distinct ids once plus one index per partition (1 byte
// each for up to 256 owners, else 2). At the default Q = 4096 that is ~4 KB
// instead of ~33 KB of repeated id strings, sent every gossip interval.
// Pure; the plain form (owners as an array of ids) is still accepted.
import type { ClusterState } from './membership.js';
import { tokenTableProblem } from './tokens.js';
import type { NodeId } from './types.js';

/** A compact owner table: `at` holds, per partition, an index into `ids` (u8, or big-endian u16 past 256 ids). */
export interface PackedOwners {
  ids: NodeId[];
  at: Uint8Array;
}

export class StateWireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateWireError';
  }
}

export function packOwners(owners: readonly NodeId[]): PackedOwners {
  const ids = [...new Set(owners)].sort();
  const index = new Map(ids.map((id, i) => [id, i]));
  const width = ids.length <= 256 ? 1 : 2;
  const at = Buffer.allocUnsafe(owners.length * width);
  owners.forEach((owner, p) => {
    if (width === 1) at[p] = index.get(owner)!;
    else at.writeUInt16BE(index.get(owner)!, p * 2);
  });
  return { ids, at };
}

export function unpackOwners(packed: unknown): NodeId[] {
  const { ids, at } = (packed ?? {}) as { ids?: unknown; at?: unknown };
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => typeof id === 'string')) throw new StateWireError('packed owners: ids must be a non-empty array of strings');
  if (!(at instanceof Uint8Array)) throw new StateWireError('packed owners: at must be bytes');
  const width = ids.length <= 256 ? 1 : 2;
  if (at.length % width !== 0) throw new StateWireError('packed owners: at has a partial entry');
  const view = Buffer.from(at.buffer, at.byteOffset, at.byteLength);
  const owners: NodeId[] = new Array<NodeId>(at.length / width);
  for (let p = 0; p < owners.length; p++) {
    const i = width === 1 ? view[p]! : view.readUInt16BE(p * 2);
    if (i >= ids.length) throw new StateWireError(`packed owners: partition ${p} names owner ${i} of ${ids.length}`);
    owners[p] = ids[i] as NodeId;
  }
  return owners;
}

/** The state with its owner table packed, for a gossip message. */
export function packState(state: ClusterState): unknown {
  const { owners, ...ring } = state.ring;
  return { ...state, ring: { ...ring, packedOwners: packOwners(owners) } };
}

/**
 * A state from a gossip message, owners unpacked (either form). Its shape
 * is checked where it is merged (mergeStates).
 */
export function unpackState(wire: unknown): ClusterState {
  if (wire === null || typeof wire !== 'object') throw new StateWireError('cluster state must be an object');
  const state = wire as ClusterState & { ring?: { packedOwners?: unknown } };
  if (state.ring === null || typeof state.ring !== 'object') throw new StateWireError('cluster state has no ring');
  // Tokens decide who may act: a malformed table is refused here, as the sender's error.
  const tokensProblem = tokenTableProblem(state.tokens);
  if (tokensProblem !== null) throw new StateWireError(`cluster state: ${tokensProblem}`);
  if (state.ring.packedOwners === undefined) return state;
  const { packedOwners, ...ring } = state.ring;
  return { ...state, ring: { ...ring, owners: unpackOwners(packedOwners) } } as ClusterState;
}
