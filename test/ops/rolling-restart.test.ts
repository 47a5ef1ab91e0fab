// A rolling restart as an operator runs it (issue 12, item 4): a 3-node
// (n, r, w) = (3, 2, 2) cluster of real `ringkv start` processes under a
// bounded client load; each node in turn is drained with `ringkv drain
// --exit` (it must exit 0), then started again on its port and data
// directory. The client retries a failed request (client-side retry, as a
// real application would); the test records every first-attempt failure
// with its reason, requires zero requests failing after the retries, and
// reads back every acknowledged write afterwards.
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { RingkvClient, RingkvError } from '../../src/client/index.js';
import { waitFor } from '../helpers/cluster.js';
import { adminTokenFile, readAdminToken, ringkv, type NodeProcess } from '../helpers/processes.js';
import { stablePort } from '../helpers/server.js';
import { opsCluster } from './processes.js';

const cluster = opsCluster();
afterAll(() => cluster.close());

/** Load bounds: whichever comes first (paced, so the load lasts through every node's restart; an earlier run hit a count bound early and idled through the last one). */
const MAX_OPS = 100_000;
const MAX_LOAD_MS = 240_000;
const WORKERS = 4;
/** Pause of each worker between its requests: at most ~200 requests/s in all. */
const PACE_MS = 20;
/** Attempts per request (the first and the retries), and the pause between them. */
const ATTEMPTS = 10;
const RETRY_PAUSE_MS = 200;

interface StatusDoc {
  ring: { digest: string };
  members: Array<{ id: string; status: string; partitions: number; draining?: boolean; health: string }>;
}

describe('rolling restart with drain', () => {
  it('drains and restarts every node in turn under load: zero failed requests after retry, every acknowledged write reads back', async () => {
    const ids = ['n1', 'n2', 'n3'];
    const ports = new Map<string, number>();
    for (const id of ids) ports.set(id, await stablePort());
    const seedsOf = (id: string) => (id === 'n1' ? [] : [`127.0.0.1:${ports.get('n1')}`]);
    for (const id of ids) {
      const node = cluster.spawn(id, ports.get(id)!, seedsOf(id));
      await cluster.waitUp(node);
    }
    await waitFor(() => existsSync(adminTokenFile(cluster.dataDirOf('n1'))), 10_000, 'n1 writes its admin token');
    const token = readAdminToken(cluster.dataDirOf('n1'));
    const statusOf = async (node: NodeProcess): Promise<StatusDoc> =>
      (await (await fetch(`${node.url}/status`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(2_000) })).json()) as StatusDoc;
    const settled = async (): Promise<boolean> => {
      try {
        const docs = await Promise.all(ids.map((id) => statusOf(cluster.nodes.get(id)!)));
        return docs.every(
          (d) =>
            d.members.length === 3 &&
            d.members.every((m) => m.status === 'valid' && m.partitions > 0 && m.draining !== true && m.health !== 'suspect') &&
            d.ring.digest === docs[0]!.ring.digest,
        );
      } catch {
        return false;
      }
    };
    await waitFor(settled, 30_000, 'three valid members on one ring');

    const client = new RingkvClient({ nodes: ids.map((id) => cluster.nodes.get(id)!.address), token, routing: 'client', ringRefreshMs: 1_000 });
    const acked = new Map<string, string>();
    const firstFailures: Array<{ op: string; key: string; error: string }> = [];
    const failures: Array<{ op: string; key: string; error: string }> = [];
    const staleReads: string[] = [];
    let ops = 0;
    let stop = false;
    const loadStarted = Date.now();
    const describe = (err: unknown) => (err instanceof RingkvError ? `${err.code} (${err.status}): ${err.message}` : String(err));
    const withRetry = async <T>(op: string, key: string, run: () => Promise<T>): Promise<T | undefined> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await run();
        } catch (err) {
          if (attempt === 1) firstFailures.push({ op, key, error: describe(err) });
          if (attempt === ATTEMPTS) {
            failures.push({ op, key, error: describe(err) });
            return undefined;
          }
          await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
        }
      }
    };
    const worker = async (w: number) => {
      let seq = 0;
      while (!stop && ops < MAX_OPS && Date.now() - loadStarted < MAX_LOAD_MS) {
        ops++;
        const known = [...acked.keys()];
        if (known.length > 0 && seq % 3 === 2) {
          const key = known[Math.floor(Math.random() * known.length)]!;
          const got = await withRetry('get', key, () => client.get('roll', key));
          if (got && (!got.found || got.values.some((v) => v.toString('utf8') !== acked.get(key)))) staleReads.push(key);
        } else {
          const key = `w${w}-k${seq}`;
          const value = `v-${key}`;
          // A blind write of a new key: a retry after an ambiguous failure writes the same value again.
          const done = await withRetry('put', key, () => client.put('roll', key, value));
          if (done) acked.set(key, value);
        }
        seq++;
        await new Promise((r) => setTimeout(r, PACE_MS));
      }
    };
    const load = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));

    try {
      const phases: Array<{ node: string; opsDuring: number; drainMs: number; report: string }> = [];
      await waitFor(() => ops >= 100, 20_000, 'the load runs');
      for (const id of ids) {
        const node = cluster.nodes.get(id)!;
        const opsBefore = ops;
        const started = Date.now();
        const drained = await ringkv(['drain', '--node', node.address, '--exit', '--json'], { RINGKV_TOKEN: token });
        expect(drained.code, drained.stderr).toBe(0);
        const report = JSON.parse(drained.stdout) as { state: string; hintsLeft: number };
        expect(report.state).toBe('drained');
        // The process stops by itself, exit 0.
        expect(await Promise.race([node.exit, new Promise((r) => setTimeout(() => r('still running'), 20_000))])).toBe(0);
        const drainMs = Date.now() - started;
        // Down for a moment (as a restart by a supervisor), then up again on its port and data.
        await new Promise((r) => setTimeout(r, 500));
        const again = cluster.spawn(id, ports.get(id)!, seedsOf(id));
        await cluster.waitUp(again);
        await waitFor(settled, 30_000, `${id} back: three valid members, none draining or suspected, one ring`);
        phases.push({ node: id, opsDuring: ops - opsBefore, drainMs, report: drained.stderr.trim() });
      }
      stop = true;
      await load;
      for (const p of phases) expect(p.opsDuring, `requests made while ${p.node} drained and restarted`).toBeGreaterThan(20);

      // Hints written while a node was down reach it: wait until none is pending anywhere.
      await waitFor(async () => {
        const texts = await Promise.all(ids.map(async (id) => (await fetch(`${cluster.nodes.get(id)!.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text()));
        return texts.every((t) => /^ringkv_hints_pending(\{[^}]*\})? 0$/m.test(t));
      }, 30_000, 'no hints pending on any node');

      // Every acknowledged write reads back (r = 2), with only its own value.
      const missing: string[] = [];
      const keys = [...acked.keys()];
      for (let i = 0; i < keys.length; i += 32) {
        await Promise.all(
          keys.slice(i, i + 32).map(async (key) => {
            const got = await client.get('roll', key);
            if (!got.found || got.values.some((v) => v.toString('utf8') !== acked.get(key))) missing.push(key);
          }),
        );
      }
      const byReason = new Map<string, number>();
      for (const f of firstFailures) {
        const reason = f.error.replace(/[0-9a-f]{8,}|\d+/g, '#').slice(0, 160);
        byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
      }
      console.log(
        `rolling restart: ${ops} requests (${acked.size} acknowledged writes) over ${Math.round((Date.now() - loadStarted) / 1000)} s; ` +
          `phases ${JSON.stringify(phases.map((p) => ({ node: p.node, requests: p.opsDuring, drainAndExitMs: p.drainMs })))}; ` +
          `first-attempt failures ${firstFailures.length} ${JSON.stringify([...byReason])}; failed after ${ATTEMPTS} attempts ${failures.length}; ` +
          `reads during the load that missed an acknowledged write ${staleReads.length}\n${phases.map((p) => p.report).join('\n')}`,
      );
      expect(failures).toEqual([]);
      expect(missing).toEqual([]);
    } finally {
      stop = true;
      await load;
      client.close();
    }
  }, 400_000);
});
