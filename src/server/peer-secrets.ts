// Where a node's cluster secret comes from: a file or an environment
// variable, never a command-line argument (other users of the host can read
// a process's arguments). The value is never logged or shown (PeerSecret
// prints as [redacted]); docs/security.md has set-up and rotation.
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { PeerSecret, type PeerSecrets } from '../transport/peer-auth.js';

export const SECRET_ENV = 'RINGKV_CLUSTER_SECRET';
export const SECRET_FILE_ENV = 'RINGKV_CLUSTER_SECRET_FILE';
export const PREVIOUS_SECRET_ENV = 'RINGKV_CLUSTER_PREVIOUS_SECRET';
export const PREVIOUS_SECRET_FILE_ENV = 'RINGKV_CLUSTER_PREVIOUS_SECRET_FILE';

export interface SecretSources {
  /** `--secret-file`: wins over the environment. */
  secretFile?: string;
  /** `--previous-secret-file`: the secret accepted besides the current one during a rotation. */
  previousSecretFile?: string;
}

/**
 * Reads a secret file: its bytes as they are (a file of raw random bytes
 * works too), less white space at either end (the newline an editor or
 * `openssl rand -hex 32 >` leaves). Names the file, never the content, in errors.
 */
export function readSecretFile(path: string): PeerSecret {
  let content: Buffer;
  try {
    content = readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read the cluster secret file ${path}: ${(err as Error).message}`);
  }
  const space = (b: number) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
  let start = 0;
  let end = content.length;
  while (start < end && space(content[start]!)) start++;
  while (end > start && space(content[end - 1]!)) end--;
  return PeerSecret.from(content.subarray(start, end), `cluster secret file ${path}`);
}

/** True when a secret file can be read by users other than its owner (like ssh, such a key is not a secret any more). */
export function secretFileIsShared(path: string): boolean {
  return (statSync(path).mode & 0o077) !== 0;
}

function one(file: string | undefined, fileEnv: string, valueEnv: string, env: NodeJS.ProcessEnv): PeerSecret | undefined {
  const path = file ?? env[fileEnv];
  if (path !== undefined && path !== '') return readSecretFile(path);
  const value = env[valueEnv];
  if (value !== undefined && value !== '') return PeerSecret.from(value, `environment variable ${valueEnv}`);
  return undefined;
}

/**
 * The node's secrets from the flags or the environment, or null when none
 * is given. A previous secret without a current one is refused.
 */
export function loadPeerSecrets(sources: SecretSources, env: NodeJS.ProcessEnv = process.env): PeerSecrets | null {
  const current = one(sources.secretFile, SECRET_FILE_ENV, SECRET_ENV, env);
  const previous = one(sources.previousSecretFile, PREVIOUS_SECRET_FILE_ENV, PREVIOUS_SECRET_ENV, env);
  if (current === undefined) {
    if (previous !== undefined) throw new Error('a previous cluster secret was given without a current one');
    return null;
  }
  return previous === undefined ? { current } : { current, previous };
}

/** Writes a new random secret (32 bytes, hex) to `path`, mode 0600, unless the file exists; returns whether it made one. */
export function ensureSecretFile(path: string): boolean {
  if (existsSync(path)) return false;
  writeFileSync(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600); // the umask may have taken bits off, never added: make it exact
  return true;
}

/** 127.0.0.0/8, ::1 or localhost: addresses no other host can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}
