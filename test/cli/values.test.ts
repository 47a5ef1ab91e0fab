// Values through the `ringkv` command, byte for byte, on real processes
// against a real node: `put b k -` from stdin, `@path` from a file, `get
// --raw` to stdout and `--out FILE`; random bytes with NUL and invalid UTF-8
// come back unchanged. Literals keep working; `-` and `@...` as text need
// --literal; siblings need a choice.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CLI_VALUE_BYTES, chooseValue, readBounded, valueArgument } from '../../src/cli/values.js';
import { startTestNode, type TestNode } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/processes.js';

let node: TestNode;
const dir = tempDir('ringkv-values-');
beforeAll(async () => {
  node = await startTestNode('values');
});
afterAll(async () => {
  await node?.close();
  dir.remove();
});

/** `ringkv ...args --node <node>` with no token (the test node runs without client tokens). */
const cli = (args: string[], stdin?: Buffer) => runCli([args[0]!, '--node', node.address, ...args.slice(1)], { stdin, env: { PATH: process.env.PATH }, cwd: dir.path });

/** Random bytes that are certainly not UTF-8: NULs, a lone continuation byte, 0xff, a truncated sequence. */
function binary(size: number): Buffer {
  const b = randomBytes(size);
  Buffer.from([0x00, 0x80, 0xff, 0xfe, 0x00, 0xc3]).copy(b, 0);
  b[size - 1] = 0xe2; // a 3-byte sequence cut short at the very end
  return b;
}

// Each command is a process start (about a second, more on a loaded machine).
describe('put and get, binary-safe', { timeout: 120_000 }, () => {
  it('put - reads stdin; get --raw writes the same bytes to stdout, with nothing added', async () => {
    const value = binary(200_000);
    const put = await cli(['put', 'bin', 'stdin', '-'], value);
    expect(put.code, put.stderr).toBe(0);
    const got = await cli(['get', 'bin', 'stdin', '--raw']);
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout.equals(value)).toBe(true);
  });

  it('put @path reads a file; get --out FILE writes its bytes', async () => {
    const value = binary(70_000);
    const src = join(dir.path, 'in.bin');
    const out = join(dir.path, 'out.bin');
    writeFileSync(src, value);
    expect((await cli(['put', 'bin', 'file', `@${src}`])).code).toBe(0);
    const got = await cli(['get', 'bin', 'file', '--out', out]);
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout.length).toBe(0);
    expect(readFileSync(out).equals(value)).toBe(true);
  });

  it('an empty value round-trips too', async () => {
    expect((await cli(['put', 'bin', 'empty', '-'], Buffer.alloc(0))).code).toBe(0);
    const got = await cli(['get', 'bin', 'empty', '--raw']);
    expect(got.code).toBe(0);
    expect(got.stdout.length).toBe(0);
  });

  it('literals: plain text as before; - and @... as text with --literal', async () => {
    expect((await cli(['put', 'lit', 'plain', 'milk'])).code).toBe(0);
    expect((await cli(['get', 'lit', 'plain'])).stdout.toString()).toBe('milk\n');
    expect((await cli(['put', 'lit', 'dash', '--literal', '-'], Buffer.from('not this'))).code).toBe(0);
    expect((await cli(['get', 'lit', 'dash', '--raw'])).stdout.toString()).toBe('-');
    expect((await cli(['put', 'lit', 'at', '--literal', '@home'])).code).toBe(0);
    expect((await cli(['get', 'lit', 'at', '--raw'])).stdout.toString()).toBe('@home');
    // Text that looks like an option goes after --.
    expect((await cli(['put', 'lit', 'opt', '--', '-x'])).code).toBe(0);
    expect((await cli(['get', 'lit', 'opt', '--raw'])).stdout.toString()).toBe('-x');
  });

  it('a file that cannot be read fails before any request, and stores nothing', async () => {
    const res = await cli(['put', 'lit', 'missing', `@${join(dir.path, 'nope.bin')}`]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`cannot read ${join(dir.path, 'nope.bin')}`);
    const got = await cli(['get', 'lit', 'missing']);
    expect(got.code).toBe(1);
    expect(got.stderr).toContain('not found');
  });

  it('get --raw / --out of a missing key: exit 1, nothing written', async () => {
    const out = join(dir.path, 'never.bin');
    const res = await cli(['get', 'bin', 'absent', '--out', out]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('not found');
    expect(existsSync(out)).toBe(false);
  });

  it('siblings: --raw says how to choose; --sibling N picks one', async () => {
    const a = binary(1000);
    const b = binary(1000);
    expect((await cli(['put', 'sib', 'k', '-', '--blind'], a)).code).toBe(0);
    expect((await cli(['put', 'sib', 'k', '-', '--blind'], b)).code).toBe(0);
    const raw = await cli(['get', 'sib', 'k', '--raw']);
    expect(raw.code).toBe(1);
    expect(raw.stdout.length).toBe(0);
    expect(raw.stderr).toContain('2 siblings (concurrent writes): pick one with --sibling 1..2');
    const picked = await Promise.all([1, 2].map(async (n) => (await cli(['get', 'sib', 'k', '--raw', '--sibling', String(n)])).stdout));
    expect(picked.map((p) => p.toString('hex')).sort()).toEqual([a, b].map((v) => v.toString('hex')).sort());
    const tooFar = await cli(['get', 'sib', 'k', '--raw', '--sibling', '3']);
    expect(tooFar.code).toBe(1);
    expect(tooFar.stderr).toContain('--sibling must be 1..2');
  });

  it('--raw goes with neither --json nor --out', async () => {
    const res = await cli(['get', 'bin', 'stdin', '--raw', '--json']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/cannot be used with option '--json'/);
  });
});

describe('values.ts, step by step', () => {
  it('what a value argument means', () => {
    expect(valueArgument('-', false)).toEqual({ from: 'stdin' });
    expect(valueArgument('@a/b', false)).toEqual({ from: 'file', path: 'a/b' });
    expect(valueArgument('x@y', false)).toEqual({ from: 'literal', text: 'x@y' });
    expect(valueArgument('@a', true)).toEqual({ from: 'literal', text: '@a' });
    expect(() => valueArgument('@', false)).toThrow(/--literal/);
  });

  it('stdin beyond the largest value is refused without reading all of it', async () => {
    let produced = 0;
    const endless = new Readable({
      read() {
        produced += 64 * 1024;
        this.push(Buffer.alloc(64 * 1024));
      },
    });
    await expect(readBounded(endless, MAX_CLI_VALUE_BYTES, 'the value on stdin')).rejects.toThrow(/larger than 16777216 bytes/);
    expect(produced).toBeLessThan(MAX_CLI_VALUE_BYTES + 1024 * 1024);
  });

  it('chooseValue: the one value, or a chosen sibling', () => {
    const [x, y] = [Buffer.from('x'), Buffer.from('y')];
    expect(chooseValue([x], undefined)).toBe(x);
    expect(chooseValue([x, y], 2)).toBe(y);
    expect(() => chooseValue([x, y], undefined)).toThrow(/2 siblings/);
  });
});
