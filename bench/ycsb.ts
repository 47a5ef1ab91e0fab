// A YCSB-compatible load generator for ringkv (bench/ycsb/), with YCSB's
// command line:
//
//   npx tsx bench/ycsb.ts -load -db ringkv -P bench/ycsb/workloads/workloada -p ringkv.nodes=127.0.0.1:8087
//   npx tsx bench/ycsb.ts -t    -db ringkv -P bench/ycsb/workloads/workloada -p ringkv.nodes=127.0.0.1:8087 \
//       -p operationcount=100000 -threads 32 [-target 5000] [-s] [--json out.json]
//
// Prints YCSB's text summary on stdout; --json writes the machine-readable result.
import { writeFileSync } from 'node:fs';
import { parseCommandLine, runYcsb, YcsbPropertyError } from './ycsb/index.js';

async function main(): Promise<void> {
  const cli = parseCommandLine(process.argv.slice(2));
  const { json, text } = await runYcsb({
    phase: cli.phase,
    db: cli.db,
    props: cli.props,
    workloadName: cli.workloadName,
    onInterval: cli.status ? (line) => process.stderr.write(`${line}\n`) : undefined,
  });
  process.stdout.write(`${text}\n`);
  if (json.timedOut) process.stderr.write('maxexecutiontime reached before operationcount\n');
  if (cli.jsonPath) writeFileSync(cli.jsonPath, `${JSON.stringify(json, null, 2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof YcsbPropertyError ? err.message : (err as Error).stack ?? String(err)}\n`);
  process.exit(err instanceof YcsbPropertyError ? 2 : 1);
});
