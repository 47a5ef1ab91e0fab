// Prints one simulation's full outcome log and any violations:
//   npx tsx test/sim/run-seed.ts 1234
import { runSim } from './harness.js';

const seed = Number(process.argv[2] ?? 1);
const result = await runSim(seed);
console.log(result.log.join('\n'));
console.log(JSON.stringify(result.stats));
if (result.violations.length > 0) {
  console.log(`\n${result.violations.length} violation(s):\n${result.violations.join('\n')}`);
  console.log(`\ntrace tail:\n${result.traceTail.join('\n')}`);
  process.exitCode = 1;
}
