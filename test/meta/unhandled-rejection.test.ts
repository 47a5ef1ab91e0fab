// No promise may be left unhandled (issue 11, item 5). Two guards, each
// checked here so that a config change cannot silently turn them off:
//   - in test files (vitest, forked workers): a rejection nobody handles
//     fails the run even when every test passed (vitest.config.ts keeps
//     dangerouslyIgnoreUnhandledErrors off);
//   - in node processes the tests start (test/transport/peer-fuzz.ts runs
//     `ringkv start` with --unhandled-rejections=strict): one kills the
//     process, and the test sees the exit.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const vitestBin = fileURLToPath(new URL('../../node_modules/vitest/vitest.mjs', import.meta.url));

describe('an unhandled rejection', () => {
  it('fails a vitest run whose tests all pass', () => {
    const run = spawnSync(process.execPath, [vitestBin, 'run', '--config', 'test/fixtures/unhandled/vitest.config.ts'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    const output = run.stdout + run.stderr;
    expect(output).toMatch(/1 passed/);
    expect(output).toMatch(/Unhandled Rejection/);
    expect(output).toMatch(/probe: a rejection left unhandled/);
    expect(run.status).toBe(1);
  });

  it('kills a node process started with --unhandled-rejections=strict, with a non-zero exit', () => {
    const script = "process.on('unhandledRejection', () => {}); Promise.reject(new Error('left unhandled')); setTimeout(() => process.exit(0), 1000);";
    const run = spawnSync(process.execPath, ['--unhandled-rejections=strict', '-e', script], { encoding: 'utf8', timeout: 10_000 });
    // strict: even a process-wide listener does not keep the process alive.
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/left unhandled/);
  });
});
