// Standalone Jepsen-style run (same as the vitest test, without the asserts):
//   npx tsx test/jepsen/run.ts [--write]
// with RINGKV_JEPSEN_SECONDS / _NODES / _SEED / _CLIENTS / _KEYS / _SETTLE_SECONDS.
// --write (or RINGKV_JEPSEN_WRITE=1) puts the table into bench/RESULTS.md.
import { formatSummary, formatTable, optionsFromEnv, runJepsen, writeResults } from './workload.js';

const opts = optionsFromEnv();
const report = await runJepsen(opts);
console.log(formatTable(report));
console.log(formatSummary(report));
if (process.argv.includes('--write') || process.env.RINGKV_JEPSEN_WRITE === '1') {
  const env = Object.entries({ RINGKV_JEPSEN_SECONDS: opts.seconds, RINGKV_JEPSEN_NODES: opts.nodes, RINGKV_JEPSEN_SEED: opts.seed })
    .map(([k, v]) => `${k}=${v}`).join(' ');
  writeResults(report, `${env} npx tsx test/jepsen/run.ts --write`);
  console.log('wrote bench/RESULTS.md');
}
const bad = report.byMode.siblings.lost + report.byMode.set.lost;
for (const c of report.crashes) console.error(`${c.node} exited on its own (${c.signal ?? c.code}):\n${c.log.join('\n')}`);
process.exit(bad > 0 || report.crashes.length > 0 || !report.aliveAtEnd.every(Boolean) ? 1 : 0);
