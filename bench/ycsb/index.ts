// The YCSB-compatible load generator as a library: one call runs a load or
// run phase of a core workload against a binding and returns the JSON result
// and YCSB's text summary. bench/ycsb.ts is its command line, bench/suite.ts
// runs the comparison suite with it.
import { createBinding } from './bindings/index.js';
import { toJson, toText, type YcsbResult } from './output.js';
import { workloadConfig, type Properties } from './properties.js';
import { Random } from './random.js';
import { runPhase } from './runner.js';
import { CoreWorkload } from './workload.js';

export { parseCommandLine, parsePropertiesText, readPropertyFile, workloadConfig, YcsbPropertyError, type Properties } from './properties.js';
export type { YcsbResult } from './output.js';

export interface YcsbRun {
  phase: 'load' | 'run';
  db: string;
  props: Properties;
  /** The workload's name in reports (the property file's name). */
  workloadName: string;
  label?: string;
  onInterval?: (line: string) => void;
}

export async function runYcsb(run: YcsbRun): Promise<{ json: YcsbResult; text: string }> {
  const config = workloadConfig(run.props);
  const workload = new CoreWorkload(config, new Random(config.seed));
  const db = createBinding(run.db, run.props, workload.shape, config.threadcount);
  await db.init();
  try {
    const result = await runPhase({ phase: run.phase, workload, db, onInterval: run.onInterval });
    try {
      return {
        json: toJson(result, run.workloadName, run.db, config.percentiles, run.label),
        text: toText(result, config.percentiles),
      };
    } finally {
      result.measurements.destroy();
    }
  } finally {
    await db.cleanup();
  }
}
