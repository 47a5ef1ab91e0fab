// /metrics of real nodes (native engine, uWS, real sockets), parsed as
// Prometheus text by a parser of its own (parse-prometheus-text-format):
// every metric issue 12 asks for is there, and each moves under load —
// process and runtime figures, storage (disk bytes, object and tombstone
// counts, tree memory), hints per target node, anti-entropy progress and
// partition transfer progress (a 4th node joining).
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, describe, expect, it } from 'vitest';
import { startCluster, startTestNode, waitFor, type TestNode } from '../helpers/server.js';

interface Family {
  name: string;
  type: string;
  metrics: Array<{ value?: string; labels?: Record<string, string>; buckets?: Record<string, string> }>;
}
type Scrape = Map<string, Family>;

async function scrape(node: TestNode): Promise<Scrape> {
  const res = await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  const families = (parsePrometheusTextFormat as unknown as (text: string) => Family[])(await res.text());
  return new Map(families.map((f) => [f.name, f]));
}

/** The value of a sample whose labels include `labels` (summed over the others), or undefined when the family is missing. */
function value(s: Scrape, name: string, labels: Record<string, string> = {}): number | undefined {
  const f = s.get(name);
  if (!f) return undefined;
  return f.metrics.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)).reduce((sum, m) => sum + Number(m.value), 0);
}

const OPTS = {
  partitionBits: 6,
  // Tombstones kept (no reaping): the census must count them.
  node: { reapDelayMs: -1, requestTimeoutMs: 2_000 },
  antiEntropy: { intervalMs: 300 },
  census: { intervalMs: 50 },
  transfers: { catchUpAfterMs: 500 },
};

const nodes: TestNode[] = [];
afterAll(async () => {
  await Promise.allSettled(nodes.map((n) => n.close()));
});

describe('/metrics under load', () => {
  it('has every metric, and each moves', async () => {
    nodes.push(...(await startCluster(['n1', 'n2', 'n3'], OPTS)));
    const [n1, n2] = nodes as [TestNode, TestNode];
    const before = await Promise.all(nodes.map(scrape));

    // Present from the start.
    for (const s of before) {
      for (const name of [
        'process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds',
        'ringkv_storage_disk_bytes', 'ringkv_storage_records', 'ringkv_storage_census_partitions', 'ringkv_storage_census_passes_total',
        'ringkv_storage_census_last_pass_timestamp_seconds', 'ringkv_storage_tree_bytes',
        'ringkv_aae_partitions_compared_total', 'ringkv_aae_full_passes_total', 'ringkv_aae_last_full_pass_timestamp_seconds', 'ringkv_aae_pass_partitions',
        'ringkv_transfer_partitions_pending', 'ringkv_transfer_objects_total', 'ringkv_transfer_bytes_total', 'ringkv_transfer_partitions_total',
        'ringkv_hints_pending_by_target',
      ]) {
        expect(s.has(name), name).toBe(true);
      }
      expect(value(s, 'ringkv_storage_records', { kind: 'object' })).toBe(0);
      expect(s.get('ringkv_hints_pending_by_target')!.metrics).toEqual([]);
    }

    // Load: 600 objects of 4 KiB through every node, then 100 of them deleted with their context.
    const value4k = 'x'.repeat(4096);
    const put = async (node: TestNode, key: string, body: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${node.url}/kv/load/${key}`, { method: 'PUT', body, headers, signal: AbortSignal.timeout(10_000) });
      expect(res.status, await res.clone().text()).toBe(204);
    };
    for (let b = 0; b < 6; b++) await Promise.all(Array.from({ length: 100 }, (_, j) => put(nodes[(b * 100 + j) % 3]!, `k${b * 100 + j}`, value4k)));
    await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const got = await fetch(`${n1.url}/kv/load/k${i}`, { signal: AbortSignal.timeout(10_000) });
        const context = got.headers.get('x-ringkv-context') ?? '';
        await got.arrayBuffer();
        const res = await fetch(`${n2.url}/kv/load/k${i}`, { method: 'DELETE', headers: { 'x-ringkv-context': context }, signal: AbortSignal.timeout(10_000) });
        expect(res.status).toBe(204);
      }),
    );

    // Storage: with N = 3 on 3 nodes every node holds every key; the census counts 500 live objects and 100 tombstones.
    await waitFor(async () => {
      const now = await Promise.all(nodes.map(scrape));
      return now.every((s) => value(s, 'ringkv_storage_records', { kind: 'object' }) === 500 && value(s, 'ringkv_storage_records', { kind: 'tombstone' }) === 100);
    }, 30_000, 'the census counts 500 objects and 100 tombstones on every node');

    // Anti-entropy: one replica written behind the others' back (its engine directly) is repaired by an exchange.
    for (let i = 0; i < 5; i++) {
      await n1.server.engine.coordinate({ bucket: Buffer.from('load'), key: Buffer.from(`aae${i}`), context: null, value: Buffer.from('only-on-n1'), now: Date.now(), mode: 'siblings', durable: true });
    }
    const startedS = Date.now() / 1000;
    await waitFor(async () => {
      const now = await Promise.all(nodes.map(scrape));
      const repaired = now.reduce((sum, s) => sum + (value(s, 'ringkv_aae_keys_repaired_total') ?? 0), 0);
      return repaired >= 5 && now.every((s) => (value(s, 'ringkv_aae_full_passes_total') ?? 0) >= 1 && (value(s, 'ringkv_aae_last_full_pass_timestamp_seconds') ?? 0) >= startedS - 60);
    }, 30_000, 'anti-entropy repairs the 5 keys and every node finishes a full pass');
    const mid = await Promise.all(nodes.map(scrape));
    for (const s of mid) {
      expect(value(s, 'ringkv_aae_partitions_compared_total')).toBeGreaterThan(0);
      // Q = 64, N = 3, 3 nodes: every node is a primary of all 64.
      expect(value(s, 'ringkv_aae_pass_partitions', { state: 'total' })).toBe(64);
    }

    // Transfers: a 4th node joins; the old members send it objects and bytes, it receives them, and nothing stays pending.
    const n4 = await startTestNode('n4', { ...OPTS, seeds: [n1.address] });
    nodes.push(n4);
    await waitFor(async () => {
      const now = await Promise.all(nodes.map(scrape));
      const sent = now.slice(0, 3).reduce((sum, s) => sum + (value(s, 'ringkv_transfer_objects_total', { direction: 'sent' }) ?? 0), 0);
      const pending = now.reduce((sum, s) => sum + (value(s, 'ringkv_transfer_partitions_pending') ?? 0), 0);
      const got = now[3]!;
      return sent > 0 && pending === 0 && (value(got, 'ringkv_transfer_objects_total', { direction: 'received' }) ?? 0) > 0
        && (value(got, 'ringkv_transfer_bytes_total', { direction: 'received' }) ?? 0) > 4096
        && (value(got, 'ringkv_transfer_partitions_total', { direction: 'received' }) ?? 0) > 0
        && now.slice(0, 3).some((s) => (value(s, 'ringkv_transfer_partitions_total', { direction: 'sent' }) ?? 0) > 0);
    }, 60_000, 'the join\'s transfers complete, with objects, bytes and partitions counted both ways');

    // Hints per target: n4 stops; writes whose primaries include it go to a fallback, as hints for n4.
    await n4.close();
    nodes.pop();
    for (let b = 0; b < 2; b++) await Promise.all(Array.from({ length: 50 }, (_, j) => put(nodes[j % 3]!, `h${b * 50 + j}`, 'hinted')));
    await waitFor(async () => {
      const now = await Promise.all(nodes.map(scrape));
      return now.reduce((sum, s) => sum + (value(s, 'ringkv_hints_pending_by_target', { target: 'n4' }) ?? 0), 0) > 0;
    }, 30_000, 'hints held for n4');

    // The data directories' size is re-read at most every 5 s: wait for the first reading after the writes.
    await waitFor(async () => {
      const now = await Promise.all(nodes.map(scrape));
      return now.every((s, i) => value(s, 'ringkv_storage_disk_bytes')! > value(before[i]!, 'ringkv_storage_disk_bytes')!);
    }, 20_000, 'disk bytes grown on every node');
    const after = await Promise.all(nodes.map(scrape));
    for (const [i, s] of after.entries()) {
      const b = before[i]!;
      expect(value(s, 'process_cpu_seconds_total')!).toBeGreaterThan(value(b, 'process_cpu_seconds_total')!);
      expect(value(s, 'process_resident_memory_bytes')!).toBeGreaterThan(0);
      expect(value(s, 'nodejs_heap_size_used_bytes')!).toBeGreaterThan(0);
      expect(value(s, 'nodejs_eventloop_lag_p99_seconds')!).toBeGreaterThan(0);
      // Garbage collections happened under the load (the histogram's +Inf bucket counts them).
      const gc = s.get('nodejs_gc_duration_seconds');
      expect(gc?.metrics.reduce((sum, m) => sum + Number(m.buckets?.['+Inf'] ?? 0), 0)).toBeGreaterThan(0);
      expect(value(s, 'ringkv_storage_disk_bytes')!).toBeGreaterThan(value(b, 'ringkv_storage_disk_bytes')!);
      expect(value(s, 'ringkv_storage_tree_bytes')!).toBeGreaterThan(value(b, 'ringkv_storage_tree_bytes')!);
      expect(value(s, 'ringkv_storage_census_partitions')).toBe(64);
      expect(value(s, 'ringkv_storage_census_passes_total')!).toBeGreaterThan(value(b, 'ringkv_storage_census_passes_total')!);
    }
  }, 180_000);
});
