// Ring balance of the claim (src/core/claim.ts) at 30 nodes for Q = 2^6 … 2^14,
// as Dynamo's load-balancing efficiency: mean load / max load over the nodes
// (the paper's Figure 8; strategy 3 reaches ≈ 0.99). Two loads per node:
//   - partition: partition replicas held, each partition counted on each of
//     its N = 3 preference-list nodes;
//   - key: keys held (× replicas) for 1M random keys placed by their real ring
//     position (blake3, src/record/keys.ts) — closer to the request load
//     the paper measured, and it includes the keys' own sampling noise.
// Writes bench/results/ring-balance.json; with --write, also a section in
// bench/RESULTS.md.
//
//   npx tsx bench/ring-balance.ts
//   npx tsx bench/ring-balance.ts --write
//   BENCH_RING_KEYS=100000 BENCH_RING_NODES=30 npx tsx bench/ring-balance.ts
import { mkdirSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { type ClaimMember, balance, claim } from '../src/core/claim.js';
import { type Ring, preferenceList } from '../src/core/ring.js';
import { DEFAULT_PARTITION_BITS } from '../src/engine/types.js';
import { makeBkey, positionBytes } from '../src/record/keys.js';
import { Rand } from '../test/helpers/random.js';
import { machineLine, recordSection, today } from './results-file.js';

const KEYS = Number(process.env.BENCH_RING_KEYS ?? 1_000_000);
const NODES = Number(process.env.BENCH_RING_NODES ?? 30);
const N = 3;
const BITS = [6, 7, 8, 9, 10, 11, 12, 13, 14];
const SEED = 5;

interface Row {
  q: number;
  partitionEfficiency: number;
  keyEfficiency: number;
}

interface Detail extends Row {
  primaries: { min: number; max: number };
  replicas: { min: number; max: number; mean: number };
  keys: { min: number; max: number; mean: number };
  claimMs: number;
}

/** The top 32 bits of each key's ring position: enough to find its partition for up to 2^16 partitions. */
function keyPositions(count: number): Uint32Array {
  const rand = new Rand(SEED);
  const bucket = Buffer.from('bench');
  const key = Buffer.alloc(16);
  const tops = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    for (let w = 0; w < 4; w++) key.writeUInt32BE(rand.int(0, 0xffffffff), w * 4);
    tops[i] = positionBytes(makeBkey(bucket, key)).readUInt32BE(0);
  }
  return tops;
}

function measure(bits: number, members: readonly ClaimMember[], tops: Uint32Array): Detail {
  const q = 2 ** bits;
  const t0 = performance.now();
  const owners = claim(null, members, bits);
  const claimMs = performance.now() - t0;
  const ring: Ring = { partitionBits: bits, owners, version: 1, claimant: members[0]!.id };

  const keysIn = new Float64Array(q);
  for (const top of tops) keysIn[top >>> (32 - bits)]!++;

  const replicas = new Map<string, number>(members.map((m) => [m.id, 0]));
  const keys = new Map<string, number>(members.map((m) => [m.id, 0]));
  for (let p = 0; p < q; p++) {
    for (const node of preferenceList(ring, p, N).primaries) {
      replicas.set(node, replicas.get(node)! + 1);
      keys.set(node, keys.get(node)! + keysIn[p]!);
    }
  }
  const spread = (loads: Map<string, number>) => {
    const values = [...loads.values()];
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    return { min: Math.min(...values), max: Math.max(...values), mean };
  };
  const r = spread(replicas);
  const k = spread(keys);
  const b = balance(owners, members.map((m) => m.id));
  return {
    q,
    partitionEfficiency: r.mean / r.max,
    keyEfficiency: k.mean / k.max,
    primaries: { min: b.min, max: b.max },
    replicas: r,
    keys: k,
    claimMs,
  };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en');

function main(): void {
  const members = Array.from({ length: NODES }, (_, i) => ({ id: `n${String(i).padStart(2, '0')}` }));
  const t0 = performance.now();
  const tops = keyPositions(KEYS);
  console.log(`hashed ${fmt(KEYS)} random keys in ${fmt(performance.now() - t0)} ms`);
  const details = BITS.map((bits) => measure(bits, members, tops));

  const lines = [
    `| Q | partitions / node | partition replicas / node (mean) | **partition efficiency** | keys × replicas / node (mean) | **key efficiency** | claim time |`,
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...details.map((d) =>
      [
        `${fmt(d.q)}${Math.log2(d.q) === DEFAULT_PARTITION_BITS ? ' (default)' : ''}`,
        `${d.primaries.min}..${d.primaries.max}`,
        `${d.replicas.min}..${d.replicas.max} (${d.replicas.mean.toFixed(1)})`,
        `**${d.partitionEfficiency.toFixed(4)}**`,
        `${fmt(d.keys.min)}..${fmt(d.keys.max)} (${fmt(d.keys.mean)})`,
        `**${d.keyEfficiency.toFixed(4)}**`,
        `${d.claimMs.toFixed(1)} ms`,
      ].join(' | '),
    ).map((row) => `| ${row} |`),
  ];
  const table = lines.join('\n');
  console.log(table);

  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const rows: Row[] = details.map(({ q, partitionEfficiency, keyEfficiency }) => ({ q, partitionEfficiency, keyEfficiency }));
  writeFileSync(new URL('./results/ring-balance.json', import.meta.url), `${JSON.stringify({ nodes: NODES, n: N, keys: KEYS, rows }, null, 2)}\n`);
  console.log('wrote bench/results/ring-balance.json');

  if (process.argv.includes('--write')) {
    const sigma = Math.sqrt((1 - N / NODES) / (KEYS * (N / NODES)));
    recordSection(
      'ring-balance',
      [
        `## Ring balance at ${NODES} nodes (load-balancing efficiency vs Q)`,
        '',
        `Command: \`npx tsx bench/ring-balance.ts --write\` — the claim of src/core/claim.ts for ${NODES} nodes from scratch, N = ${N}, Q = 2^${BITS[0]} … 2^${BITS.at(-1)}. Efficiency = mean load / max load over the nodes (Dynamo's Figure 8: strategy 3 ≈ 0.99). Partition load: partition replicas per node (each partition on its ${N} preference-list nodes). Key load: ${fmt(KEYS)} random 16-byte keys placed by their blake3 ring position, counted on each of their ${N} replicas. Plot data: bench/results/ring-balance.json. Machine: ${machineLine()}. Date: ${today()}.`,
        '',
        table,
        '',
        `The claim keeps every node within floor(Q/S)..ceil(Q/S) partitions and every preference list on ${N} distinct nodes, so a node's replica count is exactly ${N} × its partitions and the partition efficiency is (Q/S) / ceil(Q/S): the fraction lost is the one extra partition of the fullest nodes, which only a larger Q makes small. The key efficiency adds the keys' sampling noise: even a perfectly even ring gives each node ${N}/${NODES} of ${fmt(KEYS)} keys with a relative standard deviation of ${(100 * sigma).toFixed(2)}%, and the fullest of ${NODES} nodes sits about two of those above the mean, so with ${fmt(KEYS)} keys the key efficiency cannot exceed about ${(1 / (1 + 2 * sigma)).toFixed(3)} whatever Q is.`,
      ].join('\n'),
    );
  }
}

main();
