// `ringkv put --content-type T --meta k=v` and `ringkv get --headers/--json`
// as a user runs them: the CLI in its own process (bin/ringkv.js, built
// dist/) against a real node, siblings included.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ringkv as runRingkv } from '../helpers/processes.js';
import { startTestNode, type TestNode } from '../helpers/server.js';

let node: TestNode;

beforeAll(async () => {
  node = await startTestNode('cli-meta');
});
afterAll(async () => {
  await node?.close();
});

const ringkv = (...args: string[]) => runRingkv([...args, '--node', node.address]);

describe('ringkv put/get with a content type and metadata', () => {
  it('put stores them; get --headers prints them before the value, as HTTP would', async () => {
    const put = await ringkv('put', 'docs', 'a', '{"n":1}', '--content-type', 'application/json', '--meta', 'author=ann', '--meta', 'Tags=red,blue');
    expect(put.code, put.stderr).toBe(0);
    const got = await ringkv('get', 'docs', 'a', '--headers');
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout).toBe('content-type: application/json\nx-ringkv-meta-author: ann\nx-ringkv-meta-tags: red,blue\n\n{"n":1}\n');
    // Without --headers only the value, as before.
    expect((await ringkv('get', 'docs', 'a')).stdout).toBe('{"n":1}\n');
    // And over HTTP: the same attributes.
    const res = await fetch(`${node.url}/kv/docs/a`);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('x-ringkv-meta-tags')).toBe('red,blue');
  });

  it('get --json shows each sibling with its own content type and metadata', async () => {
    expect((await ringkv('put', 'docs', 's', 'one', '--content-type', 'text/plain', '--meta', 'by=x')).code).toBe(0);
    expect((await ringkv('put', 'docs', 's', 'two', '--blind', '--meta', 'by=y')).code).toBe(0);
    const got = await ringkv('get', 'docs', 's', '--json');
    expect(got.code, got.stderr).toBe(0);
    const doc = JSON.parse(got.stdout) as { siblings: Array<{ value: string; contentType: string; meta: Record<string, string> }> };
    expect(doc.siblings.map(({ value, contentType, meta }) => ({ value, contentType, meta })).sort((a, b) => a.value.localeCompare(b.value))).toEqual([
      { value: 'one', contentType: 'text/plain', meta: { by: 'x' } },
      { value: 'two', contentType: 'application/octet-stream', meta: { by: 'y' } },
    ]);
  });

  it('a --meta without "=" and metadata over a limit are refused with a message, nothing stored', async () => {
    const bad = await ringkv('put', 'docs', 'b', 'v', '--meta', 'novalue');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("expected name=value, got 'novalue'");
    const big = await ringkv('put', 'docs', 'b', 'v', '--meta', `k=${'v'.repeat(8192)}`);
    expect(big.code).not.toBe(0);
    expect(big.stderr).toContain('METADATA_TOO_LARGE');
    expect((await fetch(`${node.url}/kv/docs/b`)).status).toBe(404);
  });
});
