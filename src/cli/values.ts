// Values on the command line: `put` takes a literal, `-` (stdin) or `@path`
// (a file), as bytes; `get` hands back one value's bytes unchanged (--raw,
// --out). A literal that is `-` or starts with @ is given with --literal.
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { HARD_LIMITS } from '../engine/types.js';

/**
 * The most a command reads as one value: the largest value any node can be
 * configured to take (a node's own limit, 1 MiB by default, answers 413 beyond it).
 */
export const MAX_CLI_VALUE_BYTES = HARD_LIMITS.maxValueBytes;

export type ValueArgument = { from: 'literal'; text: string } | { from: 'stdin' } | { from: 'file'; path: string };

/** What a `put` value argument means: `-` is stdin, `@path` a file, anything else (or anything with --literal) itself. */
export function valueArgument(arg: string, literal: boolean): ValueArgument {
  if (literal) return { from: 'literal', text: arg };
  if (arg === '-') return { from: 'stdin' };
  if (arg.startsWith('@')) {
    if (arg.length === 1) throw new Error('@ needs a file name (@path); for the literal text "@" use --literal');
    return { from: 'file', path: arg.slice(1) };
  }
  return { from: 'literal', text: arg };
}

function tooLarge(what: string, maxBytes: number): Error {
  return new Error(`${what} is larger than ${maxBytes} bytes, the most a value can be`);
}

/** Reads a stream to its end, refusing more than maxBytes (read no further than that). */
export async function readBounded(stream: Readable, maxBytes: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += b.length;
    if (size > maxBytes) {
      stream.destroy();
      throw tooLarge(what, maxBytes);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks, size);
}

/** A file's bytes (a regular file, or a pipe such as `@<(cmd)`), refusing more than maxBytes. */
export async function readFileBounded(path: string, maxBytes: number): Promise<Buffer> {
  try {
    return await readBounded(createReadStream(path), maxBytes, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined) throw err;
    throw new Error(`cannot read ${path}: ${code === 'EISDIR' ? 'it is a directory' : (err as Error).message}`);
  }
}

/** The bytes a `put` stores. */
export async function readValue(arg: ValueArgument, stdin: Readable, maxBytes = MAX_CLI_VALUE_BYTES): Promise<Buffer> {
  switch (arg.from) {
    case 'literal':
      return Buffer.from(arg.text, 'utf8');
    case 'stdin':
      return readBounded(stdin, maxBytes, 'the value on stdin');
    case 'file':
      return readFileBounded(arg.path, maxBytes);
  }
}

/**
 * The one value `get --raw/--out` writes: the only one, or sibling `sibling`
 * (1-based) of several; several without a choice is an error that says how to choose.
 */
export function chooseValue(values: readonly Buffer[], sibling: number | undefined): Buffer {
  if (sibling !== undefined) {
    const v = values[sibling - 1];
    if (v === undefined) throw new Error(`there ${values.length === 1 ? 'is 1 value' : `are ${values.length} values`}: --sibling must be 1..${values.length}`);
    return v;
  }
  if (values.length !== 1) {
    throw new Error(`${values.length} siblings (concurrent writes): pick one with --sibling 1..${values.length} (see them with --json), or resolve them with \`ringkv put\``);
  }
  return values[0]!;
}
