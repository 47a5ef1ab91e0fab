// Throughput of partition transfer (a node joins a node holding K objects)
// and of hint delivery (a node holds K hints for a peer), with real nodes on
// 127.0.0.1 in this process (native engines, uWS, peer WebSockets).
//
//   npx tsx bench/transfer.ts            # print
//   npx tsx bench/transfer.ts --write    # print and record in bench/RESULTS.md
import pino from 'pino';
import { NativeEngine } from '../src/engine/native/index.js';
import { startServer, type RunningServer, type ServerOptions } from '../src/server/index.js';
import { tempDir } from '../test/helpers/tmp.js';
import { machineLine, recordSection, today } from './results-file.js';

const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 50_000);
const VALUE = Buffer.alloc(100, 'v');
const quiet = pino({ level: 'silent' });

interface Row {
  what: string;
  settings: string;
  objects: number;
  seconds: number;
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function load(engine: NativeEngine, count: number): Promise<void> {
  for (let i = 0; i < count; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, count - i) }, (_, j) =>
      engine.coordinate({ bucket: Buffer.from('bench'), key: Buffer.from(`k${i + j}`), context: null, value: VALUE, now: 1, mode: 'siblings', durable: false })));
  }
  await engine.flush();
}

async function transfer(batch: number): Promise<Row> {
  const dir = tempDir('ringkv-bench-xfer-');
  const servers: RunningServer[] = [];
  try {
    const base: Partial<ServerOptions> = { port: 0, insecureLoopback: true, logger: quiet, node: { gossipIntervalMs: 100 }, antiEntropy: { intervalMs: 1e9 }, transfers: { intervalMs: 1, batch, catchUpAfterMs: 1e9 } };
    const a = await startServer({ ...base, nodeId: 'a', dataDir: `${dir.path}/a` } as ServerOptions);
    servers.push(a);
    await load(a.engine, OBJECTS);
    const started = performance.now();
    const b = await startServer({ ...base, nodeId: 'b', dataDir: `${dir.path}/b`, seeds: [a.address] } as ServerOptions);
    servers.push(b);
    // A gives every partition to B (with 2 nodes and n=3 both hold everything); done when only catch-up passes remain.
    await until(() => a.transfers.totals.objects >= OBJECTS && a.transfers.status().every((t) => t.pass === 2), 600_000, 'transfer');
    return { what: 'partition transfer (join)', settings: `batch ${batch}`, objects: a.transfers.totals.objects, seconds: (performance.now() - started) / 1000 };
  } finally {
    await Promise.all(servers.map((s) => s.close(200)));
    dir.remove();
  }
}

async function hints(intervalMs: number): Promise<Row> {
  const dir = tempDir('ringkv-bench-hints-');
  const servers: RunningServer[] = [];
  try {
    const base: Partial<ServerOptions> = { port: 0, insecureLoopback: true, logger: quiet, antiEntropy: { intervalMs: 1e9 }, transfers: { intervalMs: 1e9 } };
    const a = await startServer({ ...base, nodeId: 'a', dataDir: `${dir.path}/a`, node: { gossipIntervalMs: 100, handoffIntervalMs: 1e9 } } as ServerOptions);
    servers.push(a);
    const b = await startServer({ ...base, nodeId: 'b', dataDir: `${dir.path}/b`, seeds: [a.address], node: { gossipIntervalMs: 100 } } as ServerOptions);
    servers.push(b);
    await until(() => a.node.clusterState.members.b?.status === 'valid' && !a.node.isSuspected('b'), 30_000, 'join');
    // Records as a coordinator would have made them, held on A as hints for B.
    const scratch = await NativeEngine.open({ path: `${dir.path}/scratch`, nodeId: 'c' });
    const count = Math.min(OBJECTS, 20_000);
    for (let i = 0; i < count; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, count - i) }, async (_, j) => {
        const key = Buffer.from(`h${i + j}`);
        const record = await scratch.coordinate({ bucket: Buffer.from('bench'), key, context: null, value: VALUE, now: 1, mode: 'siblings', durable: false });
        await a.engine.hintPut('b', Buffer.from('bench'), key, record);
      }));
    }
    await scratch.close();
    // Rounds back to back: the delivery path's own speed, without the service's 1 s pacing.
    const started = performance.now();
    let delivered = 0;
    while (delivered < count) {
      delivered += (await a.node.deliverHints()).delivered;
      if (intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
    }
    return { what: 'hint delivery', settings: `rounds back to back, handoffBatch 100`, objects: count, seconds: (performance.now() - started) / 1000 };
  } finally {
    await Promise.all(servers.map((s) => s.close(200)));
    dir.remove();
  }
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  rows.push(await transfer(200));
  rows.push(await transfer(1_000));
  rows.push(await hints(0));
  const fmt = (r: Row) => `| ${r.what} | ${r.settings} | ${r.objects.toLocaleString('en')} | ${r.seconds.toFixed(2)} | ${Math.round(r.objects / r.seconds).toLocaleString('en')} | ${((r.objects * (VALUE.length + 60)) / r.seconds / 1e6).toFixed(1)} |`;
  const table = ['| what | settings | objects | seconds | objects/s | ≈ MB/s |', '|---|---|---:|---:|---:|---:|', ...rows.map(fmt)].join('\n');
  console.log(table);
  if (!process.argv.includes('--write')) return;
  recordSection('transfer', `## Partition transfer and hint delivery throughput\n\nCommand: \`npx tsx bench/transfer.ts --write\` — two real nodes in one process on 127.0.0.1 (native engines, peer WebSockets), 100-byte values. Transfer: node b joins node a holding ${OBJECTS.toLocaleString('en')} objects; timed from b's start until a has streamed every object (first pass). Hints: a holds hints for b; rounds of the handoff service (one \`kv.mergebatch\` of \`handoffBatch\` = 100 hints each) run back to back; the service's own pacing, 1 round per \`handoffIntervalMs\` = 1 s, caps delivery at 100 hints/s per target by default. Machine: ${machineLine()}. Date: ${today()}.\n\n${table}`);
}

await main();
