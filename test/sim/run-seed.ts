// Prints one simulation's full outcome log and any violations:
//   npx tsx test/sim/run-seed.ts 1234
//   npx tsx test/sim/run-seed.ts 16 TRANSFER_WITH_N1_SIM_CONFIG   (any *_SIM_CONFIG the harness exports)
import * as harness from './harness.js';
import type { SimConfig } from './harness.js';

const seed = Number(process.argv[2] ?? 1);
const configName = process.argv[3];
const config = configName === undefined ? undefined : (harness as unknown as Record<string, SimConfig | undefined>)[configName];
if (configName !== undefined && (config === undefined || !configName.endsWith('_SIM_CONFIG'))) {
  console.error(`no such config: ${configName} (the harness exports ${Object.keys(harness).filter((k) => k.endsWith('_SIM_CONFIG')).join(', ')})`);
  process.exit(2);
}
const result = await harness.runSim(seed, config);
console.log(result.log.join('\n'));
console.log(JSON.stringify(result.stats));
if (result.violations.length > 0) {
  console.log(`\n${result.violations.length} violation(s):\n${result.violations.join('\n')}`);
  console.log(`\ntrace tail:\n${result.traceTail.join('\n')}`);
  process.exitCode = 1;
}
