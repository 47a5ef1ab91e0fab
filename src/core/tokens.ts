// Client bearer tokens as cluster metadata (issue 11, item 3). A token is
// `rkv_` + 43 base64url characters (32 random bytes: 256 bits); the cluster
// stores only its SHA-256, keyed by the token's id (the first 16 hex digits
// of that hash), with the role it grants. Every node checks tokens against
// its own copy of the table, and gossip carries changes like it carries
// bucket properties.
//
// The table is a state-based CRDT: per id, the entry's grant (hash, role,
// bucket, label, creation) is immutable and ties between two different
// grants under one id (a hash-prefix collision, or a forged entry) go to a
// fixed order on content; `revokedAtMs` joins by max, absent below any time.
// Each component is a join-semilattice, so the merge is commutative,
// associative and idempotent, and a revocation, once merged anywhere, is in
// every later merge: stale gossip can never bring a revoked id back.
// Entries are never deleted (a revoked one is its own tombstone).
//
// Pure: no I/O, no clock, no randomness (the caller passes the random bytes).
import { sha256 } from '@noble/hashes/sha2.js';
import { compareIds, invariant } from './types.js';

/** From least to most: `metrics` scrapes /metrics; `read` reads data and cluster views; `write` also writes data; `admin` also changes bucket properties, membership and tokens. */
export const ROLES = ['metrics', 'read', 'write', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Roles a token may hold when scoped to one bucket (data roles only). */
export const BUCKET_ROLES: readonly Role[] = ['read', 'write'];

export const TOKEN_PREFIX = 'rkv_';
/** Random bytes in a token: 256 bits. */
export const TOKEN_SECRET_BYTES = 32;
const TOKEN_PATTERN = /^rkv_[A-Za-z0-9_-]{43}$/;
const TOKEN_ID_PATTERN = /^[0-9a-f]{16}$/;
const HASH_PATTERN = /^[0-9a-f]{64}$/;
export const MAX_LABEL_CHARS = 128;
/** Tokens (live and revoked) a cluster holds at most: every one travels in every state exchange. */
export const MAX_TOKENS = 10_000;

export interface TokenEntry {
  /** SHA-256 of the whole token string, lowercase hex; its first 16 digits are the entry's id. */
  readonly hash: string;
  readonly role: Role;
  /** When set, the token grants its role on this bucket's data only. */
  readonly bucket?: string;
  /** The operator's note ("ci", "grafana"). */
  readonly label?: string;
  readonly createdAtMs: number;
  /** Set once revoked; a revoked token authenticates nothing. */
  readonly revokedAtMs?: number;
}

export type TokenTable = Readonly<Record<string, TokenEntry>>;

export interface TokenGrant {
  readonly role: Role;
  readonly bucket?: string;
  readonly label?: string;
}

export type TokenErrorCode = 'INVALID_TOKEN_GRANT' | 'UNKNOWN_TOKEN' | 'TOO_MANY_TOKENS';

/** A token request the table cannot honour (the caller's fault). */
export class TokenError extends Error {
  readonly details: Record<string, unknown> = {};
  constructor(
    readonly code: TokenErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** Whether `held` includes everything `needed` may do. */
export function roleCovers(held: Role, needed: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(needed);
}

/** SHA-256 of a token, lowercase hex (what the table stores). */
export function tokenHash(token: string): string {
  return Buffer.from(sha256(new TextEncoder().encode(token))).toString('hex');
}

/** The id of a token (or of its hash): the first 16 hex digits of the hash. */
export function tokenIdOfHash(hash: string): string {
  return hash.slice(0, 16);
}

/** Whether a string has the shape of a token (cheap; says nothing of validity). */
export function looksLikeToken(value: string): boolean {
  return TOKEN_PATTERN.test(value);
}

export function isTokenId(value: unknown): value is string {
  return typeof value === 'string' && TOKEN_ID_PATTERN.test(value);
}

/**
 * Adds a token made of `secret` (TOKEN_SECRET_BYTES random bytes from a
 * CSPRNG) for `grant`; returns the new table, the token (shown once, never
 * stored) and its id.
 */
export function issueToken(
  table: TokenTable,
  grant: TokenGrant,
  secret: Uint8Array,
  nowMs: number,
): { table: TokenTable; token: string; id: string } {
  invariant(secret.length === TOKEN_SECRET_BYTES, () => `a token needs ${TOKEN_SECRET_BYTES} random bytes, got ${secret.length}`);
  checkGrant(grant);
  if (Object.keys(table).length >= MAX_TOKENS) {
    throw new TokenError('TOO_MANY_TOKENS', `the cluster holds ${MAX_TOKENS} tokens (revoked ones count: they are kept so a revocation sticks)`);
  }
  const token = TOKEN_PREFIX + Buffer.from(secret).toString('base64url');
  const hash = tokenHash(token);
  const id = tokenIdOfHash(hash);
  // 2^-64 per pair: a clash means the random bytes are not random.
  invariant(own(table, id) === undefined, () => `token id ${id} is taken: the random source repeats`);
  const entry: TokenEntry = {
    hash,
    role: grant.role,
    ...(grant.bucket !== undefined ? { bucket: grant.bucket } : {}),
    ...(grant.label !== undefined ? { label: grant.label } : {}),
    createdAtMs: nowMs,
  };
  const next = sortedTable({ ...table, [id]: entry });
  invariant(looksLikeToken(token), 'issued token has the token shape');
  return { table: next, token, id };
}

/** Marks a token revoked (again: no change). Unknown ids are refused. */
export function revokeToken(table: TokenTable, id: string, nowMs: number): TokenTable {
  const entry = isTokenId(id) ? own(table, id) : undefined;
  if (entry === undefined) throw new TokenError('UNKNOWN_TOKEN', `no token with id ${JSON.stringify(id.slice(0, 64))}`);
  if (entry.revokedAtMs !== undefined) return table;
  const next = sortedTable({ ...table, [id]: { ...entry, revokedAtMs: nowMs } });
  invariant(next[id]!.revokedAtMs !== undefined, 'revoked entry carries its revocation');
  return next;
}

/**
 * The live entry a presented token names, or null (unknown shape, unknown
 * id, wrong secret, revoked). `equalHashes` compares two hex hashes in
 * constant time (the caller's: node:crypto's timingSafeEqual on a server).
 */
export function findToken(
  table: TokenTable,
  token: string,
  hashOf: (token: string) => string,
  equalHashes: (a: string, b: string) => boolean,
): (TokenEntry & { id: string }) | null {
  if (!looksLikeToken(token)) return null;
  const hash = hashOf(token);
  const id = tokenIdOfHash(hash);
  const entry = own(table, id);
  if (entry === undefined || !equalHashes(entry.hash, hash) || entry.revokedAtMs !== undefined) return null;
  return { ...entry, id };
}

/** The join of two tables (see the top of this file). */
export function mergeTokens(a: TokenTable = {}, b: TokenTable = {}): TokenTable {
  const out: Record<string, TokenEntry> = {};
  for (const id of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort(compareIds)) {
    // Own entries only: a decoded table's prototype must not lend it entries.
    const x = own(a, id);
    const y = own(b, id);
    if (x === undefined || y === undefined) {
      out[id] = (x ?? y)!;
      continue;
    }
    const grant = compareIds(canonicalGrant(x), canonicalGrant(y)) >= 0 ? x : y;
    const revokedAtMs = maxDefined(x.revokedAtMs, y.revokedAtMs);
    const { revokedAtMs: _dropped, ...base } = grant;
    out[id] = revokedAtMs === undefined ? base : { ...base, revokedAtMs };
    invariant((x.revokedAtMs === undefined && y.revokedAtMs === undefined) || out[id]!.revokedAtMs !== undefined, () => `revocation of ${id} lost in a merge`);
  }
  return out;
}

/**
 * Checks a table that came from elsewhere (gossip, a join reply, disk);
 * returns the problem, or null when every entry is well formed.
 */
export function tokenTableProblem(table: unknown): string | null {
  if (table === undefined) return null;
  if (table === null || typeof table !== 'object' || Array.isArray(table)) return 'tokens must be an object';
  const ids = Object.keys(table);
  if (ids.length > MAX_TOKENS) return `more than ${MAX_TOKENS} tokens`;
  for (const id of ids) {
    const e = (table as Record<string, unknown>)[id] as Record<string, unknown> | null;
    const where = `token ${JSON.stringify(id.slice(0, 32))}`;
    if (!isTokenId(id)) return `${where}: id must be 16 lowercase hex digits`;
    if (e === null || typeof e !== 'object' || Array.isArray(e)) return `${where}: entry must be an object`;
    for (const field of Object.keys(e)) {
      if (!['hash', 'role', 'bucket', 'label', 'createdAtMs', 'revokedAtMs'].includes(field)) return `${where}: unknown field ${JSON.stringify(field.slice(0, 32))}`;
    }
    if (typeof e.hash !== 'string' || !HASH_PATTERN.test(e.hash)) return `${where}: hash must be 64 lowercase hex digits`;
    if (tokenIdOfHash(e.hash) !== id) return `${where}: id is not the start of its hash`;
    if (!isRole(e.role)) return `${where}: role must be one of ${ROLES.join(', ')}`;
    const grantProblem = grantFieldProblem(e.role, e.bucket, e.label);
    if (grantProblem !== null) return `${where}: ${grantProblem}`;
    if (!isTimeMs(e.createdAtMs)) return `${where}: createdAtMs must be a non-negative safe integer`;
    if (e.revokedAtMs !== undefined && !isTimeMs(e.revokedAtMs)) return `${where}: revokedAtMs must be a non-negative safe integer`;
  }
  return null;
}

export function assertTokenTable(table: TokenTable | undefined): void {
  const problem = tokenTableProblem(table);
  invariant(problem === null, () => `bad token table: ${problem}`);
}

/** Refuses a grant a token may not carry (TokenError INVALID_TOKEN_GRANT). */
export function checkGrant(grant: TokenGrant): void {
  if (!isRole(grant.role)) throw new TokenError('INVALID_TOKEN_GRANT', `role must be one of ${ROLES.join(', ')}`);
  const problem = grantFieldProblem(grant.role, grant.bucket, grant.label);
  if (problem !== null) throw new TokenError('INVALID_TOKEN_GRANT', problem);
}

/** Every entry in a fixed order, for the state digest. */
export function canonicalTokens(table: TokenTable = {}): unknown[] {
  return Object.keys(table)
    .sort(compareIds)
    .map((id) => [id, canonicalGrant(table[id]!), table[id]!.revokedAtMs ?? null]);
}

function grantFieldProblem(role: Role, bucket: unknown, label: unknown): string | null {
  if (bucket !== undefined) {
    if (typeof bucket !== 'string') return 'bucket must be a string';
    const bytes = new TextEncoder().encode(bucket).length;
    if (bytes === 0 || bytes > 255 || bucket.includes('\0')) return 'bucket must be 1..255 bytes without NUL';
    if (!BUCKET_ROLES.includes(role)) return `a token scoped to a bucket may only have role ${BUCKET_ROLES.join(' or ')} (got ${role})`;
  }
  if (label !== undefined && (typeof label !== 'string' || label.length > MAX_LABEL_CHARS || /[\u0000-\u001f\u007f]/.test(label))) {
    return `label must be a string of at most ${MAX_LABEL_CHARS} characters without control characters`;
  }
  return null;
}

function own(table: TokenTable, id: string): TokenEntry | undefined {
  return Object.hasOwn(table, id) ? table[id] : undefined;
}

function isTimeMs(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function canonicalGrant(e: TokenEntry): string {
  return JSON.stringify([e.hash, e.role, e.bucket ?? null, e.label ?? null, e.createdAtMs]);
}

function maxDefined(x: number | undefined, y: number | undefined): number | undefined {
  if (x === undefined) return y;
  if (y === undefined) return x;
  return Math.max(x, y);
}

function sortedTable(table: Record<string, TokenEntry>): TokenTable {
  const out: Record<string, TokenEntry> = {};
  for (const id of Object.keys(table).sort(compareIds)) out[id] = table[id]!;
  return out;
}
