// The cluster state as gossip carries it: the ring's owner table, Q node ids
// long, goes as the distinct ids once plus one index per partition (1 byte
// each for up to 256 owners, else 2). At the default Q = 4096 that is ~4 KB
// instead of ~33 KB of repeated id strings, sent every gossip interval.
// Pure; the plain form (owners as an array of ids) is still accepted.
// Whatever comes in is checked whole before any of it is used (validateState).
import { z } from 'zod';
import {
  MAX_BUCKETS,
  MAX_CLUSTER_NAME_LENGTH,
  MAX_ENTRY_VERSION,
  MAX_MEMBERS,
  hostPortProblem,
  forgottenProblem,
  memberProblem,
  validateBucketProps,
} from './membership.js';
import type { AddressCheck, BucketProps, ClusterState } from './membership.js';
import { MAX_PARTITION_BITS } from './ring.js';
import { isNodeId } from './types.js';
import { bufferView } from '../util/bytes.js';
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
  const view = bufferView(at);
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
 * A state from a gossip message or a join reply, owners unpacked (either
 * form), every field checked (validateState): anything that does not
 * validate is refused whole, with the first problems named.
 */
export function unpackState(wire: unknown, addressProblem: AddressCheck = hostPortProblem): ClusterState {
  if (wire === null || typeof wire !== 'object') throw new StateWireError('cluster state must be an object');
  const state = wire as ClusterState & { ring?: { packedOwners?: unknown } };
  if (state.ring === null || typeof state.ring !== 'object') throw new StateWireError('cluster state has no ring');
  if (state.ring.packedOwners === undefined) return validateState(state, addressProblem);
  const { packedOwners, ...ring } = state.ring;
  return validateState({ ...state, ring: { ...ring, owners: unpackOwners(packedOwners) } }, addressProblem);
}

const version = (min: number) => z.number().int().min(min).max(MAX_ENTRY_VERSION);
const stateShape = z
  .object({
    clusterName: z.string().min(1).max(MAX_CLUSTER_NAME_LENGTH),
    partitionBits: z.number().int().min(1).max(MAX_PARTITION_BITS),
    members: z.record(z.string(), z.unknown()),
    ring: z.strictObject({ partitionBits: z.number().int(), owners: z.array(z.string()), version: version(0), claimant: z.string() }),
    buckets: z.record(z.string(), z.strictObject({ props: z.record(z.string(), z.unknown()), version: version(1) })),
    // Checked whole by tokenTableProblem (src/core/tokens.ts); absent in states from before client tokens.
    tokens: z.unknown().optional(),
    // Checked whole by forgottenProblem (src/core/membership.ts); absent when no member was ever forgotten.
    forgotten: z.unknown().optional(),
  })
  .strict();

/**
 * Checks a cluster state that came from another node, field by field:
 * the shape (no unknown fields), every member (memberProblem: id, address,
 * zone, status, version bounds), the ring (Q owners, each a member; a valid
 * claimant; bounded version), every bucket (name, properties, version) and
 * the token table (tokenTableProblem).
 * Returns it as a ClusterState; throws StateWireError naming what is wrong.
 */
export function validateState(raw: unknown, addressProblem: AddressCheck = hostPortProblem): ClusterState {
  const parsed = stateShape.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || 'state'}: ${i.message}`);
    throw new StateWireError(`cluster state: ${issues.join('; ')}`);
  }
  const { clusterName, partitionBits, members, ring, buckets, tokens, forgotten } = parsed.data;
  const fail = (problem: string): never => {
    throw new StateWireError(`cluster state: ${problem}`);
  };
  const ids = Object.keys(members);
  if (ids.length === 0 || ids.length > MAX_MEMBERS) fail(`must list 1..${MAX_MEMBERS} members, not ${ids.length}`);
  for (const id of ids) {
    const problem = memberProblem(members[id], addressProblem);
    if (problem !== null) fail(problem);
    if ((members[id] as { id: string }).id !== id) fail(`member entry ${JSON.stringify(id).slice(0, 80)} holds another id`);
  }
  if (ring.partitionBits !== partitionBits) fail(`ring has ${ring.partitionBits} partition bits, the state ${partitionBits}`);
  if (ring.owners.length !== 2 ** partitionBits) fail(`ring has ${ring.owners.length} owners for ${2 ** partitionBits} partitions`);
  for (const owner of new Set(ring.owners)) {
    if (!Object.prototype.hasOwnProperty.call(members, owner)) fail(`ring owner ${JSON.stringify(owner).slice(0, 80)} is not a member`);
  }
  if (!isNodeId(ring.claimant)) fail('ring claimant is not a node id');
  const names = Object.keys(buckets);
  if (names.length > MAX_BUCKETS) fail(`more than ${MAX_BUCKETS} buckets`);
  for (const name of names) {
    const bytes = new TextEncoder().encode(name).length;
    if (bytes === 0 || bytes > 255 || name.includes('\0')) fail(`bucket name of ${bytes} bytes (1..255, no NUL)`);
    try {
      validateBucketProps(buckets[name]!.props as unknown as BucketProps);
    } catch (err) {
      fail(`bucket ${JSON.stringify(name).slice(0, 80)}: ${(err as Error).message}`);
    }
  }
  // Tokens decide who may act: a malformed table is refused here, as the sender's error.
  const tokensProblem = tokenTableProblem(tokens);
  if (tokensProblem !== null) fail(tokensProblem);
  const forgottenBad = forgottenProblem(forgotten);
  if (forgottenBad !== null) fail(forgottenBad);
  return {
    clusterName,
    partitionBits,
    members: members as ClusterState['members'],
    ring,
    buckets: buckets as unknown as ClusterState['buckets'],
    ...(tokens === undefined ? {} : { tokens: tokens as ClusterState['tokens'] }),
    ...(forgotten === undefined ? {} : { forgotten: forgotten as ClusterState['forgotten'] }),
  };
}
