// Shared helpers for the engine tests: byte strings, a terse coordinate and
// an error-code assertion. They take any Engine, native or pure.
import type { ConflictMode, Engine } from '../../src/engine/types.js';

export const b = (s: string): Buffer => Buffer.from(s, 'utf8');
export const EPOCH = '0000000000000001';

export function put(
  e: Engine,
  key: string,
  value: string | null,
  context: Buffer | null = null,
  opts: { now?: number; mode?: ConflictMode; bucket?: string; durable?: boolean } = {},
): Promise<Buffer> {
  return e.coordinate({
    bucket: b(opts.bucket ?? 'b'),
    key: b(key),
    context,
    value: value === null ? null : b(value),
    now: opts.now ?? 1000,
    mode: opts.mode ?? 'siblings',
    durable: opts.durable ?? false,
  });
}

/** Expect a promise (or a thunk) to fail with an EngineError of `code`. */
export async function expectCode(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  if (err === undefined) throw new Error(`expected ${code}, got success`);
  if ((err as { code?: string }).code !== code) throw new Error(`expected ${code}, got ${String((err as Error).stack ?? err)}`);
}
