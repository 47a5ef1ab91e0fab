// `ringkv dev`: a local cluster of separate node processes on 127.0.0.1,
// every node's data under one directory; the first node is the seed. The
// cluster secret is made here on the first run (<data dir>/cluster.secret,
// mode 0600) and given to every node by file.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSecretFile } from '../server/peer-secrets.js';

export interface DevClusterOptions {
  nodes: number;
  basePort: number;
  dataDir: string;
  logLevel: string;
}

const CLI = fileURLToPath(new URL('./index.js', import.meta.url));

export async function runDevCluster(o: DevClusterOptions): Promise<void> {
  const dataDir = resolve(o.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const secretFile = join(dataDir, 'cluster.secret');
  const made = ensureSecretFile(secretFile);
  console.log(`[dev] cluster secret ${made ? 'created in' : 'read from'} ${secretFile} (peers of this cluster need it: --secret-file)`);
  const seed = `127.0.0.1:${o.basePort}`;
  const children = new Map<string, ChildProcess>();
  let stopping = false;

  for (let i = 1; i <= o.nodes; i++) {
    const id = `n${i}`;
    const address = `127.0.0.1:${o.basePort + i - 1}`;
    const args = [CLI, 'start', '--node-id', id, '--listen', address, '--data-dir', join(dataDir, id), '--log-level', o.logLevel, '--secret-file', secretFile];
    if (i > 1) args.push('--seeds', seed);
    // The IPC channel lets a node notice when this process dies, even by SIGKILL, and stop too.
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const prefix = (chunk: Buffer) => chunk.toString().split('\n').filter(Boolean).map((l) => `[${id}] ${l}\n`).join('');
    child.stdout!.on('data', (c: Buffer) => process.stdout.write(prefix(c)));
    child.stderr!.on('data', (c: Buffer) => process.stderr.write(prefix(c)));
    child.on('exit', (code, signal) => {
      children.delete(id);
      if (!stopping) console.error(`[dev] ${id} exited (${signal ?? code}); the others keep running`);
      if (children.size === 0) process.exit(stopping ? 0 : 1);
    });
    children.set(id, child);
  }

  const stop = () => {
    if (stopping) return;
    stopping = true;
    console.error('[dev] stopping the cluster');
    for (const child of children.values()) child.kill('SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  const addresses = Array.from({ length: o.nodes }, (_, i) => `127.0.0.1:${o.basePort + i}`);
  // n1 creates the cluster and writes its first admin token in its data directory (src/server ADMIN_TOKEN_FILE).
  const nodeTokenFile = join(dataDir, 'n1', 'admin.token');
  const tokenFile = join(dataDir, 'token');
  const up = await waitForRing(addresses, nodeTokenFile, 30_000);
  if (up) {
    copyFileSync(nodeTokenFile, tokenFile);
    chmodSync(tokenFile, 0o600);
    console.log(`ringkv dev cluster: ${o.nodes} nodes up at ${addresses.join(', ')}; data in ${dataDir}`);
    const found = relative(process.cwd(), tokenFile) === '.ringkv/token' ? ' (the CLI reads it from there when run in this directory)' : '';
    console.log(`admin token in ${tokenFile}${found}; elsewhere: export RINGKV_TOKEN_FILE=${tokenFile}`);
    console.log(`  curl -H "Authorization: Bearer $(cat ${tokenFile})" http://${addresses[0]}/status`);
    console.log(`  ./bin/ringkv.js token create --role read   # a token for a reader; token list, token revoke <id>`);
    console.log(`try, from another shell:  ./bin/ringkv.js put cart alice milk  &&  ./bin/ringkv.js get cart alice  &&  ./bin/ringkv.js status`);
    console.log('Ctrl-C stops every node cleanly.');
  } else {
    console.error(`[dev] the cluster did not form within 30 s; check the node logs above`);
  }
}

/** Polls every node's /status (with n1's admin token) until all see every node valid, owning partitions, on one ring (bounded by timeoutMs). */
async function waitForRing(addresses: string[], tokenFile: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (!existsSync(tokenFile)) throw new Error('no admin token yet');
      const headers = { authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}` };
      const views = await Promise.all(
        addresses.map(async (a) => {
          const res = await fetch(`http://${a}/status`, { headers, signal: AbortSignal.timeout(1_000) });
          return (await res.json()) as { ring: { digest: string }; members: Array<{ status: string; partitions: number }> };
        }),
      );
      const settled = views.every((v) => v.members.filter((m) => m.status === 'valid' && m.partitions > 0).length === addresses.length);
      if (settled && new Set(views.map((v) => v.ring.digest)).size === 1) return true;
    } catch {
      // not every node is listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}
