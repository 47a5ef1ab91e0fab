// A real cluster secret for the nodes tests start: random per test process,
// written to a 0600 file for nodes started as processes (`--secret-file`).
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PeerSecret, type PeerSecrets } from '../../src/transport/peer-auth.js';

/** The secret's text: tests look for it where it must never appear. */
export const TEST_SECRET_TEXT = randomBytes(32).toString('hex');
const SECRET_TEXT = TEST_SECRET_TEXT;

/** The secrets every test node of this process shares. */
export const TEST_PEER_SECRETS: PeerSecrets = Object.freeze({ current: PeerSecret.from(SECRET_TEXT) });

/** Writes the test secret to `dir`/cluster.secret (mode 0600) and returns its path. */
export function writeTestSecretFile(dir: string): string {
  const path = join(dir, 'cluster.secret');
  writeFileSync(path, `${SECRET_TEXT}\n`, { mode: 0o600 });
  return path;
}

/** A fresh random secret (another cluster's, or a rotation's next one). */
export function randomSecret(): PeerSecret {
  return PeerSecret.from(randomBytes(32).toString('hex'));
}
