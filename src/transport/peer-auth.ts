// Peer authentication (protocol version 4): a mutual challenge-response over
// the cluster secret, run on every peer connection before any other frame
// is acted on (docs/security.md).
//
//   client -> server  hello [0, 4, clientId, cluster, clientNonce]
//   server -> client  hello [0, 4, serverId, cluster, serverNonce, proofs]
//   client -> server  auth  [6, proof]
//
// Nonces are 32 fresh random bytes from each side. A proof is
// HMAC-SHA256(secret, role | transcript), the transcript binding the
// protocol version, the cluster name, both node ids and both nonces, so a
// proof is good for one connection, one direction, one pair of ids. The
// server sends one proof per secret it holds (current first, then the
// previous one during a rotation); the client accepts the first that
// matches one of its own secrets and answers with one proof made with that
// secret, which the server checks against each of its secrets. Every
// comparison is constant-time (timingSafeEqual) and checks every candidate.
// The agreed secret also keys the connection's envelope tags (one per
// direction), so a sealed message only opens on the session that made it.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';

export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;
/** Shortest secret accepted: a proof an outsider sees can be attacked offline, so a secret must not be guessable. */
export const MIN_SECRET_BYTES = 16;
/** Secrets a node holds at once: the current one and, during a rotation, the previous one. */
export const MAX_SECRETS = 2;

/**
 * A cluster secret. Its bytes never leave this module except into an HMAC:
 * printing, logging (pino) or JSON-encoding it shows `[redacted]`.
 */
export class PeerSecret {
  readonly #key: Buffer;

  private constructor(key: Buffer) {
    this.#key = key;
  }

  /** `what` names the source in the error (a file name, an environment variable), never the value. */
  static from(value: string | Uint8Array, what = 'cluster secret'): PeerSecret {
    const key = typeof value === 'string' ? Buffer.from(value.trim(), 'utf8') : Buffer.from(value);
    if (key.length < MIN_SECRET_BYTES) {
      throw new Error(`${what}: a cluster secret must be at least ${MIN_SECRET_BYTES} bytes (got ${key.length}); make one with \`openssl rand -hex 32\``);
    }
    return new PeerSecret(key);
  }

  /** @internal */
  mac(parts: readonly Uint8Array[]): Buffer {
    const h = createHmac('sha256', this.#key);
    for (const p of parts) {
      // Length-prefixed, so no two different transcripts hash alike.
      const len = Buffer.allocUnsafe(4);
      len.writeUInt32BE(p.length, 0);
      h.update(len);
      h.update(p);
    }
    return h.digest();
  }

  toJSON(): string {
    return '[redacted]';
  }

  toString(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return 'PeerSecret [redacted]';
  }
}

/** The secrets a node proves with and accepts: `current`, and during a rotation `previous`. */
export interface PeerSecrets {
  readonly current: PeerSecret;
  readonly previous?: PeerSecret;
}

/**
 * The fixed, public "secret" of insecure loopback mode (`--insecure-loopback`):
 * the handshake runs as always, but anyone who can reach the port passes it.
 * Only for nodes that listen on and advertise loopback addresses.
 */
export const INSECURE_LOOPBACK_SECRETS: PeerSecrets = Object.freeze({
  current: PeerSecret.from('ringkv insecure loopback mode: not a secret', 'insecure loopback'),
});

export function secretList(secrets: PeerSecrets): PeerSecret[] {
  return secrets.previous === undefined ? [secrets.current] : [secrets.current, secrets.previous];
}

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

/** What both sides' proofs cover. */
export interface Transcript {
  version: number;
  cluster: string;
  clientId: string;
  serverId: string;
  clientNonce: Uint8Array;
  serverNonce: Uint8Array;
}

const LABEL = 'ringkv-peer-auth';

function parts(label: string, t: Transcript): Uint8Array[] {
  const version = Buffer.allocUnsafe(4);
  version.writeUInt32BE(t.version >>> 0, 0);
  return [
    Buffer.from(`${LABEL} ${label}`),
    version,
    Buffer.from(t.cluster, 'utf8'),
    Buffer.from(t.clientId, 'utf8'),
    Buffer.from(t.serverId, 'utf8'),
    t.clientNonce,
    t.serverNonce,
  ];
}

export type Role = 'client' | 'server';

/** The proof `role` sends: HMAC over the role and the transcript. */
export function makeProof(secret: PeerSecret, role: Role, t: Transcript): Buffer {
  return secret.mac(parts(`proof ${role}`, t));
}

/**
 * The first of `secrets` with which one of `proofs` is `role`'s proof over
 * `t`, or null. Every pair is compared, in constant time, whatever matches.
 */
export function checkProofs(secrets: readonly PeerSecret[], role: Role, t: Transcript, proofs: readonly Uint8Array[]): PeerSecret | null {
  let found: PeerSecret | null = null;
  for (const proof of proofs) {
    for (const secret of secrets) {
      const expected = makeProof(secret, role, t);
      const ok = proof.length === expected.length && timingSafeEqual(proof, expected);
      if (ok && found === null) found = secret;
    }
  }
  return found;
}

/** The envelope tags of an authenticated connection, one per direction (see frames.ts). */
export function sessionTags(secret: PeerSecret, t: Transcript): { clientToServer: number; serverToClient: number } {
  return {
    clientToServer: secret.mac(parts('tag client', t)).readUInt32BE(0),
    serverToClient: secret.mac(parts('tag server', t)).readUInt32BE(0),
  };
}

/**
 * Why a handshake failed; the label of `ringkv_peer_auth_failures_total`.
 * `abandoned`: the peer closed after this node's hello without proving
 * itself, which is what a peer with another secret does when it finds
 * this node's proofs wrong (so a misconfigured node shows on both sides).
 */
export type AuthFailureReason = 'bad-proof' | 'abandoned' | 'timeout' | 'wrong-cluster' | 'version' | 'wrong-node' | 'malformed';
export const AUTH_FAILURE_REASONS: readonly AuthFailureReason[] = ['bad-proof', 'abandoned', 'timeout', 'wrong-cluster', 'version', 'wrong-node', 'malformed'];
