// A cluster of real `ringkv start` processes on 127.0.0.1 for the dashboard's
// browser tests and its screenshot script (test/helpers/processes.ts): tokens
// on (the first node writes the admin token), a shared cluster secret, nodes
// that can be SIGKILLed and restarted on their port; and the HTTP calls the
// tests make to it.
import { waitFor } from '../helpers/cluster.js';
import { ProcessCluster } from '../helpers/processes.js';

interface StatusDoc {
  ring: { digest: string };
  members: Array<{ id: string; status: string; partitions: number; health: string }>;
}

/** close() gives each node 5 s after SIGTERM. */
export class DashboardCluster extends ProcessCluster {
  constructor() {
    super({ prefix: 'ringkv-ui-', logLevel: 'info', stopGraceMs: 5_000 });
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
}
