// A cluster of real `ringkv start` processes on 127.0.0.1 for the dashboard's
// browser tests and its screenshot script: tokens on (the first node writes
// the admin token), a shared cluster secret, nodes that can be SIGKILLed and
// restarted on their port.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../helpers/cluster.js';
import { writeTestSecretFile } from '../helpers/secret.js';
import { tempDir } from '../helpers/tmp.js';

const CLI = fileURLToPath(new URL('../../bin/ringkv.js', import.meta.url));

export interface NodeProcess {
  id: string;
  address: string;
  url: string;
  dataDir: string;
  child: ChildProcess;
  /** stdout and stderr so far (for failure messages). */
  log(): string;
}

interface StatusDoc {
  ring: { digest: string };
  members: Array<{ id: string; status: string; partitions: number; health: string }>;
}

export class ProcessCluster {
  readonly dir = tempDir('ringkv-ui-');
  private readonly secretFile = writeTestSecretFile(this.dir.path);
  readonly nodes = new Map<string, NodeProcess>();
  private readonly children = new Set<ChildProcess>();

  /**
   * Starts node `id` (seeded from `seeds`) and waits until it listens. Without
   * `port`, on a random port below the kernel's ephemeral range (so a restart
   * on it is not beaten to it by an outgoing connection), another on a clash.
   */
  async start(id: string, seeds: string[] = [], port?: number): Promise<NodeProcess> {
    let lastLog = '';
    for (let attempt = 0; attempt < (port === undefined ? 10 : 1); attempt++) {
      const p = port ?? 20_000 + Math.floor(Math.random() * 12_000);
      const started = await this.spawnNode(id, p, seeds);
      if (typeof started !== 'string') {
        this.nodes.set(id, started);
        return started;
      }
      lastLog = started;
    }
    throw new Error(`${id} did not start:\n${lastLog}`);
  }

  /** The node's process, started; or its log when it exited first. */
  private async spawnNode(id: string, port: number, seeds: string[]): Promise<NodeProcess | string> {
    const address = `127.0.0.1:${port}`;
    const dataDir = join(this.dir.path, id);
    const args = [CLI, 'start', '--node-id', id, '--listen', address, '--data-dir', dataDir, '--secret-file', this.secretFile, '--log-level', 'info'];
    if (seeds.length > 0) args.push('--seeds', seeds.join(','));
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    let log = '';
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (log.includes('ringkv node listening')) return { id, address, url: `http://${address}`, dataDir, child, log: () => log };
      if (child.exitCode !== null || child.signalCode !== null) return log;
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    return `${log}\n(not listening after 20 s)`;
  }

  /** SIGKILL: no shutdown, no goodbye to the peers. */
  async kill(id: string): Promise<void> {
    const n = this.nodes.get(id)!;
    if (n.child.exitCode !== null || n.child.signalCode !== null) return;
    const exited = new Promise((r) => n.child.once('exit', r));
    n.child.kill('SIGKILL');
    await exited;
  }

  /** Starts a killed node again on its port and data directory. */
  async restart(id: string): Promise<NodeProcess> {
    const n = this.nodes.get(id)!;
    return this.start(id, [], Number(n.address.split(':')[1]));
  }

  /** The cluster's first admin token, written by the node that created it. */
  adminToken(first = 'n1'): string {
    const file = join(this.nodes.get(first)!.dataDir, 'admin.token');
    if (!existsSync(file)) throw new Error(`no ${file}`);
    return readFileSync(file, 'utf8').trim();
  }

  async call(id: string, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const res = await fetch(`${this.nodes.get(id)!.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(5_000),
    });
    const text = await res.text();
    let json: unknown = text;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, json };
  }

  /** A new token of `role`, made by the admin token through the API. */
  async makeToken(role: 'metrics' | 'read' | 'write' | 'admin', admin: string): Promise<string> {
    const made = await this.call('n1', 'POST', '/admin/tokens', admin, { role, label: `dashboard test (${role})` });
    if (made.status !== 201) throw new Error(`token create: ${made.status} ${JSON.stringify(made.json)}`);
    return (made.json as { token: string }).token;
  }

  /** Waits until every running node sees `ids` as valid members owning partitions, on one ring. */
  async converged(ids: string[], token: string, timeoutMs = 30_000): Promise<void> {
    await waitFor(async () => {
      const docs = await Promise.all(ids.map(async (id) => (await this.call(id, 'GET', '/status', token)).json as StatusDoc));
      return docs.every(
        (d) =>
          d.members.filter((m) => m.status === 'valid').length === ids.length &&
          d.members.every((m) => m.status !== 'valid' || m.partitions > 0) &&
          d.ring.digest === docs[0]!.ring.digest,
      );
    }, timeoutMs, `${ids.join(', ')} valid on one ring`);
  }

  /** Writes `count` small objects through `id`, `parallel` at a time (bounded in count; each request 5 s at most). */
  async load(id: string, token: string, count: number, parallel = 16): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        const res = await fetch(`${this.nodes.get(id)!.url}/kv/dash/key-${i}`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${token}` },
          body: `value ${i} ${'x'.repeat(200)}`,
          signal: AbortSignal.timeout(5_000),
        });
        await res.arrayBuffer();
        if (res.status !== 204) throw new Error(`PUT key-${i}: ${res.status}`);
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
  }

  /**
   * Reads `count` of the objects load() wrote through `id`, `parallel` at a
   * time: 200, 300 (siblings) and 404 are answers; 503s (a quorum not reached
   * in time, as a join under load can give: docs/cluster.md) are counted and
   * returned; anything else throws.
   */
  async readBack(id: string, token: string, count: number, parallel = 8): Promise<{ unavailable: number }> {
    let next = 0;
    let unavailable = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        const res = await fetch(`${this.nodes.get(id)!.url}/kv/dash/key-${i}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
        const body = Buffer.from(await res.arrayBuffer());
        if (res.status === 503) unavailable++;
        else if (![200, 300, 404].includes(res.status)) throw new Error(`GET key-${i}: ${res.status} ${body.toString().slice(0, 300)}`);
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    return { unavailable };
  }

  /** SIGTERM to every process still running (SIGKILL after 5 s), then the data is removed. */
  async stop(): Promise<void> {
    await Promise.all(
      [...this.children].map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null) return;
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        const timer = setTimeout(() => c.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }),
    );
    this.dir.remove();
  }
}
