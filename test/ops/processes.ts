// Real `ringkv start` processes for the operations tests (test/helpers/processes.ts):
// Q = 64, log level warn (wait for a node with waitUp, /ping), the test
// cluster secret; close() kills every node (SIGKILL) and removes the data.
import { ProcessCluster } from '../helpers/processes.js';

/** A cluster whose nodes all start with `extraArgs` besides the ops defaults. */
export function opsCluster(extraArgs: string[] = []): ProcessCluster {
  return new ProcessCluster({ prefix: 'ringkv-ops-', args: ['--partition-bits', '6', ...extraArgs], logLevel: 'warn', stopGraceMs: 0 });
}
