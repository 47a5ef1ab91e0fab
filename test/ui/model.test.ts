// The dashboard's pure parts, step by step without a browser: what it reads
// from /metrics text (made by prom-client, as the nodes make it), the rates
// and percentiles it charts, transfer progress across polls, and the ring
// picture's layout (every partition has its own cell, found again under the
// pointer).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { MetricsHistory, intervalPoint, siblingStats } from '../../ui/src/history.js';
import { byLabel, bucketDelta, parseScrape, quantile, rate, total } from '../../ui/src/prom.js';
import { cellOf, colorsFor, geometry, layoutFor, partitionAt } from '../../ui/src/ring.js';
import { TransferTracker, transferRows } from '../../ui/src/transfers.js';

function nodeRegistry() {
  const registry = new Registry();
  registry.setDefaultLabels({ node: 'n1' });
  const registers = [registry];
  return {
    registry,
    requests: new Counter({ name: 'ringkv_requests_total', help: 'r', labelNames: ['op', 'outcome'], registers }),
    latency: new Histogram({ name: 'ringkv_request_duration_seconds', help: 'l', labelNames: ['op'], buckets: [0.001, 0.01, 0.1, 1], registers }),
    siblings: new Histogram({ name: 'ringkv_get_siblings', help: 's', buckets: [1, 2, 3, 5], registers }),
    hints: new Gauge({ name: 'ringkv_hints_pending', help: 'h', labelNames: ['target'], registers }),
  };
}

describe('metrics as the page reads them', () => {
  it('rates per operation, errors and latency percentiles over the interval between two scrapes', async () => {
    const m = nodeRegistry();
    m.requests.inc({ op: 'put', outcome: 'ok' }, 100);
    for (let i = 0; i < 100; i++) m.latency.observe({ op: 'put' }, 0.0005);
    const a = parseScrape(await m.registry.metrics(), 10_000);
    m.requests.inc({ op: 'put', outcome: 'ok' }, 40);
    m.requests.inc({ op: 'get', outcome: 'found' }, 15);
    m.requests.inc({ op: 'get', outcome: 'not_found' }, 5);
    m.requests.inc({ op: 'put', outcome: 'QUORUM_FAILED' }, 4);
    // 50 fast and 50 slow requests in the interval: p50 at the top of the fast bucket's range, p99 in the slow one.
    for (let i = 0; i < 50; i++) m.latency.observe({ op: 'get' }, 0.005);
    for (let i = 0; i < 50; i++) m.latency.observe({ op: 'put' }, 0.5);
    const b = parseScrape(await m.registry.metrics(), 12_000);

    expect(total(b, 'ringkv_requests_total')).toBe(164);
    expect(total(b, 'ringkv_no_such_metric')).toBeNull();
    const p = intervalPoint(a, b);
    expect(p.t).toBe(12);
    expect(p.rateByOp).toEqual({ put: 22, get: 10 });
    expect(p.errorsPerS).toBe(2);
    // The interval's 100 observations only (the first scrape's 100 are subtracted).
    expect(bucketDelta(a, b, 'ringkv_request_duration_seconds')!.at(-1)!.count).toBe(100);
    expect(p.p50Ms).toBeCloseTo(10, 6);
    expect(p.p99Ms).toBeCloseTo(100 + 900 * (99 - 50) / 50, 6);
  });

  it('a counter that went down (the node restarted) gives no rate rather than a negative one', async () => {
    const before = nodeRegistry();
    before.requests.inc({ op: 'put', outcome: 'ok' }, 500);
    const a = parseScrape(await before.registry.metrics(), 1_000);
    const after = nodeRegistry();
    after.requests.inc({ op: 'put', outcome: 'ok' }, 3);
    const b = parseScrape(await after.registry.metrics(), 2_500);
    expect(rate(a, b, 'ringkv_requests_total')).toBeNull();
    expect(intervalPoint(a, b).rateByOp).toEqual({});
    expect(intervalPoint(a, b).p50Ms).toBeNull();
  });

  it('quantiles interpolate inside their bucket; the +Inf bucket answers its lower bound; nothing counted is null', () => {
    const buckets = [
      { le: 1, count: 10 },
      { le: 2, count: 30 },
      { le: Infinity, count: 40 },
    ];
    expect(quantile(buckets, 0.25)).toBeCloseTo(1, 9);
    expect(quantile(buckets, 0.5)).toBeCloseTo(1.5, 9);
    expect(quantile(buckets, 0.99)).toBe(2);
    expect(quantile([{ le: 1, count: 0 }, { le: Infinity, count: 0 }], 0.5)).toBeNull();
  });

  it('sibling counts and hints per target, when the node exports them', async () => {
    const m = nodeRegistry();
    expect(siblingStats(parseScrape(await m.registry.metrics(), 1))).toEqual({ reads: 0, meanSiblings: null, conflictedShare: null });
    for (const n of [1, 1, 1, 3]) m.siblings.observe(n);
    m.hints.set({ target: 'n2' }, 7);
    m.hints.set({ target: 'n3' }, 2);
    const s = parseScrape(await m.registry.metrics(), 2);
    expect(siblingStats(s)).toEqual({ reads: 4, meanSiblings: 1.5, conflictedShare: 0.25 });
    expect(total(s, 'ringkv_hints_pending')).toBe(9);
    expect([...byLabel(s, 'ringkv_hints_pending', 'target')]).toEqual([['n2', 7], ['n3', 2]]);
  });

  it('the history keeps the window and drops what is older', async () => {
    const m = nodeRegistry();
    const h = new MetricsHistory(10_000);
    for (let t = 0; t <= 30_000; t += 1_000) {
      m.requests.inc({ op: 'get', outcome: 'found' }, 5);
      h.add(parseScrape(await m.registry.metrics(), t));
    }
    expect(h.series().length).toBe(11);
    expect(h.series()[0]!.t).toBe(20);
    expect(h.series().every((p) => p.rateByOp.get === 5)).toBe(true);
    expect(h.ops()).toEqual(['get']);
  });
});

describe('transfer progress', () => {
  it('counts partitions done since the transfers began, passes of pending ones, and object rates per target', () => {
    const t = new TransferTracker();
    expect(t.update([], 0)).toMatchObject({ planned: 0, progress: 1 });
    let v = t.update(
      [
        { partition: 1, to: 'n4', sent: 0, pass: 1 },
        { partition: 2, to: 'n4', sent: 0, pass: 1 },
        { partition: 3, to: 'n2', sent: 0, pass: 1 },
        { partition: 4, to: 'n4', sent: 0, pass: 1 },
      ],
      1_000,
    );
    expect(v).toMatchObject({ planned: 4, done: 0, progress: 0, objectsPerS: null });
    v = t.update(
      [
        { partition: 2, to: 'n4', sent: 300, pass: 2 },
        { partition: 3, to: 'n2', sent: 100, pass: 1 },
        { partition: 4, to: 'n4', sent: 200, pass: 1 },
      ],
      3_000,
    );
    expect(v.planned).toBe(4);
    expect(v.done).toBe(1);
    // Partition 1 done (1), partition 2 through its first pass (1/3), the others not yet.
    expect(v.progress).toBeCloseTo((1 + 1 / 3) / 4, 9);
    expect(v.objectsPerS).toBe(300);
    const n4 = v.targets.find((x) => x.to === 'n4')!;
    expect(n4).toMatchObject({ planned: 3, done: 1, pending: 2, sent: 500, objectsPerS: 250 });
    expect(n4.progress).toBeCloseTo((1 + 1 / 3) / 3, 9);
    // All handed over: idle, and the next join starts a new count.
    expect(t.update([], 4_000)).toMatchObject({ planned: 0, done: 0, progress: 1 });
    expect(t.update([{ partition: 9, to: 'n5', sent: 0, pass: 1 }], 5_000)).toMatchObject({ planned: 1, done: 0 });
  });

  it('takes only well-formed rows of /status transfers', () => {
    expect(transferRows(undefined)).toEqual([]);
    expect(transferRows([{ partition: 1, to: 'n2', sent: 3, pass: 1 }, { partition: '1', to: 'n2' }, null, 7])).toEqual([{ partition: 1, to: 'n2', sent: 3, pass: 1 }]);
  });
});

describe('the ring picture', () => {
  it('one band up to 256 partitions, 256 spokes of stacked partitions above (Q = 4096: 16 each)', () => {
    expect(layoutFor(64)).toEqual({ spokes: 64, tracks: 1 });
    expect(layoutFor(256)).toEqual({ spokes: 256, tracks: 1 });
    expect(layoutFor(4096)).toEqual({ spokes: 256, tracks: 16 });
  });

  it('every partition has its own cell of at least a few pixels at Q = 4096, and the pointer finds it again', () => {
    const g = geometry(420);
    for (const q of [8, 64, 4096]) {
      const layout = layoutFor(q);
      for (let p = 0; p < q; p += Math.max(1, q / 512)) {
        const c = cellOf(p, layout, g);
        const a = (c.a0 + c.a1) / 2;
        const r = (c.r0 + c.r1) / 2;
        expect(partitionAt(210 + r * Math.cos(a), 210 + r * Math.sin(a), q, g), `q=${q} p=${p}`).toBe(p);
        // Narrowest at the inner edge: still about a pixel wide and several deep.
        expect(c.r0 * (c.a1 - c.a0)).toBeGreaterThan(q === 4096 ? 1.9 : 5);
        expect(c.r1 - c.r0).toBeGreaterThan(q === 4096 ? 5 : 50);
      }
    }
    // The centre and the corners are not on the ring.
    expect(partitionAt(210, 210, 4096, g)).toBeNull();
    expect(partitionAt(0, 0, 4096, g)).toBeNull();
  });

  it('30 members get 30 different colours, the same whatever order they are listed in', () => {
    const ids = Array.from({ length: 30 }, (_, i) => `node-${i}`);
    const colors = colorsFor(ids);
    expect(new Set(colors.values()).size).toBe(30);
    expect(colorsFor([...ids].reverse())).toEqual(colors);
  });
});
