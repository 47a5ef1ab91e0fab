// Client-driven coordination (Dynamo §6.4): the ring as a client holds it,
// and the order in which a request for a key tries the nodes. Pure: no I/O,
// no clock. A key's preference list is computed with the very functions the
// nodes use (core/ring.ts, and the engine's blake3 ring position), so a
// client routing by the same ring picks exactly the nodes' primaries.
import { makeRing, partitionOf, preferenceList, type PreferenceList, type Ring } from '../core/ring.js';
import { MAX_N } from '../core/membership.js';
import { MAX_BUCKET_BYTES, makeBkey, position } from '../record/keys.js';
import { bufferView } from '../util/bytes.js';
import type { RingDocument } from '../http/wire.js';

/** A ring document checked and indexed for routing. */
export interface ClientRing {
  readonly ring: Ring;
  /** HTTP base URL ('http://host:port') of every member, by node id. */
  readonly urls: ReadonlyMap<string, string>;
  /** Zone of every member that declares one (as the nodes' `zonesOf`). */
  readonly zones: ReadonlyMap<string, string>;
  /** n of the buckets with their own properties, by bucket name (UTF-8). */
  readonly bucketN: ReadonlyMap<string, number>;
  readonly defaultN: number;
  /** Distinct partition owners: a node shrinks n to this, and so does the client. */
  readonly ownerCount: number;
  /** URLs of the members that are draining (docs/cluster.md "Drain"): tried only after every other node. */
  readonly draining?: ReadonlySet<string>;
}

export type RequestKind = 'read' | 'write';

/** Checks a GET /ring answer; throws a TypeError saying what is wrong (the caller keeps its old ring). */
export function parseRingDocument(doc: unknown, scheme: 'http' | 'https' = 'http'): ClientRing {
  const d = doc as Partial<RingDocument> | null;
  if (d === null || typeof d !== 'object') throw new TypeError('ring document is not an object');
  if (d.joined !== true) throw new TypeError('the node has not joined its cluster: its ring is a private one');
  if (!Array.isArray(d.members)) throw new TypeError('ring document has no members');
  if (d.buckets === null || typeof d.buckets !== 'object') throw new TypeError('ring document has no buckets');
  if (!isN(d.defaultN)) throw new TypeError(`bad defaultN ${String(d.defaultN)}`);
  let ring: Ring;
  try {
    ring = makeRing({ partitionBits: d.partitionBits!, owners: d.owners!, version: d.version!, claimant: d.claimant! });
  } catch (err) {
    throw new TypeError(`bad ring: ${(err as Error).message}`);
  }
  const urls = new Map<string, string>();
  const zones = new Map<string, string>();
  const draining = new Set<string>();
  for (const m of d.members) {
    if (!m || typeof m.id !== 'string' || typeof m.address !== 'string' || m.address === '') throw new TypeError('a ring member without id or address');
    urls.set(m.id, baseUrl(m.address, scheme));
    if (m.draining === true) draining.add(baseUrl(m.address, scheme));
    if (typeof m.zone === 'string') zones.set(m.id, m.zone);
  }
  for (const owner of new Set(ring.owners)) if (!urls.has(owner)) throw new TypeError(`owner ${owner} is not a member`);
  const bucketN = new Map<string, number>();
  for (const [name, props] of Object.entries(d.buckets)) {
    if (!isN(props?.n)) throw new TypeError(`bad n for bucket ${name}`);
    bucketN.set(name, props.n);
  }
  return { ring, urls, zones, bucketN, defaultN: d.defaultN, ownerCount: new Set(ring.owners).size, draining };
}

/**
 * The preference list (node ids) of a key as the nodes compute it, or null
 * when the request is one the nodes would refuse (bad bucket, n out of
 * range): those go to any node, which answers the error.
 */
export function keyPreference(cr: ClientRing, bucket: Uint8Array, key: Uint8Array, nRequested?: number): PreferenceList | null {
  if (bucket.length < 1 || bucket.length > MAX_BUCKET_BYTES || bucket.includes(0) || key.length < 1) return null;
  const n = nRequested ?? cr.bucketN.get(bufferView(bucket).toString('utf8')) ?? cr.defaultN;
  if (!isN(n)) return null;
  const partition = partitionOf(cr.ring, position(makeBkey(bucket, key)));
  return preferenceList(cr.ring, partition, Math.min(n, cr.ownerCount), cr.zones);
}

/**
 * The nodes to try, in order, for a request on a key: the primaries first —
 * a write starts at the first primary (the key's usual coordinator), a read
 * at the primary `spread` picks (so reads share the load) — then the other
 * owners clockwise (any node can take any request and forwards it). Nodes
 * that drain come after the others (they answer 503 NODE_DRAINING), and
 * nodes `isDown` says recently failed go last, each group keeping its order.
 */
export function routeTargets(cr: ClientRing, pl: PreferenceList, kind: RequestKind, spread: number, isDown: (url: string) => boolean): string[] {
  const primaries = pl.primaries.map((id) => cr.urls.get(id)!);
  if (kind === 'read' && primaries.length > 1) {
    const start = spread % primaries.length;
    primaries.push(...primaries.splice(0, start));
  }
  const ordered = [...primaries, ...pl.fallbacks.map((id) => cr.urls.get(id)!)];
  const rank = (u: string): number => (isDown(u) ? 2 : cr.draining?.has(u) === true ? 1 : 0);
  return ordered.map((u) => [u, rank(u)] as const).sort((a, b) => a[1] - b[1]).map(([u]) => u);
}

/** 'host:port' or 'http(s)://host:port' → 'http://host:port' (or `scheme`; no trailing slash). */
export function baseUrl(address: string, scheme: 'http' | 'https' = 'http'): string {
  const trimmed = address.trim().replace(/\/+$/, '');
  if (!trimmed) throw new TypeError('empty node address');
  return /^https?:\/\//i.test(trimmed) ? trimmed : `${scheme}://${trimmed}`;
}

function isN(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_N;
}
