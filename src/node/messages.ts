// Peer messages of the node runtime (Riak's riak_kv_requests.erl): every
// request body and reply the node itself serves or sends, defined once as a
// zod schema. Requests are decoded here at the one boundary where they enter
// (decodePeerRequest in onPeerRequest): a malformed body is a typed
// BAD_REQUEST reply, never a throw from inside a handler. Replies are checked
// where they come back (decodePeerReply).
//
// The services' messages ('aae.', 'xfer.', 'sets.') are in this one table
// too, rather than in one file per service: one table is what the decode
// path, the exhaustive handler maps (a type without a handler does not
// compile) and the peer-frame fuzz test (test/transport/peer-fuzz.test.ts)
// enumerate, and a schema needs nothing of its service but a few limits,
// which live here.
import { bufferView } from '../util/bytes.js';
import { z } from 'zod';
import { NODE_ID_RE } from '../transport/frames.js';
import { MAX_ADDRESS_LENGTH, MAX_ZONE_LENGTH } from '../core/membership.js';
import { MAX_WRITE_FORWARDS } from '../core/apl.js';
import { NodeError } from './errors.js';

/** Most records one 'kv.mergebatch' request may carry. */
export const MAX_MERGE_BATCH = 1_000;
/** Longest forwarded-write id accepted (see RingkvNode.coordinateForwarded). */
export const MAX_WRITE_ID_LENGTH = 256;
/** Most givers a replica still receiving a partition may name in a kv.get reply. */
export const MAX_PENDING_SOURCES = 64;
/** Most keys one 'aae.get' may ask for (anti-entropy asks 256 at a time). */
export const MAX_AAE_GET_ITEMS = 1_024;
/** Most objects one 'xfer.batch' may carry (TransferOptions.batch is at most this). */
export const MAX_TRANSFER_BATCH = 10_000;
/** Most partitions one message may name (xfer.finish, the skip list of aae.roots): 2^16, more than any ring has. */
export const MAX_PARTITIONS_PER_MESSAGE = 1 << 16;
/** Most elements one 'sets.update' may add plus remove (SET_LIMITS.maxOps). */
export const MAX_SET_OPS = 1_000;
/** Most objects (or bucket names) one 'list.page' reply may carry. */
export const MAX_LIST_PAGE = 10_000;
/** Most partitions one 'list.page' may cover. */
export const MAX_LIST_RUN = 256;

/** Binary fields arrive as Uint8Array (msgpack) or Buffer (simulator); handlers get a Buffer view, no copy. */
const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected binary').transform(bufferView);
const optBytes = bytes.nullish().transform((v) => v ?? null);
const flag = z.boolean().optional();
/** A count or index: a non-negative safe integer. */
const uint = z.number().int().nonnegative();
/** Tree geometry [partitionBits, branchBits, segmentBits]; the server compares it with its own. */
const geometry = z.tuple([uint, uint, uint]);
/** Optional quorum numbers: core/quorum.ts checks their ranges. */
const optNumber = z.number().optional();

const mergeItem = z.object({ b: bytes, k: bytes, record: bytes, lww: flag });

/** One entry per peer request type: its body and its reply. */
export const PEER_MESSAGES = {
  ping: { req: z.unknown(), res: z.object({}).loose() },
  'kv.get': {
    req: z.object({ b: bytes, k: bytes, ring: z.number().optional(), hints: flag }),
    res: z.object({ record: optBytes, reaped: optBytes.optional(), pending: z.array(z.string()).max(MAX_PENDING_SOURCES).nullish() }),
  },
  'kv.merge': {
    req: z.object({ b: bytes, k: bytes, record: bytes, lww: flag, durable: flag, hint: z.string().regex(NODE_ID_RE, 'not a node id').nullish() }),
    res: z.object({ durable: z.boolean(), hinted: flag }),
  },
  'kv.mergebatch': {
    req: z.object({ items: z.array(mergeItem).max(MAX_MERGE_BATCH), durable: flag }),
    res: z.object({ durable: z.boolean(), merged: z.number() }),
  },
  'kv.reapcheck': {
    req: z.object({ b: bytes, k: bytes }),
    res: z.object({ record: optBytes, hinted: z.boolean(), ringVersion: z.number().optional(), claimant: z.string().optional() }),
  },
  'kv.reap': {
    req: z.object({ b: bytes, k: bytes, record: bytes }),
    res: z.object({ reaped: z.boolean() }),
  },
  'kv.put': {
    req: z.object({
      b: bytes,
      k: bytes,
      context: optBytes,
      value: optBytes,
      // The value's content type and metadata: bounded here, checked exactly by the coordinator's engine.
      ct: z.string().max(1024).optional(),
      meta: z.array(z.tuple([z.string().max(256), z.string().max(16_384)])).max(64).optional(),
      n: z.number().optional(),
      w: z.number().optional(),
      dw: z.number().optional(),
      pw: z.number().optional(),
      timeoutMs: z.number().optional(),
      wid: z.string().min(1).max(MAX_WRITE_ID_LENGTH).optional(),
      // Times the write was handed on, this one included (absent: 1; src/core/apl.ts forwardedWriteStep).
      fwd: z.number().int().min(1).max(MAX_WRITE_FORWARDS).optional(),
    }),
    res: z.object({ record: bytes, acks: z.number() }),
  },
  gossip: {
    // The state's own shape is checked by unpackState (src/core/state-wire.ts).
    req: z.object({ state: z.unknown() }),
    res: z.object({ state: z.unknown().optional() }),
  },
  join: {
    req: z.object({
      cluster: z.string(),
      // Bounds here; the address's form and the zone's characters are checked by the handler (newMemberProblem).
      member: z.strictObject({
        id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
        address: z.string().min(1).max(MAX_ADDRESS_LENGTH),
        zone: z.string().min(1).max(MAX_ZONE_LENGTH).optional(),
      }),
      // Joining as the replacement of this member (docs/cluster.md "Replace").
      replaces: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional(),
    }),
    // The admitted state (JSON form); the joiner checks its cluster name.
    res: z.object({ state: z.object({ clusterName: z.string() }).loose() }),
  },

  // Anti-entropy (src/node/anti-entropy.ts). Index lists travel as packed
  // big-endian u16/u32 groups; their widths and ranges are checked against
  // the engine's geometry by the handler (the schema cannot know it).
  'aae.roots': {
    req: z.object({ q: bytes, g: geometry }),
    res: z.object({ hashes: bytes, skip: z.array(uint).max(MAX_PARTITIONS_PER_MESSAGE).optional() }),
  },
  'aae.root': { req: z.object({ p: uint, g: geometry }), res: z.object({ hash: bytes }) },
  'aae.branches': { req: z.object({ p: uint }), res: z.object({ hashes: bytes }) },
  'aae.segments': { req: z.object({ p: uint, q: bytes }), res: z.object({ hashes: bytes }) },
  'aae.keys': { req: z.object({ p: uint, q: bytes }), res: z.object({ keys: bytes }) },
  'aae.get': {
    req: z.object({ items: z.array(z.object({ b: bytes, k: bytes })).max(MAX_AAE_GET_ITEMS) }),
    res: z.object({ records: z.array(optBytes).max(MAX_AAE_GET_ITEMS) }),
  },

  // Partition transfer (src/node/transfer.ts).
  'xfer.batch': {
    req: z.object({ partition: uint.optional(), items: z.array(z.object({ b: bytes, k: bytes, record: bytes })).max(MAX_TRANSFER_BATCH) }),
    res: z.object({ merged: uint }),
  },
  'xfer.finish': {
    // {partitions, ring}; {partition, ring} from givers that sent one at a time.
    req: z
      .object({ partitions: z.array(uint).max(MAX_PARTITIONS_PER_MESSAGE).optional(), partition: uint.optional(), ring: uint })
      .refine((v) => v.partitions !== undefined || v.partition !== undefined, 'partitions or partition required'),
    res: z.object({}).loose(),
  },
  'xfer.status': { req: z.object({ partition: uint }), res: z.object({ ring: uint, sending: z.boolean() }) },

  // Listing (src/node/listing.ts): one replica's page of a run of
  // partitions [p, pEnd) from a scan point (p, after). b null: every bucket.
  // values false: records with their values emptied (keys listing);
  // buckets: distinct live bucket names only (after `last`). The reply's
  // (at, through): the replica read every object before that point.
  'list.page': {
    req: z.object({
      p: uint,
      pEnd: uint.optional(),
      after: optBytes,
      b: optBytes,
      limit: z.number().int().min(1).max(MAX_LIST_PAGE),
      values: flag,
      buckets: flag,
      last: optBytes,
      ring: uint,
    }),
    res: z.object({
      items: z.array(z.object({ b: bytes, k: bytes, record: bytes })).max(MAX_LIST_PAGE),
      buckets: z.array(bytes).max(MAX_LIST_PAGE).optional(),
      at: uint.optional(),
      through: optBytes,
      pending: z.array(z.string()).max(MAX_PENDING_SOURCES).nullish(),
      // The replica routes by another ring than the request's (its own version): nothing was read.
      stale: flag,
      ring: uint.optional(),
    }),
  },

  // Sets (src/node/sets.ts): an update forwarded to a primary of the key.
  'sets.update': {
    req: z.object({
      b: bytes,
      k: bytes,
      add: z.array(bytes).max(MAX_SET_OPS).nullish(),
      remove: z.array(bytes).max(MAX_SET_OPS).nullish(),
      context: optBytes,
      r: optNumber,
      w: optNumber,
      dw: optNumber,
      n: optNumber,
      timeoutMs: optNumber,
    }),
    res: z.object({ state: bytes }),
  },
} as const;

export type PeerMessageType = keyof typeof PEER_MESSAGES;
/** The messages background services serve (registered with ServiceContext.registerService). */
export type ServiceMessageType = Extract<PeerMessageType, `aae.${string}` | `xfer.${string}` | `sets.${string}` | `list.${string}`>;
/** The messages the node itself serves. */
export type NodeMessageType = Exclude<PeerMessageType, ServiceMessageType>;
/** What a sender passes (Uint8Array or Buffer for binary fields). */
export type PeerRequestBody<T extends PeerMessageType> = z.input<(typeof PEER_MESSAGES)[T]['req']>;
/** What a handler gets (Buffers, defaults applied). */
export type PeerRequest<T extends PeerMessageType> = z.output<(typeof PEER_MESSAGES)[T]['req']>;
/** What a handler returns. */
export type PeerReplyBody<T extends PeerMessageType> = z.input<(typeof PEER_MESSAGES)[T]['res']>;
/** What a sender gets back, checked. */
export type PeerReply<T extends PeerMessageType> = z.output<(typeof PEER_MESSAGES)[T]['res']>;

export function isPeerMessageType(type: string): type is PeerMessageType {
  return Object.prototype.hasOwnProperty.call(PEER_MESSAGES, type);
}

function describe(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : 'body'}: ${i.message}`)
    .join('; ');
}

/** A handler of one request type: gets the decoded body, returns the reply. */
export type PeerHandler<T extends PeerMessageType> = (from: string, req: PeerRequest<T>) => Promise<PeerReplyBody<T>>;
/** Handlers a service registers, one per message type it serves. */
export type ServiceHandlers<T extends ServiceMessageType> = { [M in T]: PeerHandler<M> };

export const PEER_MESSAGE_TYPES = Object.keys(PEER_MESSAGES) as PeerMessageType[];

export function isServiceMessageType(type: PeerMessageType): type is ServiceMessageType {
  return type.startsWith('aae.') || type.startsWith('xfer.') || type.startsWith('sets.') || type.startsWith('list.');
}

/** Decodes a request body of a known type; a malformed one is BAD_REQUEST naming the field. */
export function decodePeerRequest<T extends PeerMessageType>(type: T, body: unknown): PeerRequest<T> {
  const parsed = PEER_MESSAGES[type].req.safeParse(body);
  if (!parsed.success) throw new NodeError('BAD_REQUEST', `malformed '${type}' request: ${describe(parsed.error)}`);
  return parsed.data as PeerRequest<T>;
}

/** Checks a peer's reply to a request of `type`; a malformed one fails the request (the peer, not this node, is wrong). */
export function decodePeerReply<T extends PeerMessageType>(type: T, reply: unknown): PeerReply<T> {
  const parsed = PEER_MESSAGES[type].res.safeParse(reply);
  if (!parsed.success) throw new NodeError('INTERNAL', `malformed '${type}' reply: ${describe(parsed.error)}`);
  return parsed.data as PeerReply<T>;
}
