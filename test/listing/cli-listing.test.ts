// `ringkv keys BUCKET` and `ringkv buckets` as a user runs them (real CLI
// processes) against a real 3-node cluster.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/index.js';
import { CLI } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';
import { converged, start, writeAll } from './helpers.js';

const exec = promisify(execFile);
const dir = tempDir('ringkv-cli-listing-');
const nodes: RunningServer[] = [];

beforeAll(async () => {
  nodes.push(await start('n1', `${dir.path}/n1`, []));
  for (const id of ['n2', 'n3']) nodes.push(await start(id, `${dir.path}/${id}`, [nodes[0]!.address]));
  await converged(nodes, 3);
  await writeAll(nodes[0]!.address, [
    ...Array.from({ length: 250 }, (_, i) => ({ bucket: 'cli', key: `k${i}`, value: 'v' })),
    { bucket: 'cli', key: 'two\nlines', value: 'v' },
    { bucket: 'other', key: 'x', value: 'v' },
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close(500)));
  dir.remove();
});

describe('ringkv keys and ringkv buckets', () => {
  it('prints every key once, one per line, a key with a newline as b64:', async () => {
    const { stdout, stderr } = await exec(process.execPath, [CLI, 'keys', 'cli', '--node', nodes[1]!.address, '--page-size', '64'], { timeout: 50_000 });
    const lines = stdout.trimEnd().split('\n');
    expect(lines.length).toBe(251);
    expect(new Set(lines).size).toBe(251);
    expect(lines).toContain('k249');
    expect(lines).toContain(`b64:${Buffer.from('two\nlines').toString('base64url')}`);
    expect(stderr).toMatch(/251 keys in cli/);
  }, 60_000);

  it('prints the buckets in byte order', async () => {
    const { stdout } = await exec(process.execPath, [CLI, 'buckets', '--node', nodes[2]!.address, '--page-size', '1'], { timeout: 50_000 });
    expect(stdout).toBe('cli\nother\n');
  }, 60_000);

  it('a bad page size is refused by the CLI itself', async () => {
    const run = exec(process.execPath, [CLI, 'keys', 'cli', '--node', nodes[0]!.address, '--page-size', '0'], { timeout: 20_000 });
    await expect(run).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/page-size must be an integer/) });
  }, 30_000);
});
