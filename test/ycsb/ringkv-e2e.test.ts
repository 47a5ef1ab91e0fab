// End to end: YCSB workload A's load and run phases against a real one-node
// ringkv (native engine, uWS HTTP, 127.0.0.1) through the ringkv binding.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/index.js';
import { readPropertyFile, runYcsb, workloadConfig, type Properties } from '../../bench/ycsb/index.js';
import { decodeRecord } from '../../bench/ycsb/record.js';
import { Random } from '../../bench/ycsb/random.js';
import { CoreWorkload } from '../../bench/ycsb/workload.js';
import { ringkvOptions } from '../../bench/ycsb/bindings/ringkv.js';
import { makeCa, type TestCa } from '../helpers/certs.js';
import { startTestNode, type TestNode } from '../helpers/server.js';

const workloadA = fileURLToPath(new URL('../../bench/ycsb/workloads/workloada', import.meta.url));

describe('YCSB workload A against a one-node ringkv', () => {
  let node: TestNode;
  let client: RingkvClient;
  beforeAll(async () => {
    node = await startTestNode('ycsb1');
    client = new RingkvClient({ nodes: [node.address] });
  });
  afterAll(async () => {
    await node?.close();
  });

  const props = (table: string, extra: Record<string, string> = {}): Properties => {
    const p = readPropertyFile(workloadA);
    const o = { recordcount: '200', operationcount: '400', table, 'ringkv.nodes': node.address, 'ringkv.n': '1', 'ringkv.r': '1', 'ringkv.w': '1', maxexecutiontime: '30', seed: '5', ...extra };
    for (const [k, v] of Object.entries(o)) p.set(k, v);
    return p;
  };

  it('loads every record readable, then runs the 50/50 read/update mix without errors', async () => {
    const p = props('ycsba', { threadcount: '4' });
    const load = await runYcsb({ phase: 'load', db: 'ringkv', props: p, workloadName: 'workloada' });
    expect(load.json.overall).toMatchObject({ operations: 200, errors: 0 });
    expect(load.json.operations.INSERT).toMatchObject({ count: 200, errors: 0 });
    expect(load.text).toContain('[INSERT], Return=OK, 200');

    // Every loaded key (YCSB's key names) holds a record of 10 fields × 100 bytes.
    const names = new CoreWorkload(workloadConfig(p), new Random(1));
    for (let k = 0; k < 200; k++) {
      const got = await client.get('ycsba', names.buildKeyName(k), { r: 1, n: 1 });
      expect(got.found, names.buildKeyName(k)).toBe(true);
      const record = decodeRecord(got.values[0]!, null)!;
      expect(Object.keys(record)).toHaveLength(10);
      expect(Object.values(record).every((f) => f.length === 100)).toBe(true);
    }

    const run = await runYcsb({ phase: 'run', db: 'ringkv', props: p, workloadName: 'workloada' });
    expect(run.json).toMatchObject({ workload: 'workloada', target: 'ringkv', phase: 'run', mode: 'closed', threads: 4, targetRate: null });
    expect(run.json.overall).toMatchObject({ operations: 400, errors: 0 });
    const { READ, UPDATE } = run.json.operations;
    expect(READ!.count + UPDATE!.count).toBe(400);
    // 50/50 within sampling noise (400 draws: sd 10).
    expect(READ!.count).toBeGreaterThan(150);
    expect(UPDATE!.count).toBeGreaterThan(150);
    expect(READ!.errors + UPDATE!.errors).toBe(0);
    for (const op of [READ!, UPDATE!]) {
      expect(op.minUs).toBeGreaterThan(0);
      expect(op.minUs).toBeLessThanOrEqual(op.p50Us);
      expect(op.p50Us).toBeLessThanOrEqual(op.p99Us);
      expect(op.p99Us).toBeLessThanOrEqual(op.maxUs);
    }
    expect(run.json.timeseries.length).toBeGreaterThanOrEqual(1);
    expect(run.json.timeseries.reduce((n, t) => n + (t.ops.READ?.count ?? 0) + (t.ops.UPDATE?.count ?? 0), 0)).toBe(400);
    expect(run.text).toMatch(/^\[OVERALL\], RunTime\(ms\), \d+$/m);
    expect(run.text).toMatch(/^\[OVERALL\], Throughput\(ops\/sec\), [\d.]+$/m);
    expect(run.text).toMatch(/^\[UPDATE\], 99\.9PercentileLatency\(us\), \d+$/m);
  });

  it('carries each key\'s causal context, so updates replace values instead of piling up siblings', async () => {
    // One thread: no two writes of a key are ever concurrent, so any sibling would be the binding's fault.
    const p = props('ycsbctx', { threadcount: '1', recordcount: '50', operationcount: '300', readproportion: '0', updateproportion: '1' });
    await runYcsb({ phase: 'load', db: 'ringkv', props: p, workloadName: 'workloada' });
    const run = await runYcsb({ phase: 'run', db: 'ringkv', props: p, workloadName: 'workloada' });
    expect(run.json.operations.UPDATE).toMatchObject({ count: 300, errors: 0 });
    const names = new CoreWorkload(workloadConfig(p), new Random(1));
    for (let k = 0; k < 50; k++) {
      const got = await client.get('ycsbctx', names.buildKeyName(k), { r: 1, n: 1 });
      expect(got.values, names.buildKeyName(k)).toHaveLength(1);
    }
  });

  it('reads a key first when its context is not cached (a fresh binding updating loaded keys)', async () => {
    // The load ran in another binding instance: this run starts with an empty context cache.
    const p = props('ycsbctx', { threadcount: '1', recordcount: '50', operationcount: '100', readproportion: '0', updateproportion: '1', seed: '9' });
    const run = await runYcsb({ phase: 'run', db: 'ringkv', props: p, workloadName: 'workloada' });
    expect(run.json.operations.UPDATE).toMatchObject({ count: 100, errors: 0 });
    const names = new CoreWorkload(workloadConfig(p), new Random(1));
    for (let k = 0; k < 50; k++) {
      expect((await client.get('ycsbctx', names.buildKeyName(k), { r: 1, n: 1 })).values).toHaveLength(1);
    }
  });
});

describe('YCSB through the ringkv binding over HTTPS with a token', () => {
  let ca: TestCa;
  let rogueCa: TestCa;
  let node: TestNode;
  let token: string;
  beforeAll(async () => {
    ca = makeCa('ycsb');
    rogueCa = makeCa('ycsb-rogue');
    node = await startTestNode('ycsbtls', { tls: { ...ca.issue('ycsbtls'), caFile: ca.caFile }, auth: { required: true } });
    token = readFileSync(node.server.adminTokenFile!, 'utf8').trim();
  });
  afterAll(async () => {
    await node?.close();
    ca?.remove();
    rogueCa?.remove();
  });

  const props = (extra: Record<string, string>): Properties => {
    const p = readPropertyFile(workloadA);
    const o = { recordcount: '50', operationcount: '100', threadcount: '2', table: 'ycsbtls', 'ringkv.nodes': node.address, 'ringkv.n': '1', 'ringkv.r': '1', 'ringkv.w': '1', maxexecutiontime: '30', seed: '3', ...extra };
    for (const [k, v] of Object.entries(o)) p.set(k, v);
    return p;
  };

  it('loads and runs with the cluster CA and a token; refuses a server its CA did not sign, and a missing token', async () => {
    const good = props({ 'ringkv.tlsca': ca.caFile, 'ringkv.token': token });
    const load = await runYcsb({ phase: 'load', db: 'ringkv', props: good, workloadName: 'workloada' });
    expect(load.json.overall).toMatchObject({ operations: 50, errors: 0 });
    const run = await runYcsb({ phase: 'run', db: 'ringkv', props: good, workloadName: 'workloada' });
    expect(run.json.overall).toMatchObject({ operations: 100, errors: 0 });
    // The records are there, read back over HTTPS by a client of its own.
    const client = new RingkvClient({ nodes: [node.address], tls: { ca: readFileSync(ca.caFile) }, token });
    const names = new CoreWorkload(workloadConfig(good), new Random(1));
    expect((await client.get('ycsbtls', names.buildKeyName(7), { r: 1, n: 1 })).found).toBe(true);
    client.close();

    // Init sets the bucket's properties: the first request already fails.
    await expect(runYcsb({ phase: 'load', db: 'ringkv', props: props({ 'ringkv.tlsca': rogueCa.caFile, 'ringkv.token': token }), workloadName: 'workloada' }))
      .rejects.toThrow(/certificate/i);
    await expect(runYcsb({ phase: 'load', db: 'ringkv', props: props({ 'ringkv.tlsca': ca.caFile, 'ringkv.token': '' }), workloadName: 'workloada' }))
      .rejects.toMatchObject({ status: 401 });
    expect(() => ringkvOptions(props({ 'ringkv.tlsca': `${ca.dir}/missing.pem` }))).toThrow(/ringkv.tlsca: cannot read the CA file/);
  });
});
