// Key listing on a real 3-node cluster (three `ringkv start` processes):
// BENCH_KEYS keys spread over BENCH_BUCKETS buckets are written over HTTP,
// then one bucket is listed through node 1 (GET /buckets/{b}/keys, pages of
// BENCH_PAGE keys) while node 1's resident memory (/proc VmRSS) is sampled
// every 100 ms: the coordinator's memory must not grow with the bucket. Then
// every bucket is listed, and one bucket exported (GET .../objects). Each
// listing is checked: every key exactly once.
//
//   npm run bench:listing                          # 100,000 keys, print
//   BENCH_KEYS=1000000 npm run bench:listing -- --write    # and a section in bench/RESULTS.md
// Knobs (env): BENCH_KEYS (100000), BENCH_BUCKETS (4), BENCH_PAGE (1000),
// BENCH_CONCURRENCY (64), BENCH_VALUE_BYTES (100), BENCH_LOAD (put: one PUT
// per key; merge: POST /admin/merge batches of 1000 one-sibling records,
// each merged into its 3 primaries — what a restore does, ~10× faster to
// load a million keys on this machine; the listing does not see the difference).
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Pool } from 'undici';
import { tempDir } from '../test/helpers/tmp.js';
import { encodeRecord } from '../src/record/index.js';
import { ensureSecretFile } from '../src/server/peer-secrets.js';
import { processMemory } from './memory/measure.js';
import { freePort, spawnTracked, stopChildren, waitUntil } from './processes.js';
import { machineLine, recordSection, today } from './results-file.js';

const KEYS = Number(process.env.BENCH_KEYS ?? 100_000);
const BUCKETS = Number(process.env.BENCH_BUCKETS ?? 4);
const PAGE = Number(process.env.BENCH_PAGE ?? 1_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const VALUE_BYTES = Number(process.env.BENCH_VALUE_BYTES ?? 100);
const LOAD = process.env.BENCH_LOAD ?? 'put';
if (LOAD !== 'put' && LOAD !== 'merge') throw new Error(`BENCH_LOAD must be put or merge, got ${LOAD}`);
for (const [name, value] of Object.entries({ KEYS, BUCKETS, PAGE, CONCURRENCY, VALUE_BYTES })) {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`BENCH ${name} must be a positive integer, got ${value}`);
}

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
const bucketOf = (i: number) => `b${i % BUCKETS}`;
const keyOf = (i: number) => `user${String(i).padStart(12, '0')}`;

async function main(): Promise<void> {
  const data = tempDir('ringkv-bench-listing-');
  const nodes: string[] = [];
  for (let i = 0; i < 3; i++) nodes.push(`127.0.0.1:${await freePort()}`);
  const secretFile = `${data.path}/cluster.secret`;
  ensureSecretFile(secretFile);
  const procs = nodes.map((address, i) => {
    const args = ['bin/ringkv.js', 'start', '--node-id', `n${i + 1}`, '--listen', address, '--data-dir', `${data.path}/n${i + 1}`, '--log-level', 'warn', '--secret-file', secretFile];
    if (i > 0) args.push('--seeds', nodes[0]!);
    return spawnTracked(args);
  });
  try {
    const tokenFile = `${data.path}/n1/admin.token`;
    await waitUntil(async () => existsSync(tokenFile), 'the admin token');
    const auth = { authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}` };
    await waitUntil(async () => {
      const docs = await Promise.all(nodes.map(async (n) => (await (await fetch(`http://${n}/status`, { headers: auth })).json()) as { ring: { digest: string }; members: Array<{ status: string; partitions: number }>; transfers?: unknown[] }));
      return docs.every((d) => d.ring.digest === docs[0]!.ring.digest && d.members.filter((m) => m.status === 'valid' && m.partitions > 0).length === 3 && (d.transfers?.length ?? 0) === 0);
    }, '3 nodes on one ring, handoffs done', 180_000);

    // Load: blind PUTs (or merged records), CONCURRENCY in flight, spread over the three nodes.
    const loadStart = Date.now();
    const pools = nodes.map((n) => new Pool(`http://${n}`, { connections: Math.ceil(CONCURRENCY / 3), keepAliveTimeout: 60_000 }));
    const value = Buffer.alloc(VALUE_BYTES, 'v');
    const actor = Buffer.from('bench:0000000000000001', 'latin1');
    const recordOf = () => encodeRecord({ context: [{ actor, counter: 1 }], siblings: [{ actor, counter: 1, timestamp: loadStart, tombstone: false, value }] });
    let next = 0;
    let lastReport = Date.now();
    const report = (i: number) => {
      if (Date.now() - lastReport < 10_000) return;
      lastReport = Date.now();
      console.error(`load: ${i} of ${KEYS}`);
    };
    const MERGE_BATCH = 1_000;
    await Promise.all(
      Array.from({ length: LOAD === 'merge' ? Math.min(CONCURRENCY, 6) : CONCURRENCY }, async (_, w) => {
        while (next < KEYS) {
          if (LOAD === 'merge') {
            const from = next;
            const to = Math.min(KEYS, next + MERGE_BATCH);
            next = to;
            const objects = [];
            for (let i = from; i < to; i++) objects.push({ bucket: Buffer.from(bucketOf(i)).toString('base64url'), key: Buffer.from(keyOf(i)).toString('base64url'), record: recordOf().toString('base64url') });
            const res = await pools[w % 3]!.request({ path: '/admin/merge', method: 'POST', body: JSON.stringify({ objects }), headers: { ...auth, 'content-type': 'application/json' }, headersTimeout: 120_000, bodyTimeout: 120_000 });
            const doc = (await res.body.json()) as { merged: number };
            if (res.statusCode !== 200 || doc.merged !== to - from) throw new Error(`merge ${from}: ${res.statusCode} ${JSON.stringify(doc).slice(0, 300)}`);
            report(to);
            continue;
          }
          const i = next++;
          const res = await pools[w % 3]!.request({ path: `/kv/${bucketOf(i)}/${keyOf(i)}`, method: 'PUT', body: value, headers: auth });
          await res.body.dump();
          if (res.statusCode !== 204) throw new Error(`PUT ${i}: ${res.statusCode}`);
          report(i);
        }
      }),
    );
    await Promise.all(pools.map((p) => p.close()));
    const loadMs = Date.now() - loadStart;
    console.error(`loaded ${KEYS} keys in ${(loadMs / 1000).toFixed(0)} s`);
    await new Promise((r) => setTimeout(r, 3_000));

    const coordinator = procs[0]!.pid!;
    const list = async (path: string, field: 'keys' | 'objects', limit: number) => {
      const before = processMemory(coordinator).rssBytes;
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, processMemory(coordinator).rssBytes)), 100);
      const seen = new Set<string>();
      let items = 0;
      let pages = 0;
      const started = Date.now();
      let cursor: string | null = null;
      try {
        do {
          const q = new URLSearchParams({ limit: String(limit), ...(field === 'keys' ? { encoding: 'base64url' } : {}), ...(cursor ? { cursor } : {}) });
          const res = await fetch(`http://${nodes[0]}${path}?${q}`, { headers: auth });
          if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
          const doc = (await res.json()) as { keys?: string[]; objects?: Array<{ key: string }>; cursor: string | null };
          for (const k of doc.keys ?? doc.objects!.map((o) => o.key)) seen.add(k);
          items += (doc.keys ?? doc.objects!).length;
          cursor = doc.cursor;
          pages++;
        } while (cursor !== null);
      } finally {
        clearInterval(sampler);
      }
      const ms = Date.now() - started;
      return { items, distinct: seen.size, pages, ms, rate: items / (ms / 1000), before, peak };
    };
    const perBucket = Math.ceil(KEYS / BUCKETS);
    const one = await list('/buckets/b0/keys', 'keys', PAGE);
    console.error(`keys of b0: ${one.items} (${one.distinct} distinct) in ${one.pages} pages, ${(one.ms / 1000).toFixed(1)} s, ${one.rate.toFixed(0)} keys/s, coordinator RSS ${mib(one.before)} → peak ${mib(one.peak)}`);
    const all: Array<Awaited<ReturnType<typeof list>>> = [];
    for (let b = 0; b < BUCKETS; b++) all.push(await list(`/buckets/b${b}/keys`, 'keys', PAGE));
    const listedAll = all.reduce((s, r) => s + r.items, 0);
    const allMs = all.reduce((s, r) => s + r.ms, 0);
    const peakAll = Math.max(...all.map((r) => r.peak));
    console.error(`every bucket: ${listedAll} keys in ${(allMs / 1000).toFixed(1)} s, coordinator RSS peak ${mib(peakAll)}`);
    const exp = await list('/buckets/b0/objects', 'objects', 1_000);
    console.error(`export of b0: ${exp.items} objects in ${(exp.ms / 1000).toFixed(1)} s, ${exp.rate.toFixed(0)} objects/s, coordinator RSS peak ${mib(exp.peak)}`);
    const ok = one.items === one.distinct && one.items === Math.min(perBucket, KEYS) && listedAll === KEYS && all.every((r) => r.items === r.distinct) && exp.items === exp.distinct && exp.items === one.items;
    if (!ok) throw new Error('a listing did not return every key exactly once');

    const load1 = `load average ${loadavg()[0]!.toFixed(2)} at the end`;
    const body = `## Key listing (${KEYS.toLocaleString('en')} keys)

Command: \`BENCH_KEYS=${KEYS}${LOAD === 'merge' ? ' BENCH_LOAD=merge' : ''} npm run bench:listing -- --write\` — three \`ringkv start\` processes on 127.0.0.1 (N=3, R=W=2, Q=4096, tokens on), ${KEYS.toLocaleString('en')} keys of ${VALUE_BYTES}-byte values in ${BUCKETS} buckets (${LOAD === 'put' ? `blind PUTs, ${CONCURRENCY} in flight` : 'POST /admin/merge batches of 1000 one-sibling records, 6 in flight'}, ${(loadMs / 1000).toFixed(0)} s), then listed through node 1 (\`GET /buckets/{b}/keys?limit=${PAGE}\`, each partition read from r = 2 replicas and merged, docs/listing.md). Every listing returned every key exactly once. Coordinator memory: node 1's VmRSS sampled every 100 ms during the listing. Machine: ${machineLine()}, 2 shared cores with other work running; ${load1}. Date: ${today()}.

| listing | items | pages | time | rate | coordinator RSS before → peak |
| --- | ---: | ---: | ---: | ---: | --- |
| keys of one bucket (b0) | ${one.items.toLocaleString('en')} | ${one.pages} | ${(one.ms / 1000).toFixed(1)} s | ${one.rate.toFixed(0)} keys/s | ${mib(one.before)} → ${mib(one.peak)} |
| keys of every bucket (one listing each) | ${listedAll.toLocaleString('en')} | ${all.reduce((s, r) => s + r.pages, 0)} | ${(allMs / 1000).toFixed(1)} s | ${(listedAll / (allMs / 1000)).toFixed(0)} keys/s | peak ${mib(peakAll)} |
| objects of b0 (export, pages of 1000) | ${exp.items.toLocaleString('en')} | ${exp.pages} | ${(exp.ms / 1000).toFixed(1)} s | ${exp.rate.toFixed(0)} objects/s | ${mib(exp.before)} → ${mib(exp.peak)} |
`;
    console.log(body);
    if (process.argv.includes('--write')) recordSection(`listing-${KEYS}`, body);
  } finally {
    await stopChildren(procs);
    data.remove();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
