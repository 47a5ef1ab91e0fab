// Standalone Jepsen-style run (same as the vitest test, without the asserts):
//   npx tsx test/jepsen/run.ts [--write]
// with RINGKV_JEPSEN_SECONDS / _NODES / _SEED / _CLIENTS / _KEYS / _SETTLE_SECONDS /
// _PARTITIONS (0: none) / _LABEL (its own block in RESULTS.md, e.g. 'before item 4 (sloppy reads)').
// Partitions need root and `nft`; without them the run says so and goes on with pauses and kills.
// --write (or RINGKV_JEPSEN_WRITE=1) puts the table into bench/RESULTS.md.
import { formatRywTable, formatSummary, formatTable, optionsFromEnv, runJepsen, writeResults } from './workload.js';

// Ctrl-C or a kill: exit normally, so the exit hooks run (the partition table is deleted, nodes stop).
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
const opts = optionsFromEnv();
const report = await runJepsen(opts);
console.log(formatTable(report));
console.log(formatRywTable(report));
console.log(formatSummary(report));
if (process.argv.includes('--write') || process.env.RINGKV_JEPSEN_WRITE === '1') {
  const env = Object.entries({ RINGKV_JEPSEN_SECONDS: opts.seconds, RINGKV_JEPSEN_NODES: opts.nodes, RINGKV_JEPSEN_SEED: opts.seed, ...(opts.label ? { RINGKV_JEPSEN_LABEL: `'${opts.label}'` } : {}) })
    .map(([k, v]) => `${k}=${v}`).join(' ');
  // RINGKV_JEPSEN_MACHINE_NOTE: what else ran on the machine (e.g. "2 shared cores, other test runs beside it").
  writeResults(report, `${env} npx tsx test/jepsen/run.ts --write`, process.env.RINGKV_JEPSEN_MACHINE_NOTE);
  console.log('wrote bench/RESULTS.md');
}
const bad = report.byMode.siblings.lost + report.byMode.set.lost;
for (const c of report.crashes) console.error(`${c.node} exited on its own (${c.signal ?? c.code}):\n${c.log.join('\n')}`);
process.exit(bad > 0 || report.crashes.length > 0 || !report.aliveAtEnd.every(Boolean) ? 1 : 0);
