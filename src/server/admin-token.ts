// Admin tokens made outside the HTTP API: the first one of a new cluster
// (written by the node that creates it) and a recovered one, made on a
// stopped node's data directory when every admin token is lost
// (`ringkv token bootstrap`, docs/security.md "Lost admin tokens").
import { randomBytes } from 'node:crypto';
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NativeEngine } from '../engine/native/index.js';
import { EngineError } from '../record/index.js';
import type { ClusterState } from '../core/membership.js';
import { TOKEN_SECRET_BYTES, issueToken } from '../core/tokens.js';
import { STATE_META } from '../node/ring-state.js';

/** Where an admin token made for an operator is written: in the node's data directory, mode 0600. */
export const ADMIN_TOKEN_FILE = 'admin.token';


/** Writes a token to a new file readable by its owner only from its first byte, then renames it over any older one. */
export function writeTokenFile(file: string, token: string): void {
  const fresh = `${file}.${process.pid}.new`;
  rmSync(fresh, { force: true });
  writeFileSync(fresh, `${token}\n`, { mode: 0o600, flag: 'wx' });
  renameSync(fresh, file);
}

/** A recovery the data directory does not allow (not a node's, another cluster's, in use). */
export class TokenBootstrapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenBootstrapError';
  }
}

export interface TokenBootstrapOptions {
  dataDir: string;
  nodeId: string;
  partitionBits: number;
  cluster: string;
  /** When the grant is made (the entry's createdAtMs). */
  nowMs: number;
}

/**
 * Adds a new admin token to the cluster state kept in a stopped node's data
 * directory and writes the token to `<data-dir>/admin.token`. The node
 * gossips the grant once it runs again (token tables merge as a CRDT, so
 * every member takes it); tokens already issued are untouched. Opening the
 * engine takes the directory's lock: a running node makes this fail.
 */
export async function bootstrapTokenOffline(o: TokenBootstrapOptions): Promise<{ file: string; id: string }> {
  if (!existsSync(o.dataDir)) throw new TokenBootstrapError(`no data directory at ${o.dataDir}`);
  let engine: NativeEngine;
  try {
    engine = await NativeEngine.open({ path: o.dataDir, nodeId: o.nodeId, partitionBits: o.partitionBits });
  } catch (err) {
    const message = (err as Error).message;
    // sled takes an exclusive lock on its directory; the OS's words for it vary ("WouldBlock", "Resource temporarily unavailable").
    if (/lock|WouldBlock|temporarily unavailable/i.test(message)) {
      throw new TokenBootstrapError(`${o.dataDir} is in use (stop the node first): ${message}`);
    }
    if (err instanceof EngineError) throw new TokenBootstrapError(`cannot open the node's storage in ${o.dataDir}: ${message}`);
    throw err;
  }
  try {
    const saved = await engine.metaGet(STATE_META);
    if (saved === null) throw new TokenBootstrapError(`${o.dataDir} holds no cluster state: start the node once (a new cluster writes its own first admin token)`);
    const state = JSON.parse(saved.toString('utf8')) as ClusterState;
    if (state.clusterName !== o.cluster) throw new TokenBootstrapError(`${o.dataDir} belongs to cluster '${state.clusterName}', not '${o.cluster}'`);
    const issued = issueToken(state.tokens ?? {}, { role: 'admin', label: 'bootstrap (recovered)' }, randomBytes(TOKEN_SECRET_BYTES), o.nowMs);
    // The file first: a state holding a grant whose token nobody has would be a token lost again.
    const file = join(o.dataDir, ADMIN_TOKEN_FILE);
    writeTokenFile(file, issued.token);
    await engine.metaPut(STATE_META, Buffer.from(JSON.stringify({ ...state, tokens: issued.table })));
    await engine.flush();
    return { file, id: issued.id };
  } finally {
    await engine.close();
  }
}
