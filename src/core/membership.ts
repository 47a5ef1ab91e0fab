// Cluster state as gossiped between nodes: members, the ring and bucket
// properties. Every entry carries a version; merge keeps the higher one and
// breaks ties by a fixed order on the entry's content, so any two nodes that
// have seen the same entries hold the same state, whatever order they met
// them in. States are plain JSON-able data (the transport msgpacks them);
// every operation returns a new state and never mutates its input.
import { claim, isBalanced } from './claim.js';
import { type Ring, assertRing, ownerCounts, partitionCount } from './ring.js';
import { type TokenTable, assertTokenTable, canonicalTokens, mergeTokens } from './tokens.js';
import { type NodeId, compareIds, invariant, isNodeId } from './types.js';
import type { ConflictMode } from '../record/dvv.js';

export type MemberStatus = 'valid' | 'leaving' | 'left';

export interface Member {
  readonly id: NodeId;
  /** `host:port`; HTTP and peer traffic share it. */
  readonly address: string;
  readonly zone?: string;
  readonly status: MemberStatus;
  readonly version: number;
  /**
   * Set by the member itself while it drains (docs/cluster.md "Drain"): it
   * still stores replicas but coordinates no new client request, so clients
   * and coordinators route around it. Absent when not draining.
   */
  readonly draining?: true;
  /** When the claimant marked it 'left' (the claimant's clock, ms): departed-member expiry counts from here. */
  readonly leftAtMs?: number;
  /** A member admitted to take over this member's partitions one-for-one (replace); the claimant applies it, then clears it. */
  readonly replaces?: NodeId;
}

/**
 * A member removed from the member list for good (forget, or departed-member
 * expiry): entries of it at this version or older are dropped by merge, so it
 * does not come back through old gossip; a re-admission gets a higher version.
 */
export interface ForgottenMember {
  readonly version: number;
  /** When it was forgotten (the forgetting node's clock, ms): the oldest tombstones go first past MAX_FORGOTTEN. */
  readonly atMs: number;
}

/** What an operator gives to add a node. */
export interface NewMember {
  readonly id: NodeId;
  readonly address: string;
  readonly zone?: string;
}

export type { ConflictMode };

export interface BucketProps {
  /** Replicas per key. */
  readonly n: number;
  /** Replies a read waits for. */
  readonly r: number;
  /** Acks a write waits for. */
  readonly w: number;
  /** Of those, acks that must be durable (flushed). */
  readonly dw: number;
  readonly mode: ConflictMode;
  /** A CRDT type whose siblings merge automatically. */
  readonly type?: 'set';
  /**
   * Who a read asks (docs/cluster.md "Read fan-out"): `all` N replicas
   * (absent: the default, Dynamo's way) or `quorum`, R of them first and the
   * others only when one fails, is slow or answers differently.
   */
  readonly read_fanout?: ReadFanout;
}

/** A bucket's read fan-out (BucketProps.read_fanout). */
export type ReadFanout = 'all' | 'quorum';
export const READ_FANOUTS: readonly ReadFanout[] = ['all', 'quorum'];

export interface BucketEntry {
  readonly props: BucketProps;
  readonly version: number;
}

export interface ClusterState {
  readonly clusterName: string;
  readonly partitionBits: number;
  readonly members: Readonly<Record<NodeId, Member>>;
  readonly ring: Ring;
  readonly buckets: Readonly<Record<string, BucketEntry>>;
  /** Client bearer tokens by id (src/core/tokens.ts); absent in states written before tokens existed. */
  readonly tokens?: TokenTable;
  /** Tombstones of forgotten members (see ForgottenMember); absent when none was ever forgotten. */
  readonly forgotten?: Readonly<Record<NodeId, ForgottenMember>>;
}

export const DEFAULT_BUCKET_PROPS: BucketProps = Object.freeze({ n: 3, r: 2, w: 2, dw: 0, mode: 'siblings' });
/** Most replicas of a key: the bound of a bucket's n and of every quorum number (core/quorum.ts). */
export const MAX_N = 16;

/** Longest zone name: printable ASCII without spaces. */
export const MAX_ZONE_LENGTH = 64;
export const ZONE_RE = /^[\x21-\x7e]{1,64}$/;
/** Longest member address (a 253-character host name, `:` and a port). */
export const MAX_ADDRESS_LENGTH = 261;
/**
 * Highest version of a member, bucket or ring entry. Each change adds one,
 * so no real cluster comes near; the bound keeps a forged entry from taking
 * a version nothing could ever supersede (or one that is not an exact integer).
 */
export const MAX_ENTRY_VERSION = 2 ** 31 - 1;
/** Most members a cluster state may list (left ones included). */
export const MAX_MEMBERS = 1024;
/** Most configured buckets a cluster state may carry. */
export const MAX_BUCKETS = 65_536;
export const MAX_CLUSTER_NAME_LENGTH = 128;
/** Tombstones of forgotten members kept at most; past it the oldest go (a member forgotten that long ago cannot come back through gossip anyway). */
export const MAX_FORGOTTEN = 1024;
/** Latest time a leftAtMs or atMs may carry (year 2255): bounds a forged entry. */
export const MAX_TIME_MS = 9e12;

/** Checks an address; returns what is wrong with it, or null. Transports define what an address is. */
export type AddressCheck = (address: string) => string | null;

const HOST_NAME_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4_RE = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6_RE = /^[0-9A-Fa-f:.]{2,45}$/;

/**
 * `host:port` as peers dial it: a host name, an IPv4 address or a
 * bracketed IPv6 address, and a port in 1..65535. Unspecified addresses
 * (0.0.0.0, [::]) are refused: no peer can reach a node there.
 */
export function hostPortProblem(address: string): string | null {
  if (typeof address !== 'string' || address.length === 0 || address.length > MAX_ADDRESS_LENGTH) {
    return `address must be host:port of at most ${MAX_ADDRESS_LENGTH} characters`;
  }
  const at = address.lastIndexOf(':');
  if (at <= 0) return `address ${JSON.stringify(address)} is not host:port`;
  const host = address.slice(0, at);
  const port = address.slice(at + 1);
  if (!/^[1-9]\d{0,4}$/.test(port) || Number(port) > 65535) return `address ${JSON.stringify(address)} has no port in 1..65535`;
  if (host.startsWith('[')) {
    const inner = host.slice(1, -1);
    if (!host.endsWith(']') || !IPV6_RE.test(inner) || !inner.includes(':')) return `address ${JSON.stringify(address)} has a bad IPv6 host`;
    if (/^[0:]+$/.test(inner)) return `address ${JSON.stringify(address)} is unspecified (no peer can reach it)`;
    return null;
  }
  if (IPV4_RE.test(host)) return host === '0.0.0.0' ? `address ${JSON.stringify(address)} is unspecified (no peer can reach it)` : null;
  if (/^[\d.]+$/.test(host) || !HOST_NAME_RE.test(host)) return `address ${JSON.stringify(address)} has a bad host`;
  return null;
}

function isEntryVersion(v: unknown, min = 1): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= MAX_ENTRY_VERSION;
}

/** What is wrong with a member entry from the network (every field and no others), or null. */
export function memberProblem(m: unknown, addressProblem: AddressCheck = hostPortProblem): string | null {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return 'member must be an object';
  const { id, address, zone, status, version, draining, leftAtMs, replaces, ...rest } = m as Record<string, unknown>;
  if (!isNodeId(id)) return `member id ${JSON.stringify(id)?.slice(0, 80)} is not [A-Za-z0-9._-]{1,64}`;
  const extra = Object.keys(rest);
  if (extra.length > 0) return `member ${id} has unknown fields ${extra.slice(0, 3).join(', ')}`;
  if (typeof address !== 'string') return `member ${id} has no address`;
  const bad = addressProblem(address);
  if (bad !== null) return `member ${id}: ${bad}`;
  if (zone !== undefined && (typeof zone !== 'string' || !ZONE_RE.test(zone))) {
    return `member ${id} has a bad zone (1..${MAX_ZONE_LENGTH} printable characters, no spaces)`;
  }
  if (status !== 'valid' && status !== 'leaving' && status !== 'left') return `member ${id} has a bad status ${JSON.stringify(status)?.slice(0, 20)}`;
  if (!isEntryVersion(version)) return `member ${id} has a bad version (an integer in 1..${MAX_ENTRY_VERSION})`;
  if (draining !== undefined && draining !== true) return `member ${id}: draining must be true or absent`;
  if (leftAtMs !== undefined && !isTimeMs(leftAtMs)) return `member ${id} has a bad leftAtMs`;
  if (leftAtMs !== undefined && status !== 'left') return `member ${id} has leftAtMs but is '${String(status)}'`;
  if (replaces !== undefined && (!isNodeId(replaces) || replaces === id)) return `member ${id} has a bad replaces`;
  return null;
}

function isTimeMs(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_TIME_MS;
}

/** What is wrong with a tombstone table from the network, or null. */
export function forgottenProblem(table: unknown): string | null {
  if (table === undefined) return null;
  if (table === null || typeof table !== 'object' || Array.isArray(table)) return 'forgotten must be an object';
  const ids = Object.keys(table);
  if (ids.length > MAX_FORGOTTEN) return `more than ${MAX_FORGOTTEN} forgotten members`;
  for (const id of ids) {
    if (!isNodeId(id)) return `forgotten id ${JSON.stringify(id).slice(0, 80)} is not a node id`;
    const e = (table as Record<string, unknown>)[id] as Record<string, unknown> | null;
    if (e === null || typeof e !== 'object' || Array.isArray(e)) return `forgotten ${id} must be an object`;
    const { version, atMs, ...rest } = e;
    if (Object.keys(rest).length > 0) return `forgotten ${id} has unknown fields`;
    if (!isEntryVersion(version) || !isTimeMs(atMs)) return `forgotten ${id} needs an integer version and atMs`;
  }
  return null;
}

/** What is wrong with a member an operator or a joining node names, or null. */
export function newMemberProblem(m: NewMember, addressProblem: AddressCheck = hostPortProblem): string | null {
  return memberProblem({ ...m, status: 'valid', version: 1 }, addressProblem);
}

export type ClusterStateErrorCode =
  | 'INVALID_CLUSTER'
  | 'INVALID_MEMBER'
  | 'MEMBER_EXISTS'
  | 'UNKNOWN_MEMBER'
  | 'INVALID_TRANSITION'
  | 'INVALID_BUCKET'
  | 'INVALID_STATE'
  | 'CLUSTER_MISMATCH'
  | 'FORCE_REQUIRED';

/** A request the current state cannot honour (the caller's fault, not a bug). */
export class ClusterStateError extends Error {
  constructor(
    readonly code: ClusterStateErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ClusterStateError';
  }
}

export interface BucketPropsProblem {
  readonly field: string;
  readonly message: string;
}

/** Bucket properties that break a rule; `fields` names every bad one. */
export class BucketPropsError extends Error {
  readonly code = 'INVALID_BUCKET_PROPS';
  readonly fields: string[];
  constructor(readonly problems: readonly BucketPropsProblem[]) {
    super(`invalid bucket properties: ${problems.map((p) => `${p.field} ${p.message}`).join('; ')}`);
    this.name = 'BucketPropsError';
    this.fields = problems.map((p) => p.field);
  }
}

// ---------------------------------------------------------------------------
// Creating and changing a state

export function createCluster(self: NewMember, partitionBits: number, clusterName: string): ClusterState {
  partitionCount(partitionBits);
  if (typeof clusterName !== 'string' || clusterName.length === 0) {
    throw new ClusterStateError('INVALID_CLUSTER', 'cluster name must be a non-empty string');
  }
  const member = newMember(self, 1);
  return {
    clusterName,
    partitionBits,
    members: { [member.id]: member },
    ring: {
      partitionBits,
      owners: claim(null, [claimMember(member)], partitionBits),
      version: 1,
      claimant: member.id,
    },
    buckets: {},
    tokens: {},
  };
}

/**
 * Admits a node (or re-admits one that left). The ring is not touched here:
 * the claimant notices the new member and reclaims. Adding a member already
 * present with the same address and zone changes nothing.
 */
export function addMember(state: ClusterState, member: NewMember): ClusterState {
  const known = state.members[member.id];
  if (known !== undefined && known.status !== 'left') {
    if (known.address === member.address && known.zone === member.zone) return state;
    throw new ClusterStateError('MEMBER_EXISTS', `${member.id} is already a member at ${known.address}`);
  }
  // Above its tombstone, if it was forgotten: else merge would drop the new entry.
  const floor = Math.max(known?.version ?? 0, state.forgotten?.[member.id]?.version ?? 0);
  return withMember(state, newMember(member, floor + 1));
}

/** Starts a node's departure; the claimant moves its partitions away. */
export function markLeaving(state: ClusterState, id: NodeId): ClusterState {
  const member = memberOf(state, id);
  if (member.status === 'leaving') return state;
  if (member.status === 'left') throw new ClusterStateError('INVALID_TRANSITION', `${id} has already left`);
  if (validMembers(state).length === 1) {
    throw new ClusterStateError('INVALID_TRANSITION', `${id} is the last valid member and cannot leave`);
  }
  return withMember(state, { ...member, status: 'leaving', version: member.version + 1 });
}

/**
 * Removes a node for good. The claimant does this once a leaving node owns
 * nothing; an operator may also force it for a node that is gone.
 */
export function markLeft(state: ClusterState, id: NodeId, nowMs?: number): ClusterState {
  const member = memberOf(state, id);
  if (member.status === 'left') return state;
  if (member.status === 'valid' && validMembers(state).length === 1) {
    throw new ClusterStateError('INVALID_TRANSITION', `${id} is the last valid member and cannot leave`);
  }
  return withMember(state, leftEntry(member, nowMs));
}

/** A member's entry once it left: no drain or replacement outstanding, the time it left when known. */
function leftEntry(member: Member, nowMs: number | undefined): Member {
  const { draining: _d, replaces: _r, leftAtMs: _l, ...rest } = member;
  return { ...rest, status: 'left', version: member.version + 1, ...(nowMs === undefined ? {} : { leftAtMs: nowMs }) };
}

// ---------------------------------------------------------------------------
// Drain, replace, forget, departed-member expiry (docs/cluster.md)

/**
 * The member's own drain flag set (or cleared). Only the member itself
 * changes it: a draining node announces it, and clears it when it runs
 * again. Unchanged state when the flag already is as asked.
 */
export function setDraining(state: ClusterState, id: NodeId, draining: boolean): ClusterState {
  const member = memberOf(state, id);
  if ((member.draining === true) === draining) return state;
  if (draining && member.status === 'left') throw new ClusterStateError('INVALID_TRANSITION', `${id} has left: nothing to drain`);
  const { draining: _d, ...rest } = member;
  return withMember(state, { ...rest, version: member.version + 1, ...(draining ? { draining: true as const } : {}) });
}

/** Ids of the members that are draining. */
export function drainingMembers(state: ClusterState): Set<NodeId> {
  return new Set(Object.values(state.members).filter((m) => m.draining === true).map((m) => m.id));
}

/**
 * Marks `replacement` (a valid member) as the one to take over `dead`'s
 * partitions one-for-one. The claimant applies it (maybeReclaim): every
 * partition `dead` owns goes to `replacement`, `dead` becomes 'left', and
 * the replacement's mark is cleared, in one ring change; the other replicas
 * of those partitions stream them to it (transfer-plan.ts: a giver that
 * left is replaced by the first old replica still a member).
 */
export function markReplacing(state: ClusterState, dead: NodeId, replacement: NodeId): ClusterState {
  const old = memberOf(state, dead);
  const fresh = memberOf(state, replacement);
  if (dead === replacement) throw new ClusterStateError('INVALID_TRANSITION', 'a node cannot replace itself');
  if (fresh.status !== 'valid') throw new ClusterStateError('INVALID_TRANSITION', `${replacement} is '${fresh.status}': only a valid member can take over partitions`);
  if (old.status === 'left') throw new ClusterStateError('INVALID_TRANSITION', `${dead} has already left: it owns nothing to take over`);
  const other = Object.values(state.members).find((m) => m.replaces === dead && m.id !== replacement);
  if (other !== undefined) throw new ClusterStateError('INVALID_TRANSITION', `${other.id} is already replacing ${dead}`);
  if (fresh.replaces === dead) return state;
  return withMember(state, { ...fresh, replaces: dead, version: fresh.version + 1 });
}

/** What forget must do with a member: refuse (why), first mark it 'left' (force), or remove it now. */
export type ForgetStep = { kind: 'refuse'; code: ClusterStateErrorCode; reason: string } | { kind: 'mark-left' } | { kind: 'wait-ring' } | { kind: 'remove' };

/**
 * The next step of forgetting `id`, asked on node `self`. A member that
 * left and owns nothing is removed; one that is valid or leaving, or still
 * owns partitions, needs `force` (it is gone for good: its partitions are
 * claimed by the others and re-replicated from the other replicas), and is
 * first marked 'left' so that the claimant reassigns them. Refused: self
 * (ask another node), the last valid member, an unknown id. 'wait-ring':
 * it left but the ring still names it (the claimant has yet to reclaim).
 */
export function forgetStep(state: ClusterState, id: NodeId, self: NodeId, force: boolean): ForgetStep {
  const member = state.members[id];
  if (member === undefined) return { kind: 'refuse', code: 'UNKNOWN_MEMBER', reason: `${id} is not a member` };
  if (id === self) return { kind: 'refuse', code: 'INVALID_TRANSITION', reason: `${id} cannot forget itself: send the request to another node` };
  const owns = state.ring.owners.some((o) => o === id);
  if (member.status === 'left' && !owns) return { kind: 'remove' };
  if (!force) {
    const what = owns ? `owns ${state.ring.owners.filter((o) => o === id).length} partitions` : `is '${member.status}'`;
    return { kind: 'refuse', code: 'FORCE_REQUIRED', reason: `${id} ${what}: forgetting it hands them to the others (re-replicated from the other replicas); confirm with force` };
  }
  if (member.status !== 'left' && validMembers(state).filter((m) => m.id !== id).length === 0) {
    return { kind: 'refuse', code: 'INVALID_TRANSITION', reason: `${id} is the last valid member` };
  }
  // Left, but the ring still names it: the claimant reassigns its partitions at its next round.
  return member.status === 'left' ? { kind: 'wait-ring' } : { kind: 'mark-left' };
}

/** Removes a member that left and owns nothing, leaving a tombstone (ForgottenMember) that keeps it out of gossip. */
export function removeMember(state: ClusterState, id: NodeId, nowMs: number): ClusterState {
  const member = memberOf(state, id);
  if (member.status !== 'left') throw new ClusterStateError('INVALID_TRANSITION', `${id} is '${member.status}': only a member that left can be removed`);
  if (state.ring.owners.includes(id)) throw new ClusterStateError('INVALID_TRANSITION', `${id} still owns partitions`);
  invariant(isTimeMs(nowMs), () => `bad time ${nowMs}`);
  const { [id]: _gone, ...members } = state.members;
  const forgotten = pruneForgotten({ ...state.forgotten, [id]: { version: member.version, atMs: nowMs } });
  const next = { ...state, members: sortedRecord(members), forgotten };
  assertClusterState(next);
  return next;
}

/**
 * Departed-member expiry, run by every node after gossip; acts only on the
 * claimant: members that left `expiryMs` or more ago (by their leftAtMs)
 * are removed (removeMember); a left member without leftAtMs (marked left
 * before the field existed, or by an operator's forced leave) gets it now,
 * so its time starts. Null when there is nothing to do; expiryMs < 0 turns
 * expiry off.
 */
export function expireDeparted(state: ClusterState, selfId: NodeId, nowMs: number, expiryMs: number): ClusterState | null {
  if (expiryMs < 0 || claimantOf(state) !== selfId) return null;
  let next = state;
  for (const m of Object.values(state.members)) {
    if (m.status !== 'left' || state.ring.owners.includes(m.id)) continue;
    if (m.leftAtMs === undefined) next = withMember(next, { ...m, leftAtMs: nowMs, version: m.version + 1 });
    else if (nowMs - m.leftAtMs >= expiryMs) next = removeMember(next, m.id, nowMs);
  }
  return next === state ? null : next;
}

/** The newest tombstones, MAX_FORGOTTEN at most (deterministic: merge stays associative). */
function pruneForgotten(table: Readonly<Record<NodeId, ForgottenMember>>): Record<NodeId, ForgottenMember> {
  let ids = Object.keys(table);
  if (ids.length > MAX_FORGOTTEN) {
    ids = ids.sort((x, y) => table[y]!.atMs - table[x]!.atMs || compareIds(x, y)).slice(0, MAX_FORGOTTEN);
  }
  return sortedRecord(Object.fromEntries(ids.map((id) => [id, table[id]!])));
}

/** The properties of a bucket; defaults when it was never configured. */
export function bucketProps(state: ClusterState, name: string): BucketProps {
  return state.buckets[name]?.props ?? DEFAULT_BUCKET_PROPS;
}

/** What the caller knows of the bucket's data, for changes that would strand it. */
export interface BucketContents {
  /** The bucket holds at least one object (as far as the caller can see: a node checks its own engine). */
  readonly holdsObjects: boolean;
}

/**
 * Changes some properties of a bucket (the rest keep their current values,
 * or the defaults). Setting `type: undefined` or `type: null` clears the CRDT type.
 *
 * Refused (BucketPropsError): combinations that cannot work (`type: 'set'`
 * with `mode: 'lww'`: set operations need siblings to merge), and changing
 * `type` (plain to set, or set to plain) on a bucket that holds objects —
 * they would answer BUCKET_IS_A_SET / NOT_A_SET from then on. `contents`
 * says whether it holds any; without it a type change is not checked.
 */
export function setBucketProps(
  state: ClusterState,
  name: string,
  change: Partial<BucketProps> | Record<string, unknown>,
  contents?: BucketContents,
): ClusterState {
  assertBucketName(name);
  const entry = state.buckets[name];
  const current = bucketProps(state, name);
  const merged: Record<string, unknown> = { ...current, ...change };
  if (merged.type === null || merged.type === undefined) delete merged.type;
  // null (or undefined) takes read_fanout back to the default, 'all'.
  if (merged.read_fanout === null || merged.read_fanout === undefined) delete merged.read_fanout;
  const props = validateBucketProps(merged as unknown as BucketProps);
  const problems: BucketPropsProblem[] = [];
  if (props.type === 'set' && props.mode === 'lww') {
    problems.push({ field: 'mode', message: "cannot be 'lww' with type 'set' (a set merges its siblings; use mode 'siblings')" });
  }
  if ((props.type ?? null) !== (current.type ?? null) && contents?.holdsObjects === true) {
    problems.push({
      field: 'type',
      message:
        props.type === 'set'
          ? `cannot become 'set': bucket '${name}' holds plain objects, which would answer BUCKET_IS_A_SET (delete them first)`
          : `cannot be cleared: bucket '${name}' holds sets, which would answer NOT_A_SET (delete them first)`,
    });
  }
  if (problems.length > 0) throw new BucketPropsError(problems);
  if (entry !== undefined && sameProps(entry.props, props)) return state;
  return {
    ...state,
    buckets: sortedRecord({ ...state.buckets, [name]: { props, version: (entry?.version ?? 0) + 1 } }),
  };
}

/** Checks bucket properties and returns them normalised; throws BucketPropsError listing every bad field. */
export function validateBucketProps(props: BucketProps): BucketProps {
  const problems: BucketPropsProblem[] = [];
  const check = (field: string, ok: boolean, message: string): void => {
    if (!ok) problems.push({ field, message });
  };
  const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
  const { n, r, w, dw, mode, type, read_fanout } = props;
  check('n', isInt(n) && n >= 1 && n <= MAX_N, `must be an integer in 1..${MAX_N}`);
  const nMax = isInt(n) ? n : MAX_N;
  check('r', isInt(r) && r >= 1 && r <= nMax, 'must be an integer in 1..n');
  check('w', isInt(w) && w >= 1 && w <= nMax, 'must be an integer in 1..n');
  check('dw', isInt(dw) && dw >= 0 && dw <= (isInt(w) ? w : nMax), 'must be an integer in 0..w');
  check('mode', mode === 'siblings' || mode === 'lww', "must be 'siblings' or 'lww'");
  check('type', type === undefined || type === 'set', "must be 'set' or absent");
  check('read_fanout', read_fanout === undefined || READ_FANOUTS.includes(read_fanout), "must be 'all' or 'quorum'");
  const known = new Set(['n', 'r', 'w', 'dw', 'mode', 'type', 'read_fanout']);
  for (const field of Object.keys(props)) check(field, known.has(field), 'is not a bucket property');
  if (problems.length > 0) throw new BucketPropsError(problems);
  // read_fanout only when set: the props (and state digests) of buckets without it stay as they were.
  return { n, r, w, dw, mode, ...(type === undefined ? {} : { type }), ...(read_fanout === undefined ? {} : { read_fanout }) };
}

// ---------------------------------------------------------------------------
// Gossip

/**
 * Combines two views of the same cluster: per member and per bucket the
 * higher version, the ring with the higher (version, claimant), tokens by
 * mergeTokens (a revocation always wins). Ties on version go to a fixed
 * order on content, which makes merge commutative, associative and
 * idempotent.
 */
export function merge(a: ClusterState, b: ClusterState): ClusterState {
  if (a.clusterName !== b.clusterName || a.partitionBits !== b.partitionBits) {
    throw new ClusterStateError(
      'CLUSTER_MISMATCH',
      `cannot merge ${a.clusterName}/${a.partitionBits} bits with ${b.clusterName}/${b.partitionBits} bits`,
    );
  }
  const ring = compareRings(a.ring, b.ring) >= 0 ? a.ring : b.ring;
  const forgotten = a.forgotten === undefined && b.forgotten === undefined ? undefined : pruneForgotten(mergeRecords(a.forgotten ?? {}, b.forgotten ?? {}, compareForgotten));
  let members = mergeRecords(a.members, b.members, compareMembers);
  if (forgotten !== undefined) members = withoutForgotten(members, forgotten, ring);
  const merged: ClusterState = {
    clusterName: a.clusterName,
    partitionBits: a.partitionBits,
    members,
    ring,
    buckets: mergeRecords(a.buckets, b.buckets, compareBuckets),
    // Absent on both sides (a state from before tokens) stays absent: merge(a, a) is a.
    ...(a.tokens === undefined && b.tokens === undefined ? {} : { tokens: mergeTokens(a.tokens, b.tokens) }),
    ...(forgotten === undefined ? {} : { forgotten }),
  };
  assertClusterState(merged);
  return merged;
}

/**
 * Members minus those a tombstone covers (entry version at or below the
 * tombstone's). A covered member the ring still names (a ring claimed
 * before the forget reached the claimant) cannot go — every owner must be a
 * member — so it stays as 'left' at the tombstone's version: the claimant
 * then hands its partitions on, and the next merge drops it. A function of
 * the merged entries, tombstones and ring only, so merge stays commutative.
 */
function withoutForgotten(members: Record<NodeId, Member>, forgotten: Readonly<Record<NodeId, ForgottenMember>>, ring: Ring): Record<NodeId, Member> {
  let owners: Set<NodeId> | null = null;
  let out: Record<NodeId, Member> | null = null;
  for (const [id, tomb] of Object.entries(forgotten)) {
    const m = members[id];
    if (m === undefined || m.version > tomb.version) continue;
    owners ??= new Set(ring.owners);
    out ??= { ...members };
    if (!owners.has(id)) {
      delete out[id];
      continue;
    }
    const { draining: _d, replaces: _r, leftAtMs: _l, ...rest } = m;
    out[id] = { ...rest, status: 'left', version: tomb.version, leftAtMs: tomb.atMs };
  }
  return out ?? members;
}

function compareForgotten(x: ForgottenMember, y: ForgottenMember): number {
  return x.version - y.version || x.atMs - y.atMs;
}

/** A member entry a gossip message carried that the receiver kept its own version of, and why. */
export interface RefusedEntry {
  readonly id: NodeId;
  readonly version: number;
  readonly reason: string;
}

/**
 * Whether a gossiped entry may replace the receiver's. Gossip relays every
 * entry, so a receiver cannot tell who wrote one; what it can hold on to:
 * a node is the one authority on its own address and zone (its own
 * configuration) and on coming back from leaving (its own join), and a
 * member's address and zone change only when it is admitted again after it
 * left (a join the admitting node took only from a connection
 * authenticated as that member). So, for an entry that would win the merge:
 *  - the receiver's own: status may move forward (an operator's leave run
 *    elsewhere, the claimant's 'left'); address, zone and a way back are
 *    refused;
 *  - the sending peer's own (it speaks for itself): accepted;
 *  - a third member's: status may move forward at the same address and
 *    zone, or anything once the receiver has it as 'left' (re-admission);
 *    an address or zone change or a way back is refused, and waits until
 *    the member gossips it itself.
 * Null when the entry may be taken.
 */
export function gossipEntryProblem(local: Member | undefined, remote: Member, self: NodeId, from: NodeId): string | null {
  // A member this node has not heard of: relayed admissions are how it learns of new members.
  if (local === undefined) return null;
  // It would not win the merge anyway.
  if (compareMembers(remote, local) <= 0) return null;
  const moved = remote.address !== local.address || remote.zone !== local.zone;
  const back = STATUS_RANK[remote.status] < STATUS_RANK[local.status];
  if (remote.id === self) {
    if (moved) return `only ${self} itself sets its address and zone`;
    if (back) return `only ${self}'s own join brings it back from '${local.status}'`;
    return null;
  }
  if (remote.id === from) return null;
  if (local.status === 'left') return null;
  if (moved) return `only ${remote.id} itself changes its address or zone (relayed by ${from})`;
  if (back) return `only ${remote.id}'s own join brings it back from '${local.status}' (relayed by ${from})`;
  return null;
}

/**
 * Merges a state gossiped by `from` into `local` (on node `self`), keeping
 * local's version of every entry gossipEntryProblem refuses.
 */
export function mergeGossip(
  local: ClusterState,
  remote: ClusterState,
  self: NodeId,
  from: NodeId,
): { state: ClusterState; refused: RefusedEntry[] } {
  const refused: RefusedEntry[] = [];
  let members: Record<NodeId, Member> | null = null;
  for (const [id, entry] of Object.entries(remote.members)) {
    const reason = gossipEntryProblem(local.members[id], entry, self, from);
    if (reason === null) continue;
    refused.push({ id, version: entry.version, reason });
    members ??= { ...remote.members };
    members[id] = local.members[id]!;
  }
  let incoming: ClusterState = members === null ? remote : { ...remote, members };
  // No node forgets itself: a tombstone of this node (a forget of a node that still runs) is kept out.
  const own = incoming.forgotten?.[self];
  if (own !== undefined && local.members[self] !== undefined) {
    const { [self]: _own, ...rest } = incoming.forgotten!;
    incoming = { ...incoming, forgotten: rest };
    refused.push({ id: self, version: own.version, reason: `a tombstone of ${self} itself (forgotten while it runs)` });
  }
  const state = merge(local, incoming);
  invariant(
    refused.every((r) => r.id === self || state.members[r.id] === local.members[r.id]),
    'a refused gossip entry replaced the local one',
  );
  return { state, refused };
}

/**
 * The node that computes rings: the lowest id among valid members, a member
 * being replaced (markReplacing) not counted — it is likely dead, and its
 * replacement must not wait for it.
 */
export function claimantOf(state: ClusterState): NodeId | null {
  const replaced = new Set<NodeId>();
  for (const m of Object.values(state.members)) if (m.replaces !== undefined && m.status === 'valid') replaced.add(m.replaces);
  return validMembers(state).find((m) => !replaced.has(m.id))?.id ?? null;
}

/**
 * Run by every node after gossip; acts only on the claimant. When the ring
 * no longer fits the valid members (an owner that is not valid, a member off
 * its floor(Q/S)..ceil(Q/S) share), claims a new ring at the next version;
 * then marks 'left' every leaving member that owns nothing. Returns null
 * when there is nothing to do.
 *
 * Ownership switches the moment the new ring is adopted: a leaving node's
 * partitions go straight to their new owners. Partition hand-off will sit
 * between the claim and that switch: the claimant will publish the claimed
 * owners as a pending next ring, current owners stream each partition to its
 * next owner, and a partition's entry in `ring.owners` flips (version bump)
 * only when its transfer is confirmed; a leaving member becomes 'left' once
 * it owns nothing and has no transfer outstanding. Callers keep using
 * `ring.owners` for routing either way.
 */
export function maybeReclaim(state: ClusterState, selfId: NodeId, nowMs?: number): ClusterState | null {
  if (claimantOf(state) !== selfId) return null;
  // Replacements first (markReplacing): the dead member's partitions go one-for-one to its replacement.
  const replaced = applyReplacements(state, nowMs);
  const base = replaced ?? state;
  const valid = validMembers(base);
  let owners = base.ring.owners;
  if (!isBalanced(owners, valid.map((m) => m.id))) owners = claim(base.ring, valid.map(claimMember), state.partitionBits);
  const ring: Ring =
    owners === state.ring.owners
      ? state.ring
      : { partitionBits: state.partitionBits, owners, version: state.ring.version + 1, claimant: selfId };
  const owning = ownerCounts(ring.owners);
  const departed = Object.values(base.members).filter((m) => m.status === 'leaving' && !owning.has(m.id));
  if (ring === state.ring && departed.length === 0 && replaced === null) return null;

  let next: ClusterState = { ...base, ring };
  for (const member of departed) next = withMember(next, leftEntry(member, nowMs));
  assertClusterState(next);
  return next;
}

/**
 * The state with every pending replacement applied (owners of the replaced
 * member → its replacement, the replaced member 'left', the mark cleared),
 * or null when there is none. A mark whose replaced member is gone or left
 * is only cleared.
 */
function applyReplacements(state: ClusterState, nowMs: number | undefined): ClusterState | null {
  const pending = Object.values(state.members).filter((m) => m.replaces !== undefined && m.status === 'valid');
  if (pending.length === 0) return null;
  let owners = [...state.ring.owners];
  let next = state;
  for (const fresh of pending) {
    const dead = next.members[fresh.replaces!];
    const { replaces: _r, ...cleared } = fresh;
    next = withMember(next, { ...cleared, version: fresh.version + 1 });
    if (dead === undefined || dead.status === 'left' || dead.id === fresh.id) continue;
    owners = owners.map((o) => (o === dead.id ? fresh.id : o));
    next = withMember(next, leftEntry(dead, nowMs));
  }
  const changed = owners.some((o, p) => o !== state.ring.owners[p]);
  return { ...next, ring: changed ? { ...state.ring, owners } : state.ring };
}

/**
 * A random peer to gossip with: any valid or leaving member but self (null
 * when alone). `randomInt(n)` must return an integer in [0, n).
 */
export function gossipTarget(
  state: ClusterState,
  selfId: NodeId,
  randomInt: (n: number) => number,
): NodeId | null {
  const peers = Object.values(state.members)
    .filter((m) => m.status !== 'left' && m.id !== selfId)
    .map((m) => m.id)
    .sort(compareIds);
  if (peers.length === 0) return null;
  const index = randomInt(peers.length);
  invariant(
    Number.isInteger(index) && index >= 0 && index < peers.length,
    () => `randomInt(${peers.length}) returned ${index}`,
  );
  return peers[index]!;
}

/**
 * A short fingerprint of the whole state, ring version first. Equal states
 * have equal digests, so peers with equal digests skip sending the state.
 */
export function digest(state: ClusterState): string {
  return `${state.ring.version}-${hash53(canonical(state)).toString(36)}`;
}

// ---------------------------------------------------------------------------
// Reading a state

/** Valid members, lowest id first. */
export function validMembers(state: ClusterState): Member[] {
  return Object.values(state.members)
    .filter((m) => m.status === 'valid')
    .sort((x, y) => compareIds(x.id, y.id));
}

/** Declared zones, for preferenceList. */
export function zonesOf(state: ClusterState): Map<NodeId, string> {
  const zones = new Map<NodeId, string>();
  for (const m of Object.values(state.members)) if (m.zone !== undefined) zones.set(m.id, m.zone);
  return zones;
}

/** Checks a state's shape and cross-references; throws on the first violation. */
export function assertClusterState(state: ClusterState): void {
  invariant(typeof state.clusterName === 'string' && state.clusterName.length > 0, 'state has no cluster name');
  partitionCount(state.partitionBits);
  assertRing(state.ring);
  invariant(state.ring.partitionBits === state.partitionBits, 'ring and state disagree on partitionBits');
  for (const [id, m] of Object.entries(state.members)) {
    invariant(m.id === id, () => `member entry ${id} holds ${m.id}`);
    invariant(isNodeId(id), () => `bad member id ${JSON.stringify(id)}`);
    invariant(m.status === 'valid' || m.status === 'leaving' || m.status === 'left', () => `bad status of ${id}`);
    invariant(Number.isSafeInteger(m.version) && m.version >= 1, () => `bad version of ${id}`);
  }
  for (const owner of new Set(state.ring.owners)) {
    invariant(state.members[owner] !== undefined, () => `ring owner ${owner} is not a known member`);
  }
  for (const [name, entry] of Object.entries(state.buckets)) {
    invariant(Number.isSafeInteger(entry.version) && entry.version >= 1, () => `bad version of bucket ${name}`);
    validateBucketProps(entry.props);
  }
  assertTokenTable(state.tokens);
  invariant(forgottenProblem(state.forgotten) === null, () => `bad forgotten table: ${forgottenProblem(state.forgotten)}`);
  for (const m of Object.values(state.members)) {
    invariant(m.leftAtMs === undefined || m.status === 'left', () => `member ${m.id} has leftAtMs but is '${m.status}'`);
  }
}

// ---------------------------------------------------------------------------
// Helpers

function newMember(member: NewMember, version: number): Member {
  if (!isNodeId(member.id)) {
    throw new ClusterStateError('INVALID_MEMBER', `node id ${JSON.stringify(member.id)} is not [A-Za-z0-9._-]{1,64}`);
  }
  // The address's form is the transport's (checked where a member comes from the network); here: present and bounded.
  if (typeof member.address !== 'string' || member.address.length === 0 || member.address.length > MAX_ADDRESS_LENGTH) {
    throw new ClusterStateError('INVALID_MEMBER', `${member.id} needs an address of 1..${MAX_ADDRESS_LENGTH} characters`);
  }
  if (member.zone !== undefined && (typeof member.zone !== 'string' || !ZONE_RE.test(member.zone))) {
    throw new ClusterStateError('INVALID_MEMBER', `${member.id} has a bad zone (1..${MAX_ZONE_LENGTH} printable characters, no spaces)`);
  }
  invariant(isEntryVersion(version), () => `member ${member.id} would reach version ${version}`);
  // No `zone: undefined` key: it would not survive msgpack as "absent".
  const base = { id: member.id, address: member.address, status: 'valid' as const, version };
  return member.zone === undefined ? base : { ...base, zone: member.zone };
}

function claimMember(m: Member): { id: NodeId; zone?: string } {
  return m.zone === undefined ? { id: m.id } : { id: m.id, zone: m.zone };
}

function memberOf(state: ClusterState, id: NodeId): Member {
  const member = state.members[id];
  if (member === undefined) throw new ClusterStateError('UNKNOWN_MEMBER', `${id} is not a member`);
  return member;
}

function withMember(state: ClusterState, member: Member): ClusterState {
  invariant(isEntryVersion(member.version), () => `member ${member.id} would reach version ${member.version}`);
  return { ...state, members: sortedRecord({ ...state.members, [member.id]: member }) };
}

function assertBucketName(name: string): void {
  const bytes = new TextEncoder().encode(name).length;
  if (bytes === 0 || bytes > 255 || name.includes('\0')) {
    throw new ClusterStateError('INVALID_BUCKET', `bucket name must be 1..255 bytes without NUL, got ${JSON.stringify(name)}`);
  }
}

/** Keys in id order, so equal states also look alike when printed or encoded. */
function sortedRecord<T>(record: Readonly<Record<string, T>>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const key of Object.keys(record).sort(compareIds)) out[key] = record[key]!;
  return out;
}

function mergeRecords<T>(
  a: Readonly<Record<string, T>>,
  b: Readonly<Record<string, T>>,
  compare: (x: T, y: T) => number,
): Record<string, T> {
  const out: Record<string, T> = {};
  for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort(compareIds)) {
    const x = a[key];
    const y = b[key];
    out[key] = x === undefined ? y! : y === undefined ? x : compare(x, y) >= 0 ? x : y;
  }
  return out;
}

const STATUS_RANK: Record<MemberStatus, number> = { valid: 0, leaving: 1, left: 2 };

/** Version first; on a tie the further-along status, then address, then zone (absent first). */
function compareMembers(x: Member, y: Member): number {
  return (
    x.version - y.version ||
    STATUS_RANK[x.status] - STATUS_RANK[y.status] ||
    compareIds(x.address, y.address) ||
    compareOptional(x.zone, y.zone) ||
    Number(x.draining === true) - Number(y.draining === true) ||
    (x.leftAtMs ?? -1) - (y.leftAtMs ?? -1) ||
    compareOptional(x.replaces, y.replaces)
  );
}

function compareBuckets(x: BucketEntry, y: BucketEntry): number {
  return x.version - y.version || compareIds(canonicalProps(x.props), canonicalProps(y.props));
}

/** Version, then claimant; the owner table only separates rings a bug made different. */
function compareRings(x: Ring, y: Ring): number {
  return x.version - y.version || compareIds(x.claimant, y.claimant) || compareIds(x.owners.join(','), y.owners.join(','));
}

function compareOptional(x: string | undefined, y: string | undefined): number {
  if (x === undefined || y === undefined) return (x === undefined ? 0 : 1) - (y === undefined ? 0 : 1);
  return compareIds(x, y);
}

function sameProps(x: BucketProps, y: BucketProps): boolean {
  return canonicalProps(x) === canonicalProps(y);
}

function canonicalProps(p: BucketProps): string {
  // read_fanout appended only when set, so the canonical form (and digest) of older props is unchanged.
  return JSON.stringify([p.n, p.r, p.w, p.dw, p.mode, p.type ?? null, ...(p.read_fanout === undefined ? [] : [p.read_fanout])]);
}

/** Every field in a fixed order, independent of key order. */
function canonical(state: ClusterState): string {
  const members = Object.values(state.members)
    .sort((x, y) => compareIds(x.id, y.id))
    .map((m) => [m.id, m.address, m.zone ?? null, m.status, m.version, m.draining === true, m.leftAtMs ?? null, m.replaces ?? null]);
  const buckets = Object.keys(state.buckets)
    .sort(compareIds)
    .map((name) => [name, state.buckets[name]!.version, canonicalProps(state.buckets[name]!.props)]);
  const { ring } = state;
  return JSON.stringify([
    state.clusterName,
    state.partitionBits,
    [ring.version, ring.claimant, ring.owners.join(',')],
    members,
    buckets,
    canonicalTokens(state.tokens),
    Object.keys(state.forgotten ?? {})
      .sort(compareIds)
      .map((id) => [id, state.forgotten![id]!.version, state.forgotten![id]!.atMs]),
  ]);
}

/** cyrb53: a fast 53-bit string hash; enough to tell states apart, not a MAC. */
function hash53(text: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}
