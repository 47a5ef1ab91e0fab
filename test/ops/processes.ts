// Real `ringkv start` processes for the operations tests: one per node, on
// ports a restart can take again (below the ephemeral range), with the test
// cluster secret, killed and their data removed afterwards.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { waitFor } from '../helpers/cluster.js';
import { writeTestSecretFile } from '../helpers/secret.js';
import { tempDir } from '../helpers/tmp.js';

export const CLI = fileURLToPath(new URL('../../bin/ringkv.js', import.meta.url));
const run = promisify(execFile);

export interface NodeProcess {
  id: string;
  address: string;
  url: string;
  dataDir: string;
  child: ChildProcess;
  /** Everything the process printed. */
  output(): string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
}

/** A port in 20000..31999 nothing listens on now (the kernel does not hand these out to outgoing connections). */
export async function stablePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 20000..31999');
}

export class ProcessCluster {
  readonly nodes = new Map<string, NodeProcess>();
  private readonly root = tempDir('ringkv-ops-');
  readonly secretFile = writeTestSecretFile(this.root.path);
  private readonly children: ChildProcess[] = [];

  constructor(private readonly extraArgs: string[] = []) {}

  dataDirOf(id: string): string {
    return join(this.root.path, id);
  }

  /** Starts (or restarts, on its port and data directory) node `id`; `seeds` for its first start. */
  start(id: string, port: number, seeds: string[], args: string[] = []): NodeProcess {
    const address = `127.0.0.1:${port}`;
    const dataDir = this.dataDirOf(id);
    const argv = [CLI, 'start', '--node-id', id, '--listen', address, '--data-dir', dataDir, '--secret-file', this.secretFile, '--partition-bits', '6', '--log-level', 'warn'];
    if (seeds.length > 0) argv.push('--seeds', seeds.join(','));
    const child = spawn(process.execPath, [...argv, ...this.extraArgs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const node: NodeProcess = { id, address, url: `http://${address}`, dataDir, child, output: () => output, exited };
    this.nodes.set(id, node);
    return node;
  }

  /** Waits until `node` answers /ping. */
  async waitUp(node: NodeProcess, timeoutMs = 20_000): Promise<void> {
    await waitFor(async () => {
      if (node.child.exitCode !== null) throw new Error(`${node.id} exited ${node.child.exitCode}:\n${node.output()}`);
      try {
        return (await fetch(`${node.url}/ping`, { signal: AbortSignal.timeout(1_000) })).ok;
      } catch {
        return false;
      }
    }, timeoutMs, `${node.id} answers /ping`);
  }

  /** Kills every process still running and removes the data. */
  async close(): Promise<void> {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(this.children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r)))));
    this.root.remove();
  }
}

/** Runs the `ringkv` command; resolves with its exit code and output (never rejects on a non-zero exit). */
export async function ringkv(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: timeoutMs, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
